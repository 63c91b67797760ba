"""DeepSeek V4's prompt format, rendered exactly as the API renders it.

``BOS`` + effort text (thinking modes) + system + corpus, then per turn
``<｜User｜>`` + user text + ``<｜Assistant｜>``; an earlier turn continues with
``</think>`` + answer + ``EOS`` (its reasoning is dropped), the last one ends
with ``<think>`` when thinking and ``</think>`` when not. Text pieces are
encoded as user text (special spellings inside stay plain text) and the
structural tokens are inserted by id, so the ids equal DeepSeek's own renderer
(``deepseek-recipe``, the oracle in the tests).

The effort texts are data (``resources/prompts/effort.toml``). The same
machinery renders V4.1 (``deepseek_v41.py``), which differs only in the
head of the prompt.

Rendering turn N+1 never re-tokenizes the corpus: the encoded (or counted)
head is memoized per (renderer version, mode, sha256 of effort+system+corpus).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.core.prompt.base import (
    LRU,
    KnownTail,
    PromptAssembly,
    Renderer,
    Segment,
    Turn,
    count_head,
    sha256_hex,
    special_segment,
    text_segment,
)
from app.core.resources import resource
from backends.base import ThinkingMode

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK = "<think>"
END_THINK = "</think>"

EFFORT_FILE = "effort.toml"


class TextEncoder(Protocol):
    """Encodes user text; ``tokens.TokenCounter`` is one."""

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` as plain text."""
        ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text."""
        ...

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of each text."""
        ...

    def special_id(self, spelling: str) -> int:
        """Id of a special token; KeyError when the vocabulary has none."""
        ...


@dataclass(frozen=True)
class Dialect:
    """What distinguishes one DeepSeek prompt format from another."""

    family: str
    head_specials: tuple[str, ...]
    effort: Mapping[ThinkingMode, str]
    digest: str  # of the data the format was built from
    # V4.1 wraps the effort text and system prompt in a <｜System｜> block that is
    # left out entirely when both are empty.
    system_token: str | None = None

    def specials(self, head_text: str) -> tuple[str, ...]:
        """The structural tokens before the head text."""
        if self.system_token and head_text:
            return (*self.head_specials, self.system_token)
        return self.head_specials


@functools.cache
def effort_data() -> dict[str, dict[str, str]]:
    """``resources/prompts/effort.toml``, parsed once."""
    with resource("prompts", EFFORT_FILE).open("rb") as fh:
        raw = tomllib.load(fh)
    return {family: {k: str(v) for k, v in table.items()} for family, table in raw.items()}


def dialect_for(family: str) -> Dialect:
    """The dialect of ``family``'s table in the effort file: BOS, the ``system_token``
    if the table names one, then the effort text (none when not thinking)."""
    data = effort_data()[family]
    effort = {
        ThinkingMode.NON_THINK: "",
        ThinkingMode.HIGH: data["high"],
        ThinkingMode.MAX: data["max"],
    }
    return Dialect(
        family=family,
        head_specials=(BOS,),
        system_token=data.get("system_token"),
        effort=effort,
        digest=sha256_hex(*sorted(f"{k}={v}" for k, v in data.items()))[:12],
    )


def v4_dialect() -> Dialect:
    """DeepSeek V4: BOS, then the effort text (none when not thinking)."""
    return dialect_for("deepseek-v4")


@dataclass(frozen=True)
class _Head:
    count: int
    ids: tuple[int, ...] | None


_Piece = tuple[bool, str]  # (is_special, spelling or text)


