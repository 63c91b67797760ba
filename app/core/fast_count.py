"""Exact DeepSeek V4 token counts at tiktoken's speed.

Counting is most of what ingestion does, and Hugging Face ``tokenizers`` is
the slow part of it. V4's tokenizer is a byte-level BPE whose ranks are its
merge order (a token's id is 259 plus the index of the merge that makes it),
so tiktoken can run the same BPE from the vocabulary taken as mergeable
ranks, 3-5x faster. ``app.core.tokens`` uses this module for counts and
keeps ``tokenizers`` as the reference and the fallback.

What tiktoken cannot take as is, is the pre-tokenizer: three ``Split`` rules
applied one after another, each to every piece the one before produced
(``pretok.PRE_TOKENIZER_PATTERNS``): digit chunks, then CJK runs, then the
main rule. ``PATTERN`` is one regex that cuts any text into the same pieces:

* the digit rule comes first, and no other alternative matches a digit, so
  digits are chunked by three from the left as step 1 does;
* every alternative of the main rule excludes CJK chars and digits (they are
  pieces of their own, the main rule never sees across them), and the
  lookahead of ``\\s+(?!\\S)`` takes a digit or CJK char for the end of its
  piece, as it is in ``tokenizers``;
* the main rule also runs inside a CJK run (it splits at ``・``, at the
  sound marks ``゛゜`` and at unassigned code points): the CJK alternatives
  are the main rule restricted to CJK chars;
* text the main rule does not match (control chars, ZWJ, BOM, private use,
  unassigned code points) is a piece of its own in ``tokenizers`` but
  silently dropped by tiktoken unless the pattern matches it: the last
  alternatives match exactly those runs.

``load()`` checks every assumption this rests on against ``tokenizer.json``
and raises ``Unsupported`` naming the first that fails; the caller then
counts with ``tokenizers``. A text tiktoken cannot take (a whitespace run of
about a million chars exceeds its regex engine's backtracking stack; lone
surrogates) comes back as ``None`` to be counted by the reference.
``token_store`` keeps the checked ranks, so a process skips ``load()``: it
reads them back (``counter_from_ranks``) and makes tiktoken's full encoder
only when a call needs it (see ``FastCounter``).
Exactness is proved file by file in ``tests/unit/test_fast_count.py`` and
``tests/unit/test_token_store.py``.
"""

from __future__ import annotations

import bisect
import functools
import operator
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from app.core.ingest.pretok import PRE_TOKENIZER_PATTERNS

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

_CJK = "\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff"  # step 2's ranges, inside a class
_ASCII_PUNCT = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]"
_LM = f"[\\p{{L}}\\p{{M}}--[{_CJK}]]"  # a letter or mark the main rule sees

PATTERN = "|".join(
    (
        # Step 1: digits, by three from the left.
        "\\p{N}{1,3}",
        # Step 3 inside a CJK run (step 2): letters with an optional
        # non-letter prefix, punctuation/symbols, and runs nothing matches.
        f"[{_CJK}&&[^\\p{{L}}\\p{{P}}\\p{{S}}]]?[{_CJK}&&[\\p{{L}}\\p{{M}}]]+",
        f"[{_CJK}&&[\\p{{P}}\\p{{S}}]]+",
        f"(?:[{_CJK}--[\\p{{L}}\\p{{M}}\\p{{P}}\\p{{S}}]](?![{_CJK}&&[\\p{{L}}\\p{{M}}]]))+",
        # Step 3 elsewhere: the main rule, alternative by alternative, blind
        # to digits and CJK chars (pieces of their own).
        f"{_ASCII_PUNCT}[A-Za-z]+",
        f"[^\\r\\n\\p{{L}}\\p{{P}}\\p{{S}}\\p{{N}}{_CJK}]?{_LM}+",
        f" ?[\\p{{P}}\\p{{S}}--[{_CJK}]]+[\\r\\n]*",
        "\\s*[\\r\\n]+",
        f"\\s+(?![^\\s\\p{{N}}{_CJK}])",
        "\\s+",
        # What the main rule leaves unmatched: a run of chars none of its
        # alternatives starts with, each not taken as the prefix of a letter run.
        f"(?:[^\\s\\p{{L}}\\p{{M}}\\p{{P}}\\p{{S}}\\p{{N}}{_CJK}](?!{_LM}))+",
    )
)

