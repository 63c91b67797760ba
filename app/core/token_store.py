"""The fast counter's inputs, made once per tokenizer and read back in milliseconds.

Making the fast counter from ``tokenizer.json`` costs most of a second: parsing
6 MB of JSON, turning 128k tokens into tiktoken's ranks while checking every
assumption the BPE rests on (``fast_count.mergeable_ranks``), then proving on a
varied text that tiktoken gives the ids ``tokenizers`` gives (which means
loading ``tokenizers`` too). None of that changes until the tokenizer does, so
its result is stored in one file per tokenizer digest, in the user cache dir
(``<cache>/lectern/tokenizers``: derived data, shared by every data dir, so a
new ``LECTERN_HOME`` starts as fast):

* a header line (JSON): the store format, the full SHA-256 of
  ``tokenizer.json``, the SHA-256 of ``fast_count.PATTERN``, the tiktoken
  version, the added tokens (spelling -> id), the outcome of the checks (the
  fast path is exact, or the reason it is not) and the ids ``tokenizers`` gave
  for ``CHECK_TEXTS``; the length and SHA-256 of the payload;
* the payload (``marshal``): the byte-level tokens in byte order and their ids,
  so a short text's pieces are found by bisection at once and the dict of all
  128k tokens (~14 ms of hashing) is made only when a longer text needs it.

Reading it back checks the header against this tokenizer, this pattern and
this tiktoken, the payload against its digest, and then encodes
``CHECK_TEXTS`` with the counter it made: the ids must be the stored ones. A
store that is missing, damaged, or made for anything else is never used: the
counter is made again from ``tokenizer.json`` (the slow way, with every check)
and the store rewritten (atomically, so several processes may race). A store
that cannot be written only costs the next start the slow way again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import marshal
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from app.core import fast_count

FORMAT = 3  # 3: the tokens in byte order with their ranks (2: the tokens by id)
MAGIC = b"LECTERN-TOKEN-STORE\n"
SUFFIX = ".ranks"
_MAX_HEADER = 1 << 20

# Verified each time the store is read (all of CHECK_TEXTS are, when it is made).
READ_CHECKS = 2


def _warn(message: str, *args: object) -> None:
    import logging

    logging.getLogger(__name__).warning(message, *args)


# What the fast path must encode exactly as ``tokenizers`` does, every time the
# store is read: every rule of the pattern, special-token spellings as plain
# text, Unicode of many scripts, long runs of whitespace and digits, code.
CHECK_TEXTS: tuple[str, ...] = (
    fast_count._PROBE,
    "<think>not a special token</think> and <｜User｜> nor <｜Assistant｜> here",
    "Hello, world. The tenant shall give 30 days' notice before 1 March 2025 (clause 14.2).",
    "def parse(path: str) -> dict[str, int]:\n    return {k: len(v) for k, v in x.items()}\n",
    "<｜begin▁of▁sentence｜>spelled out<｜end▁of▁sentence｜><｜end▁of▁sentence｜>",
    "中文文本，包括标点。日本語のテキスト、カタカナ・ー゛゜。한국어 텍스트.",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 flags 🇫🇷 ❤\ufe0f",
    "ａｂｃ full-width, ﬁ ligature, e\u0301 combining, \u200b zero width, \xa0nbsp, Ωmega и ٣٤٥ ²³",
    " " * 37 + "x" + "\n" * 9 + "\t" * 5 + "\r\n\r\n" + " \u3000 \u2028 \x0b\x0c\x85" + "y",
    " " * 70 + "\n" + "\t" * 40 + "end",
    "1234567890" * 4 + " 3.14159 -42 1e10 0x1F 12,345,678.90",
    "\x00\x01\x1b\x1f\x7f\ue000\uf8ff\U000f0001\U000e0001 \ufeffBOM \u2060joiner",
    "SELECT * FROM t WHERE a='x' AND b<>2; -- comment\n#!/bin/sh\necho \"$HOME\" | tr a-z A-Z\n",
    "Ünïcödé façade naïve — “quotes” ‘single’ … ellipsis; ΑΒΓ αβγ; אבג; ابت; देवनागरी; ไทย",
)


class Reference(Protocol):
    """What the checks need of ``tokenizers.Tokenizer``."""

    def encode_batch_fast(self, input: list[str], /, *args: Any, **kwargs: Any) -> list[Any]: ...


class Prepared:
    """What a ``TokenCounter`` is made of: the fast counter (or why there is none),
    the added tokens' ids, where it came from, and the reference if the checks
    loaded it (so it is not loaded twice)."""

    def __init__(
        self,
        fast: fast_count.FastCounter | None,
        unavailable: str,
        special: dict[str, int],
        origin: str,  # "stored", "built and stored", "built (not stored: ...)"
        *,
        reference: Reference | None = None,
        checks: list[list[int]] | None = None,  # ids of CHECK_TEXTS, by tokenizers
    ) -> None:
        self.fast = fast
        self.unavailable = unavailable
        self.special = special
        self.origin = origin
        self.reference = reference
        self.checks = checks or []
        self.notes: list[str] = []  # why a store was not used


class StoreError(Exception):
    """A store that must not be used; ``str(e)`` says why."""


class StaleStore(StoreError):
    """A sound store made for another tokenizer, pattern, tiktoken or format
    (an upgrade): made again without a warning."""


def default_dir() -> Path:
    """``<user cache dir>/lectern/tokenizers``: the dir ``platformdirs.user_cache_dir``
    names (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on
    macOS, ``%LOCALAPPDATA%\\lectern\\Cache`` on Windows), found without importing
    it (~5 ms of a counter's start)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "lectern" / "tokenizers"
    if sys.platform == "win32":
        import platformdirs

        return Path(platformdirs.user_cache_dir("lectern", appauthor=False)) / "tokenizers"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lectern" / "tokenizers"


def store_path(directory: Path, name: str, digest: str) -> Path:
    return directory / f"{name}-{digest[:16]}{SUFFIX}"


def _tiktoken_version() -> str:
    try:
        import tiktoken
    except ImportError:
        return ""
    return str(getattr(tiktoken, "__version__", "") or "")


def _pattern_digest() -> str:
    return hashlib.sha256(fast_count.PATTERN.encode("utf-8")).hexdigest()


def prepare(
    data: bytes,
    name: str,
    reference: Callable[[], Reference],
    *,
    directory: Path | None = None,
    workers: int | None = None,
    digest: str | None = None,
) -> Prepared:
    """The fast counter for the ``tokenizer.json`` bytes ``data``: from its store
    when that is valid, else made (and checked) from ``data`` and stored.
    ``reference()`` loads ``tokenizers`` for the checks; called only when making."""
    digest = digest or hashlib.sha256(data).hexdigest()
    notes: list[str] = []
    where: Path | None = None
    try:
        where = store_path(directory or default_dir(), name, digest)
    except Exception as exc:  # no cache dir on this system
        notes.append(f"no cache dir ({exc})")
    if where is not None:
        try:
            return read(where, digest, workers)
        except FileNotFoundError:
            notes.append(f"{where} does not exist yet")
        except StaleStore as exc:
            notes.append(f"{where} is stale: {exc}")
        except (StoreError, OSError, ValueError, EOFError, TypeError) as exc:
            notes.append(f"{where} not used: {exc}")
            _warn("token store %s not used (%s); making it again", where, exc)
    prepared = build(data, reference, workers)
    prepared.notes = notes
    if where is None:
        prepared.origin = "built (not stored: no cache dir)"
        return prepared
    try:
        write(where, digest, prepared)
        prepared.origin = "built and stored"
    except OSError as exc:
        prepared.origin = f"built (not stored: {exc})"
        _warn(
            "could not store the token counter's tables in %s (%s): each start makes them "
            "again (~1 s); check that %s is writable",
            where,
            exc,
            where.parent,
        )
    return prepared


def build(data: bytes, reference: Callable[[], Reference], workers: int | None) -> Prepared:
    """Make the fast counter from ``tokenizer.json`` with every check: the loader's
    assumptions, then equal ids to ``tokenizers`` on ``CHECK_TEXTS``."""
    raw = json.loads(data)
    special = {str(t["content"]): int(t["id"]) for t in raw.get("added_tokens") or []}
    try:
        fast = fast_count.load(raw, workers)
    except fast_count.Unsupported as exc:
        return Prepared(None, str(exc), special, "built")
    ref = reference()
    expected = [
        list(e.ids) for e in ref.encode_batch_fast(list(CHECK_TEXTS), add_special_tokens=False)
    ]
    for text, ids in zip(CHECK_TEXTS, expected, strict=True):
        if fast.encode(text) != ids:
            why = f"tiktoken's ids differ from tokenizers' on the check text {text[:40]!r}"
            return Prepared(None, why, special, "built", reference=ref)
    return Prepared(fast, "", special, "built", reference=ref, checks=expected)


def write(path: Path, digest: str, prepared: Prepared) -> None:
    """Store ``prepared`` for the tokenizer of ``digest`` (atomically)."""
    fast = prepared.fast
    if fast is None:
        payload = b""
        checks: list[list[int]] = []
        long_ids = []
    else:
        tokens, ranks = fast.sorted_vocab()
        payload = marshal.dumps((tokens, ranks))
        long_ids = [i for i, t in enumerate(tokens) if len(t) > fast_count.SHORT]
        checks = prepared.checks
        if len(checks) != len(CHECK_TEXTS):
            raise ValueError("a fast counter is stored only with its check results")
    header = {
        "format": FORMAT,
        "tokenizer_sha256": digest,
        "pattern_sha256": _pattern_digest(),
        "tiktoken": _tiktoken_version(),
        "fast": fast is not None,
        "unavailable": prepared.unavailable,
        "special": prepared.special,
        "check_ids": checks,
        "long_ids": long_ids,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    line = json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + line + b"\n" + payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path, digest: str, workers: int | None = None) -> Prepared:
    """The counter stored at ``path`` for the tokenizer of ``digest``; raises
    ``StoreError`` (or ``OSError``) if it must not be used."""
    blob = path.read_bytes()
    if not blob.startswith(MAGIC):
        raise StoreError("not a Lectern token store")
    end = blob.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise StoreError("no header")
    header = json.loads(blob[len(MAGIC) : end])
    if not isinstance(header, dict):
        raise StoreError("the header is not an object")
    _expect(header, "format", FORMAT)
    _expect(header, "tokenizer_sha256", digest)
    _expect(header, "pattern_sha256", _pattern_digest())
    _expect(header, "tiktoken", _tiktoken_version())
    payload = memoryview(blob)[end + 1 :]
    if len(payload) != header.get("payload_bytes"):
        raise StoreError(f"the payload is {len(payload)} bytes, not {header.get('payload_bytes')}")
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise StoreError("the payload does not match its digest (damaged)")
    special = header.get("special")
    if not isinstance(special, dict):
        raise StoreError("no added tokens")
    special = {str(k): int(v) for k, v in special.items()}
    if not header.get("fast"):
        return Prepared(None, str(header.get("unavailable") or "refused"), special, "stored")
    vocab = marshal.loads(payload)
    if not (isinstance(vocab, tuple) and len(vocab) == 2):
        raise StoreError("the payload is not a sorted vocabulary")
    tokens, ranks = vocab
    if not (isinstance(tokens, list) and isinstance(ranks, list) and len(tokens) == len(ranks)):
        raise StoreError("the sorted vocabulary is malformed")
    if not tokens or not all(
        isinstance(t, bytes) and isinstance(r, int)
        for t, r in zip(_sample(tokens), _sample(ranks), strict=True)
    ):
        raise StoreError("the sorted vocabulary holds something else than tokens and ranks")
    probe = _sample(tokens)
    if any(a >= b for a, b in itertools.pairwise(probe)):
        raise StoreError("the vocabulary is not in byte order")
    long_ids = header.get("long_ids")
    if not isinstance(long_ids, list):
        raise StoreError("no list of long tokens")
    try:
        long = [(tokens[i], ranks[i]) for i in long_ids]
    except (IndexError, TypeError):
        raise StoreError("the list of long tokens is malformed") from None
    try:
        fast = fast_count.counter_from_ranks(
            None, workers, lazy=True, long=long, sorted_vocab=(tokens, ranks)
        )
    except fast_count.Unsupported as exc:
        raise StoreError(str(exc)) from None
    checks = header.get("check_ids")
    if not isinstance(checks, list) or len(checks) != len(CHECK_TEXTS):
        raise StoreError("the check results are missing")
    texts = CHECK_TEXTS[:READ_CHECKS]
    got = fast.encode_alone(texts)  # one encoder of the tokens they hold
    for text, ids, mine in zip(texts, checks, got, strict=False):
        if mine != ids:
            raise StoreError(f"its ids differ from the checked ones on {text[:40]!r}")
    return Prepared(fast, "", special, "stored")


def _expect(header: Mapping[str, Any], key: str, want: object) -> None:
    got = header.get(key)
    if got != want:
        raise StaleStore(f"made for another {key.replace('_', ' ')} ({got!r}, not {want!r})")


def _sample(tokens: Sequence[Any]) -> list[Any]:
    step = max(1, len(tokens) // 64)
    return [t for t in tokens[::step] if t is not None]
