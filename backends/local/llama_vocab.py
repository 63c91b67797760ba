"""The model file and its vocabulary, for the llama.cpp backend.

``check_model_file`` fails early, with a message that says what to do, on a
missing, unreadable or non-GGUF file. ``Vocab`` wraps a loaded model's
vocabulary: tokenizing and detokenizing only read it, so the prompt renderer may
call them from any thread while the engine thread decodes.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from backends.base import LocalEngineError


def check_model_file(path: Path) -> None:
    """Fail early, with a clear message, on a missing, unreadable or non-GGUF file."""
    if not path.exists():
        raise LocalEngineError(
            f"Model file not found: {path}. Check the model path in the settings, "
            "or download the GGUF again."
        )
    if not path.is_file():
        raise LocalEngineError(f"{path} is not a file: choose a .gguf model file.")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise LocalEngineError(
            f"Cannot read the model file {path} ({exc.strerror}): check its permissions."
        ) from exc
    if magic != b"GGUF":
        raise LocalEngineError(
            f"{path} is not a GGUF model file (it does not start with the GGUF magic bytes): "
            "choose a .gguf file made for llama.cpp."
        )


class Vocab:
    """Tokenizer calls on a loaded model's vocabulary.

    The vocabulary is read-only after load, and llama.cpp tokenizes concurrently
    with decoding (its server does), so these may run on any thread, in parallel.
    ``close`` (on the owner thread, before the model is freed) marks the vocabulary
    gone and waits for calls in progress.
    """

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._cond = threading.Condition()
        self._users = 0
        self._alive = True

    def close(self) -> None:
        with self._cond:
            self._alive = False
            self._cond.wait_for(lambda: self._users == 0)

    @contextlib.contextmanager
    def _using(self) -> Iterator[Any]:
        with self._cond:
            if not self._alive:
                raise LocalEngineError("The model was unloaded: load it again to tokenize.")
            self._users += 1
        try:
            yield self._vocab
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    def tokenize(self, text: str, *, special: bool, add_bos: bool = False) -> list[int]:
        import llama_cpp

        data = text.encode("utf-8")
        capacity = len(data) + 8
        with self._using() as vocab:
            for _ in range(2):
                buffer = (llama_cpp.llama_token * capacity)()
                n = llama_cpp.llama_tokenize(
                    vocab, data, len(data), buffer, capacity, add_bos, special
                )
                if n >= 0:
                    return list(buffer[:n])
                capacity = -n
        raise LocalEngineError(f"llama.cpp could not tokenize a text of {len(data)} bytes.")

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (may be part of a UTF-8 character)."""
        with self._using() as vocab:
            return _piece(vocab, token, special)

    def detokenize(self, ids: Sequence[int], *, special: bool = False) -> str:
        with self._using() as vocab:
            data = b"".join(_piece(vocab, i, special) for i in ids)
        return data.decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        import llama_cpp

        with self._using() as vocab:
            return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    def add_bos(self) -> bool:
        import llama_cpp

        with self._using() as vocab:
            return bool(llama_cpp.llama_vocab_get_add_bos(vocab))

    def bos(self) -> int:
        import llama_cpp

        with self._using() as vocab:
            return int(llama_cpp.llama_vocab_bos(vocab))

    def eos(self) -> int:
        import llama_cpp

        with self._using() as vocab:
            return int(llama_cpp.llama_vocab_eos(vocab))


def _piece(vocab: Any, token: int, special: bool) -> bytes:
    import llama_cpp

    size = 64
    for _ in range(2):
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, special)
        if n >= 0:
            return buffer.raw[:n]
        size = -n
    return b""