class DeepSeekRenderer(Renderer):
    """Renders a DeepSeek prompt in one dialect with one text encoder.

    ``estimated`` marks counts made with a tokenizer other than the target's
    (V4.1 counted with V4's). ``with_ids`` needs every special token in the
    encoder's vocabulary; otherwise it raises ``ValueError``.
    """

    def __init__(
        self, dialect: Dialect, encoder: TextEncoder, *, estimated: bool, v4_counts: bool = False
    ) -> None:
        """``v4_counts``: ``encoder`` is V4's own tokenizer, so a corpus's stored V4
        count (``CountedText``) may stand in for counting it."""
        self._v4_counts = v4_counts
        self.family = dialect.family
        self.version = f"{dialect.family}/1/{dialect.digest}"
        self._dialect = dialect
        self._encoder = encoder
        self.estimated = estimated
        self._heads: LRU[tuple[str, str, str], _Head] = LRU(4)
        self._texts: LRU[str, tuple[int, ...]] = LRU(1024)

    # -- rendering ------------------------------------------------------------

    def _assemble(
        self,
        head: str,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        with_ids: bool,
        *,
        known: KnownTail | None = None,
    ) -> PromptAssembly:
        head_text = self._dialect.effort[mode] + head
        digest = sha256_hex(head_text)
        cached = self._head(head_text, digest, mode, with_ids, known if self._v4_counts else None)
        specials = self._dialect.specials(head_text)
        head_ids: list[int] | None = None
        if with_ids:
            assert cached.ids is not None
            head_ids = [self._special(s) for s in specials] + list(cached.ids)
        out = PromptAssembly(
            key=sha256_hex(self.version, mode.value, "head", digest),
            tokens=len(specials) + cached.count,
            ids=head_ids,
            text="".join(specials) + head_text,
        )
        pieces = self._turn_pieces(turns, mode)
        encoded = iter(self._encode_texts([p for special, p in pieces if not special]))
        for special, piece in pieces:
            if special:
                if piece == USER:
                    out.start_turn()
                out.add(special_segment(piece), [self._special(piece)] if with_ids else (), piece)
                continue
            piece_ids = next(encoded)
            if piece:
                out.add(text_segment(piece, len(piece_ids)), piece_ids, piece)
        return out

    def output_segments(
        self, answer: str, reasoning: str | None, mode: ThinkingMode
    ) -> tuple[Segment, ...]:
        """What the model's output appends to its input: [reasoning ``</think>``] answer EOS."""
        out: list[Segment] = []
        if mode.thinking:
            if reasoning:
                out.append(text_segment(reasoning, len(self._encode_texts([reasoning])[0])))
            out.append(special_segment(END_THINK))
        if answer:
            out.append(text_segment(answer, len(self._encode_texts([answer])[0])))
        out.append(special_segment(EOS))
        return tuple(out)

    # -- internals --------------------------------------------------------------

    def _special(self, spelling: str) -> int:
        try:
            return self._encoder.special_id(spelling)
        except KeyError:
            raise ValueError(
                f"{self.family}: the tokenizer has no {spelling} token, so exact ids cannot "
                "be produced; pass the model's own tokenizer (engine) to renderer_for()."
            ) from None

    def _head(
        self,
        head_text: str,
        digest: str,
        mode: ThinkingMode,
        with_ids: bool,
        known: KnownTail | None,
    ) -> _Head:
        key = (self.version, mode.value, digest)
        cached = self._heads.get(key)
        if cached is not None and (cached.ids is not None or not with_ids):
            return cached
        if with_ids:
            for spelling in self._dialect.specials(head_text):
                self._special(spelling)  # fail before encoding a large corpus
            ids = tuple(self._encoder.encode(head_text)) if head_text else ()
            head = _Head(count=len(ids), ids=ids)
        else:
            # A reopened session's corpus comes with its stored count: not re-tokenized.
            count = count_head(lambda t: self._encoder.count_batch([t])[0], head_text, known)
            head = _Head(count=count, ids=None)
        self._heads.put(key, head)
        return head

    def _turn_pieces(self, turns: Sequence[Turn], mode: ThinkingMode) -> list[_Piece]:
        pieces: list[_Piece] = []
        last = len(turns) - 1
        for i, turn in enumerate(turns):
            pieces += [(True, USER), (False, turn.user_content), (True, ASSISTANT)]
            if i < last:
                pieces += [(True, END_THINK), (False, turn.answer or ""), (True, EOS)]
            else:
                pieces.append((True, THINK if mode.thinking else END_THINK))
        return pieces

    def _encode_texts(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...] | None] = [self._texts.get(t) for t in texts]
        missing = sorted({t for t, ids in zip(texts, out, strict=True) if ids is None and t})
        if missing:
            fresh = dict(zip(missing, self._encoder.encode_batch(missing), strict=True))
            for text, ids in fresh.items():
                self._texts.put(text, tuple(ids))
            out = [
                ids if ids is not None else tuple(fresh.get(t, ()))
                for t, ids in zip(texts, out, strict=True)
            ]
        return [ids if ids is not None else () for ids in out]


def v4_renderer(encoder: TextEncoder | None = None) -> DeepSeekRenderer:
    """The V4 renderer, with V4's own tokenizer unless ``encoder`` is given."""
    from app.core.tokens import deepseek_v4

    own = deepseek_v4()
    chosen = own if encoder is None else encoder
    return DeepSeekRenderer(v4_dialect(), chosen, estimated=False, v4_counts=chosen is own)
