"""What every prompt renderer shares: turns in, a rendered prompt out, and the
``Renderer`` base class that checks the one and packs the other.

A prompt is ``[BOS][effort][system][corpus][turns]``. Everything up to the end
of the corpus is the *stable prefix*: identical, id for id, for every turn of a
session with a given model and thinking mode. That is what keeps DeepSeek's
context cache hitting and what lets a local engine restore a saved prefix state.
Documents added mid-session never enter the prefix: they ride in the user
message of the turn they were added to (``Turn.added_block``).

A ``RenderedPrompt`` also describes its own structure as ``Segment``s (a hash and
a token count per structural token or text run) so that the client-side cache
model in ``app.core.ask.cache_plan`` can reason about prefix units without holding
a million token ids per request.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.core.ingest.pretok import is_newline_cut
from app.core.prompt.corpus import CountedText
from backends.base import Message, ThinkingMode


@dataclass(frozen=True)
class Turn:
    """One question of a session, with its answer once there is one.

    ``added_block`` is the rendered block of documents added in this turn
    (e.g. ``"<documents added>\\n...\\n</documents added>\\n\\n"``); it is put in
    front of the question in the user message, after everything already sent.
    """

    question: str
    answer: str | None = None
    added_block: str = ""

    @property
    def user_content(self) -> str:
        """The user message as sent: added documents first, then the question."""
        return self.added_block + self.question


@dataclass(frozen=True)
class Segment:
    """One piece of a rendered prompt, as the cache model sees it.

    ``key`` identifies the content (a sha256 hex digest, or a special token's
    spelling); ``tokens`` is its token count; ``head`` tells two pieces apart at
    their first token without knowing the ids: the first UTF-8 byte of a text
    (0-255), 256 for an empty text, or a negative number derived from a
    special token's spelling (never equal to a text's).
    """

    key: str
    tokens: int
    head: int


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt rendered for one model family.

    ``messages``: the conversation for servers that render it themselves.
    ``prompt_ids``: the exact ids, when asked for (``with_ids=True``) and the
    renderer can produce them. ``prompt_tokens``: the count as the target
    renders it (an estimate when ``estimated``). ``prefix_tokens``: tokens up
    to the end of the corpus, the stable prefix. ``text``: the prompt as one
    string (None when only the server knows it). ``segments``: the structure
    for the cache model. ``turn_starts``: token offset where each turn's user
    message begins.
    """

    messages: tuple[Message, ...]
    prompt_ids: tuple[int, ...] | None
    prompt_tokens: int
    prefix_tokens: int
    estimated: bool
    text: str | None
    segments: tuple[Segment, ...]
    turn_starts: tuple[int, ...]
    renderer: str
    mode: ThinkingMode

    @property
    def suffix_tokens(self) -> int:
        """Tokens after the stable prefix: what a restored prefix state must still prefill."""
        return self.prompt_tokens - self.prefix_tokens


class Renderer(ABC):
    """Renders a session's prompt for one model family.

    ``family`` is a ``backends.profiles.FAMILIES`` value; ``version`` changes
    whenever the rendered bytes for the same input would change (saved prefix
    states and caches are keyed by it). ``estimated`` marks counts made with a
    tokenizer other than the target's. Subclasses lay the prompt out
    (``_assemble``); ``render`` checks the turns and packs the result.
    """

    family: str
    version: str
    estimated: bool = False
    exact_ids: bool = True  # False: the renderer cannot produce ids (with_ids refused)

    def render(
        self,
        system: str,
        corpus: str,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        *,
        with_ids: bool = False,
    ) -> RenderedPrompt:
        """Render ``[BOS][effort][system+corpus][turns]``; the last turn is the new question."""
        if with_ids and not self.exact_ids:
            raise ValueError(
                f"{self.family}: exact ids need the model's own tokenizer; "
                "pass the engine to renderer_for()"
            )
        check_turns(turns)
        known = (len(corpus), corpus.tokens) if isinstance(corpus, CountedText) else None
        built = self._assemble(system + corpus, turns, mode, with_ids, known=known)
        return RenderedPrompt(
            messages=conversation_messages(system, corpus, turns),
            prompt_ids=tuple(built.ids) if built.ids is not None else None,
            prompt_tokens=built.position,
            prefix_tokens=built.prefix_tokens,
            estimated=self.estimated,
            text=built.text,
            segments=tuple(built.segments),
            turn_starts=tuple(built.turn_starts),
            renderer=self.version,
            mode=mode,
        )

    @abstractmethod
    def output_segments(
        self, answer: str, reasoning: str | None, mode: ThinkingMode
    ) -> tuple[Segment, ...]:
        """The segments a request's output adds after its input, for the cache model."""

    @abstractmethod
    def _assemble(
        self,
        head: str,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        with_ids: bool,
        *,
        known: KnownTail | None = None,
    ) -> PromptAssembly:
        """The prompt for system+corpus ``head`` and checked ``turns``; ids if ``with_ids``.
        ``known``: the corpus's (chars, V4 tokens) at the end of ``head``, when known."""