# The pre-tokenizer PATTERN reproduces, as tokenizer.json spells it.
EXPECTED_PRE_TOKENIZER: dict[str, Any] = {
    "type": "Sequence",
    "pretokenizers": [
        *(
            {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False}
            for p in PRE_TOKENIZER_PATTERNS
        ),
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
    ],
}

# tiktoken looks for special tokens before splitting; with none its search
# tries every position. One that is never allowed makes that search a fast
# literal scan and changes nothing (a disallowed special is plain text).
_NEVER_SPECIAL = "\U0010ffff<lectern: never a token>\U0010ffff"
_NEVER_SPECIAL_ID = 0xFFFF_FFFE  # above any id (tiktoken ranks are u32); no max() over 128k

# A text that exercises every rule of PATTERN, including runs nothing matches.
_PROBE = (
    "Hello, world! 12345 x=1.5e-3\n\n  \tindent  \r\n中文・カタカナ゛\u3040あ\u3099 "
    "e\u0301 \x00\x01\u200d\ufeff\ue000\U000e0001 😀👨\u200d👩\u200d👧 ٣٤٥ "
    "<think>tag</think>   "
)

_PARALLEL_CHARS = 64 << 10  # below this, threads cost more than they save
# Up to this much text, a call does not wait for the full encoder: one of the
# tokens found in its text (substrings up to SHORT bytes looked up, longer
# tokens searched for) is made in a few ms.
_SMALL_CHARS = 4096
_SMALL_BYTES = 4096
# After this much text on such encoders, the full one is made: it pays from then on.
_SMALL_BUDGET = 64 << 10
# Up to this many distinct pieces, bisecting the sorted vocabulary (~0.6 us a piece)
# beats hashing all of it into a dict (~15 ms).
_BISECT_PIECES = 16384
SHORT = 32
_CHUNKS_PER_WORKER = 4


class Unsupported(Exception):
    """``tokenizer.json`` is not what the fast counter reproduces; ``str(e)`` says why."""


