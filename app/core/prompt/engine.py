"""The tokenizer of an in-process engine, as the prompt renderers need it.

Local models other than DeepSeek V4 are counted and rendered with their own
tokenizer and chat template (invariant 2: exact counts in the target model's
tokenizer). The llama.cpp backend provides an ``EngineTokenizer``; the
``LlamaEngineTokenizer`` adapter below turns any ``llama_cpp.Llama`` (even one
opened with ``vocab_only=True``) into one, without importing llama_cpp here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class EngineTokenizer(Protocol):
    """What a renderer needs from an engine's tokenizer.

    ``tokenize`` never adds BOS. With ``special=True`` special-token spellings
    in ``text`` become their ids (used for template text only); with
    ``special=False`` they stay plain text (used for documents and questions).
    """

    def tokenize(self, text: str, special: bool) -> list[int]:
        """Ids of ``text``, without BOS."""
        ...

    def chat_template(self) -> str | None:
        """The model's Jinja chat template, or None when the file has none."""
        ...

    @property
    def bos_token(self) -> str:
        """The BOS spelling (e.g. ``<bos>``), "" when the model has none."""
        ...

    @property
    def eos_token(self) -> str:
        """The EOS spelling, "" when the model has none."""
        ...

    @property
    def architecture(self) -> str | None:
        """The model architecture (GGUF ``general.architecture``), for template fallbacks."""
        ...


class LlamaEngineTokenizer:
    """``EngineTokenizer`` over a ``llama_cpp.Llama`` (duck-typed, not imported)."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self._metadata: dict[str, str] = dict(getattr(llama, "metadata", {}) or {})

    def tokenize(self, text: str, special: bool) -> list[int]:
        """Ids of ``text`` via llama.cpp, without BOS."""
        if not text:
            return []
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def chat_template(self) -> str | None:
        """``tokenizer.chat_template`` from the GGUF metadata."""
        return self._metadata.get("tokenizer.chat_template") or None

    def _spelling(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        raw = self._llama.detokenize([token_id], special=True)
        return bytes(raw).decode("utf-8", "replace")

    @property
    def bos_token(self) -> str:
        """The BOS spelling, "" when the model has none."""
        return self._spelling(int(self._llama.token_bos()))

    @property
    def eos_token(self) -> str:
        """The EOS spelling, "" when the model has none."""
        return self._spelling(int(self._llama.token_eos()))

    @property
    def architecture(self) -> str | None:
        """``general.architecture`` from the GGUF metadata."""
        return self._metadata.get("general.architecture") or None


class EngineTextEncoder:
    """An engine tokenizer seen as the DeepSeek renderers' text encoder."""

    def __init__(self, engine: EngineTokenizer) -> None:
        self._engine = engine

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` as plain text."""
        return self._engine.tokenize(text, False)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text as plain text."""
        return [self.encode(t) for t in texts]

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of each text as plain text."""
        return [len(self.encode(t)) for t in texts]

    def special_id(self, spelling: str) -> int:
        """The id of one special token; KeyError when the engine has no such token."""
        ids = self._engine.tokenize(spelling, True)
        if len(ids) != 1:
            raise KeyError(spelling)
        return ids[0]