class PromptAssembly:
    """A prompt put together piece by piece after its stable prefix (the head).

    Tracks the token position, the segments, where each turn starts, and, when
    wanted, the ids and the text.
    """

    def __init__(self, key: str, tokens: int, ids: Sequence[int] | None, text: str | None) -> None:
        """``key``/``tokens``: the head segment; ``ids``/``text``: the head's, or None
        when the prompt is rendered without them."""
        self.prefix_tokens = tokens
        self.position = tokens
        self.segments = [Segment(key=key, tokens=tokens, head=-1)]
        self.turn_starts: list[int] = []
        self.ids = list(ids) if ids is not None else None
        self._texts = [text] if text is not None else None

    @property
    def text(self) -> str | None:
        return "".join(self._texts) if self._texts is not None else None

    def start_turn(self) -> None:
        """A user message begins at the current position."""
        self.turn_starts.append(self.position)

    def add(self, segment: Segment, ids: Sequence[int] = (), text: str = "") -> None:
        """Append a piece: its segment, and its ids and text where those are kept."""
        self.segments.append(segment)
        self.position += segment.tokens
        if self.ids is not None:
            self.ids.extend(ids)
        if self._texts is not None:
            self._texts.append(text)

    def pad(self, tokens: int) -> None:
        """Count tokens no segment stands for (an estimate's generation prompt)."""
        self.position += tokens


KnownTail = tuple[int, int]  # (chars, exact V4 tokens) of the text that ends a head


def count_head(count: Callable[[str], int], head: str, known: KnownTail | None) -> int:
    """V4 tokens of ``head`` by ``count`` (V4's own counter), reusing ``known``.

    When the known tail (the corpus) meets the rest of the head at a safe cut
    (``pretok.is_newline_cut``), the count is the head's short prefix counted plus
    the tail's known tokens, and the corpus is not tokenized again. Otherwise the
    whole head is counted.
    """
    if known is not None:
        chars, tokens = known
        cut = len(head) - chars
        if 0 <= cut < len(head) and is_newline_cut(head, cut):
            return (count(head[:cut]) if cut else 0) + tokens
    return count(head) if head else 0


def sha256_hex(*parts: str) -> str:
    """Hex sha256 of ``parts`` joined unambiguously (NUL-separated, length-prefixed)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def text_segment(text: str, tokens: int) -> Segment:
    """The segment of a text run of ``tokens`` tokens."""
    head = text.encode("utf-8", "surrogatepass")[0] if text else 256
    return Segment(key=sha256_hex("text", text), tokens=tokens, head=head)


def special_segment(spelling: str) -> Segment:
    """The segment of one structural special token."""
    return Segment(
        key=f"special:{spelling}", tokens=1, head=-1 - (zlib.crc32(spelling.encode()) >> 2)
    )


def check_turns(turns: Sequence[Turn]) -> None:
    """Refuse a history whose last turn is not an open question."""
    if not turns:
        raise ValueError("A prompt needs at least one turn: the question to answer.")
    if turns[-1].answer is not None:
        raise ValueError(
            "The last turn is the question to answer, so its answer must be None; "
            "append a new Turn for the next question."
        )


def conversation_messages(system: str, corpus: str, turns: Sequence[Turn]) -> tuple[Message, ...]:
    """The OpenAI-style messages: system+corpus, then the turns (reasoning never sent back)."""
    return (Message(role="system", content=system + corpus), *turn_messages(turns))


def turn_messages(turns: Sequence[Turn]) -> list[Message]:
    """The user and assistant messages of ``turns``, in order."""
    out: list[Message] = []
    for turn in turns:
        out.append(Message(role="user", content=turn.user_content))
        if turn.answer is not None:
            out.append(Message(role="assistant", content=turn.answer))
    return out


K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A tiny thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now most recent), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entry when full."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