def byte_level_alphabet() -> dict[int, str]:
    """GPT-2's byte-to-char map that byte-level BPE vocabularies are spelled in."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


@functools.cache
def _unspell_table() -> dict[int, str]:
    """``str.translate`` table: a byte-level char to the latin-1 char of its byte;
    any other char below U+0180 to one latin-1 cannot encode."""
    table = {c: "\uffff" for c in range(0x180)}
    for b, ch in byte_level_alphabet().items():
        table[ord(ch)] = chr(b)
    return table


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise Unsupported(what)


def mergeable_ranks(raw: Mapping[str, Any]) -> dict[bytes, int]:
    """V4's vocabulary as tiktoken's mergeable ranks (rank = token id), after
    checking that ranks are merge order and the BPE is plain byte-level BPE."""
    model = raw.get("model")
    _require(isinstance(model, Mapping), "tokenizer.json has no model")
    assert isinstance(model, Mapping)
    _require(model.get("type") == "BPE", f"the model is {model.get('type')!r}, not BPE")
    for key in ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
        _require(model.get(key) in (None, ""), f"the BPE model sets {key}={model.get(key)!r}")
    for key in ("byte_fallback", "ignore_merges"):
        _require(not model.get(key), f"the BPE model sets {key}")
    normalizer = raw.get("normalizer")
    _require(
        normalizer is None or normalizer == {"type": "Sequence", "normalizers": []},
        "tokenizer.json normalizes text",
    )
    pre = raw.get("pre_tokenizer")
    if isinstance(pre, Mapping) and isinstance(pre.get("pretokenizers"), list):
        steps = [dict(s) for s in pre["pretokenizers"]]
        if steps and steps[-1].get("type") == "ByteLevel":
            steps[-1].pop("trim_offsets", None)  # offsets only
        pre = {**pre, "pretokenizers": steps}
    _require(pre == EXPECTED_PRE_TOKENIZER, "the pre-tokenizer is not the one PATTERN reproduces")
    post = raw.get("post_processor")
    _require(
        post is None or (isinstance(post, Mapping) and post.get("type") == "ByteLevel"),
        "a post-processor may add tokens",
    )

    vocab = model.get("vocab")
    merges = model.get("merges")
    _require(isinstance(vocab, Mapping) and isinstance(merges, list), "no vocab or merges")
    assert isinstance(vocab, Mapping) and isinstance(merges, list)
    n = len(vocab)
    ids = list(vocab.values())
    try:
        _require(sorted(ids) == list(range(n)), "token ids are not 0..N-1, each once")
    except TypeError:
        raise Unsupported("a token id is not a number") from None
    by_id = list(vocab) if ids == list(range(n)) else sorted(vocab, key=vocab.__getitem__)
    spelled = _unspell(by_id)
    ranks = {data: i for i, data in enumerate(spelled) if data is not None}
    _require(len(ranks) == n - spelled.count(None), "two tokens spell the same bytes")
    _require(all(bytes([b]) in ranks for b in range(256)), "a byte has no token")
    added = {str(t.get("content")): t.get("id") for t in raw.get("added_tokens") or []}
    for i, data in enumerate(spelled):
        # Added tokens are removed before counting, and no merge can make them.
        _require(data is not None or added.get(by_id[i]) == i, f"token {i} is not byte-level")
    base = _check_merges(vocab, by_id, merges)
    _require(base + len(merges) == n, "tokens beyond the last merge")
    _require(
        all(i < base for data, i in ranks.items() if len(data) == 1),
        "a single byte's id is not below the merged tokens",
    )
    return ranks


def _unspell(tokens: list[str]) -> list[bytes | None]:
    """The bytes each byte-level token stands for; None for any other token."""
    sep = "\ufffe"  # not in the table: translate keeps it
    parts = sep.join(tokens).translate(_unspell_table()).split(sep)
    if len(parts) != len(tokens):  # a token holds the separator
        parts = [t.translate(_unspell_table()) for t in tokens]
    out: list[bytes | None] = []
    for part in parts:
        try:
            out.append(part.encode("latin-1"))
        except UnicodeEncodeError:
            out.append(None)
    return out


def _check_merges(vocab: Mapping[str, int], by_id: list[str], merges: list[Any]) -> int:
    """Check that merge ``i`` makes token ``base + i`` out of two lower tokens,
    so ranks (ids) are the merge order; returns ``base``. The loops run in C:
    one in Python over 128k merges would add a tenth of a second to each start."""
    _require(bool(merges), "no merges")
    try:
        halves = " ".join(m if isinstance(m, str) else " ".join(m) for m in merges).split(" ")
    except TypeError:
        raise Unsupported("the merges are not pairs of tokens") from None
    _require(len(halves) == 2 * len(merges), "a merge is not a pair of tokens")
    lefts, rights = halves[0::2], halves[1::2]
    made = list(map(operator.add, lefts, rights))
    base = vocab.get(made[0], -1)
    if made != by_id[base : base + len(made)]:
        i = next(i for i, m in enumerate(made) if base + i >= len(by_id) or m != by_id[base + i])
        raise Unsupported(
            f"merge {i} ({lefts[i]!r} {rights[i]!r}) does not make token {base}+{i}: "
            "ranks are not the merge order"
        )
    for side in (lefts, rights):
        side_ids = list(map(vocab.get, side))
        _require(None not in side_ids, "a merge names a token that is not in the vocabulary")
        below = map(operator.lt, cast(list[int], side_ids), range(base, base + len(made)))
        _require(all(below), "a merge uses a token made after it")
    return base


class FastCounter:
    """Counts with tiktoken; ``None`` for a text only the reference can count.

    The full encoder (tiktoken's tables of all 128k tokens: ~50 ms, holding the
    GIL) is made on first need. A call over a few short texts does not wait for
    it: it runs on an encoder of only the tokens that occur in those texts,
    which gives the same ids. Every rank tiktoken looks up while encoding a
    text is the rank of a substring of that text (a pre-token, or two adjacent
    parts of one joined), so an encoder holding at least every token that is a
    substring of the text, and nothing that is not a token, answers each of
    those look-ups as the full one does.
    """

    def __init__(
        self,
        ranks: dict[bytes, int] | None,
        workers: int | None = None,
        *,
        lazy: bool = False,
        long: list[tuple[bytes, int]] | None = None,
        sorted_vocab: tuple[list[bytes], list[int]] | None = None,
    ) -> None:
        if ranks is None and sorted_vocab is None:
            raise ValueError("a fast counter needs its ranks or its sorted vocabulary")
        self._rank_dict = ranks
        # The token store's form: the tokens in byte order and their ranks. A few
        # short texts look their pieces up in it (bisect) before the dict of all
        # 128k tokens (~14 ms to hash, holding the GIL) is made, on first need.
        self._sorted = sorted_vocab
        self._dict_lock = threading.Lock()
        self._core: Any = None
        self._long = long  # the tokens over SHORT bytes (found on first need if None)
        self._small_bytes = 0  # text encoded so far without the full encoder
        self._workers = workers or min(8, os.cpu_count() or 1)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._core_lock = threading.Lock()
        if not lazy:
            self._full()

    @property
    def _ranks(self) -> dict[bytes, int]:
        """Token bytes -> rank, made once from the sorted vocabulary if need be."""
        ranks = self._rank_dict
        if ranks is None:
            with self._dict_lock:
                if self._rank_dict is None:
                    assert self._sorted is not None
                    self._rank_dict = dict(zip(*self._sorted, strict=True))
                ranks = self._rank_dict
        return ranks

    def _lookup(self, pieces: set[bytes]) -> dict[bytes, int]:
        """The ranks of those of ``pieces`` that are tokens."""
        if self._rank_dict is None and self._sorted is not None and len(pieces) <= _BISECT_PIECES:
            tokens, ids = self._sorted
            found: dict[bytes, int] = {}
            for piece in pieces:
                i = bisect.bisect_left(tokens, piece)
                if i < len(tokens) and tokens[i] == piece:
                    found[piece] = ids[i]
            return found
        ranks = self._ranks
        # ``pieces & keys`` walks the smaller side (a short text's pieces), where
        # ``pieces.intersection(keys)`` would walk all 128k keys (~2 ms each call).
        return {piece: ranks[piece] for piece in pieces & ranks.keys()}

    def _make(self, ranks: dict[bytes, int]) -> Any:
        from tiktoken import _tiktoken  # type: ignore[attr-defined]

        try:
            core = _tiktoken.CoreBPE(ranks, {_NEVER_SPECIAL: _NEVER_SPECIAL_ID}, PATTERN)
        except ValueError as exc:  # e.g. a regex engine lacking class set operations
            raise Unsupported(f"tiktoken refused the vocabulary or pattern: {exc}") from None
        return core

    def _full(self) -> Any:
        """The encoder of every token, made (and probed) once."""
        with self._core_lock:
            if self._core is None:
                core = self._make(self._ranks)
                ids = core.encode_ordinary(_PROBE)
                _require(
                    bytes(core.decode_bytes(ids)) == _PROBE.encode("utf-8"),
                    "tiktoken drops or changes text of the probe",
                )
                _require(
                    memoryview(core.encode_to_tiktoken_buffer(_PROBE, set())).nbytes
                    == 4 * len(ids),
                    "tiktoken's buffer does not hold 4 bytes a token",
                )
                self._core = core
            return self._core

    @property
    def ready(self) -> bool:
        """True once the full encoder is made."""
        return self._core is not None

    def prepare(self) -> None:
        """Make the full encoder now (else it is made on first need)."""
        self._full()

    def _for(self, texts: Sequence[str]) -> Any:
        """The encoder for ``texts``: the full one if made or if they are long, else
        one of the tokens occurring in them (see the class docstring)."""
        if self._core is not None or sum(map(len, texts)) > _SMALL_CHARS:
            return self._full()
        data = "".join(texts).encode("utf-8", "surrogatepass")
        self._small_bytes += len(data)
        if len(data) > _SMALL_BYTES or self._small_bytes > _SMALL_BUDGET:
            return self._full()
        return self._restricted(data)

    def _restricted(self, data: bytes) -> Any:
        """An encoder of the tokens that occur in ``data`` (and no others)."""
        n = len(data)
        pieces = {data[i : i + k] for k in range(1, SHORT + 1) for i in range(n - k + 1)}
        sub = self._lookup(pieces)
        if self._long is None:
            self._long = [(t, r) for t, r in self._ranks.items() if len(t) > SHORT]
        for piece, r in self._long:
            if piece in data:
                sub[piece] = r
        return self._make(sub)

    def tokens_by_id(self) -> list[bytes | None]:
        """The bytes of each token by id (``None``: an id with no bytes of its own)."""
        if self._sorted is not None:
            tokens, ids = self._sorted
            pairs: Iterable[tuple[bytes, int]] = zip(tokens, ids, strict=True)
            top = max(ids)
        else:
            pairs = self._ranks.items()
            top = max(self._ranks.values())
        out: list[bytes | None] = [None] * (top + 1)
        for data, i in pairs:
            out[i] = data
        return out

    def sorted_vocab(self) -> tuple[list[bytes], list[int]]:
        """The tokens in byte order and their ranks (what the token store keeps)."""
        if self._sorted is not None:
            return self._sorted
        pairs = sorted(self._ranks.items())
        return [t for t, _ in pairs], [r for _, r in pairs]

    def encode(self, text: str) -> list[int] | None:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int] | None]:
        core = self._for(texts)
        return [_encode(core, t) for t in texts]

    def encode_alone(self, texts: Sequence[str]) -> list[list[int] | None]:
        """``encode_batch`` on an encoder of only the tokens in ``texts``, whatever
        their length (the token store's checks, without the full encoder)."""
        core = self._restricted("".join(texts).encode("utf-8", "surrogatepass"))
        return [_encode(core, t) for t in texts]

    def count(self, text: str) -> int | None:
        return _count(self._for([text]), text)

    def count_batch(self, texts: Sequence[str]) -> list[int | None]:
        """Counts of ``texts``, on a few threads when there is enough text
        (tiktoken releases the GIL while it encodes)."""
        core = self._for(texts)
        total = sum(map(len, texts))
        if self._workers < 2 or total < _PARALLEL_CHARS or len(texts) < 2:
            return [_count(core, t) for t in texts]
        chunks = _chunks(texts, total // (self._workers * _CHUNKS_PER_WORKER) + 1)
        out: list[int | None] = []
        for part in self._pool().map(lambda r: [_count(core, texts[i]) for i in r], chunks):
            out.extend(part)
        return out

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="lectern-bpe")
            return self._executor


def _encode(core: Any, text: str) -> list[int] | None:
    try:
        return list(core.encode_ordinary(text))
    except BaseException as exc:
        _raise_if_fatal(exc)
        return None


def _count(core: Any, text: str) -> int | None:
    try:
        # The buffer's byte length is 4 per token (u32); counting it avoids
        # making a Python int per token.
        return memoryview(core.encode_to_tiktoken_buffer(text, set())).nbytes // 4
    except BaseException as exc:
        _raise_if_fatal(exc)
        return None


def _raise_if_fatal(exc: BaseException) -> None:
    """Re-raise interrupts and exits; anything else is an error of one text (the
    regex engine's stack limit, lone surrogates, a panic in tiktoken)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)):
        raise exc


def _chunks(texts: Sequence[str], size: int) -> list[range]:
    """Consecutive index ranges of about ``size`` chars each."""
    out: list[range] = []
    start = chars = 0
    for i, text in enumerate(texts):
        chars += len(text)
        if chars >= size:
            out.append(range(start, i + 1))
            start, chars = i + 1, 0
    if start < len(texts):
        out.append(range(start, len(texts)))
    return out


def load(raw: Mapping[str, Any], workers: int | None = None) -> FastCounter:
    """A fast counter for the parsed ``tokenizer.json`` ``raw`` (its added tokens
    counted as plain text); raises ``Unsupported`` if it cannot be exact."""
    return counter_from_ranks(mergeable_ranks(raw), workers)


def counter_from_ranks(
    ranks: dict[bytes, int] | None,
    workers: int | None = None,
    *,
    lazy: bool = False,
    long: list[tuple[bytes, int]] | None = None,
    sorted_vocab: tuple[list[bytes], list[int]] | None = None,
) -> FastCounter:
    """A fast counter running tiktoken on ``ranks`` (checked by ``mergeable_ranks``,
    or read back from the token store) with ``PATTERN``; ``lazy``: its full
    encoder is made on first need."""
    try:
        import tiktoken  # noqa: F401
    except ImportError as exc:
        raise Unsupported(
            f"tiktoken is not installed ({exc}): run `pip install tiktoken`"
        ) from None
    return FastCounter(ranks, workers, lazy=lazy, long=long, sorted_vocab=sorted_vocab)
