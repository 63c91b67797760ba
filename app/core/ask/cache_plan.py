"""A client-side model of DeepSeek's context cache, and the cheapest way to prime it.

DeepSeek stores whole "prefix units" and bills a prompt token as a cache hit
only inside the longest stored unit the new request's rendered input starts
with (``DEEPSEEK.md``, "Context cache"). Units are stored

1. at the end of every request's input and at the end of its output,
2. at the common prefix of two requests (A+B then A+C stores A; A+D hits A),
3. at fixed intervals inside long inputs and outputs (interval unpublished).

``CacheModel`` replays a session's requests as ``Segment`` chains (one hash and
token count per structural token or text run, from ``RenderedPrompt``) and
predicts the hit of the next request under rules 1 and 2, and under rule 3 when
an interval is given. Without an interval the prediction is a lower bound: the
real cache may also hit at interval units. Rule-2 units are placed at segment
boundaries; where two requests' first differing segments might still share
leading tokens (same first byte), no unit is assumed (lower bound again). The
model assumes an answer re-tokenizes as it was generated.

What this means for a session (one corpus C, ``U``/``A`` the user/assistant
tokens):

* Non-thinking: question 1 stores ``C U q1 A </think>`` (input) and that plus
  the answer (output). Question 2's prompt starts with the output unit, so it
  hits nearly everything. No extra request is needed.
* Thinking: question 1's input ends ``A <think>`` but history renders that turn
  as ``A </think> answer``, so neither rule-1 unit of question 1 is a prefix of
  question 2, and question 2 would miss the whole corpus; only then does rule 2
  store ``C U q1 A``, which question 3 hits. Priming moves that earlier at no
  extra miss: alongside question 1, send the same system+corpus with a one-
  character user message whose first byte differs from question 1's, and
  ``max_tokens=1``. Rule 2 stores ``C U`` (their common prefix), so question 2
  and every later one hit >= the corpus. Question 1 and the priming request
  both miss the corpus (the first request of a corpus always does; the second
  miss is what question 2 would have paid anyway), plus one output token. Send
  it after question 1's request has reached the server, so rule 2 sees both.
  ``plan_priming`` decides this by simulating the model, so a resumed session,
  a mode change or a corpus already stored gets no needless priming.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from app.core.prompt.base import (
    RenderedPrompt,
    Renderer,
    Segment,
    Turn,
    special_segment,
    text_segment,
)
from backends.base import Message, ThinkingMode
from backends.profiles import Profile

# Placeholder content for a request's not-yet-known parts: never equal to anything.
_UNKNOWN = "\x00unknown"
PRIMING_CANDIDATES = (".", "?", "0", "x", "-")


@dataclass(frozen=True)
class _Boundary:
    chain: str  # hash of every segment up to and including this one
    tokens: int  # cumulative tokens at the end of this segment
    head: int  # the head of this segment (for rule-2 certainty)


def _chain(segments: Sequence[Segment]) -> list[_Boundary]:
    out: list[_Boundary] = []
    digest = hashlib.sha256()
    total = 0
    for seg in segments:
        digest.update(seg.key.encode())
        digest.update(b"\x00")
        total += seg.tokens
        out.append(_Boundary(chain=digest.copy().hexdigest(), tokens=total, head=seg.head))
    return out


@dataclass(frozen=True)
class Prediction:
    """Expected cache figures for one request.

    ``hit_tokens`` is the predicted hit; ``lower_bound`` says the real hit may
    be higher (fixed-interval units unknown, or an uncertain rule-2 unit).
    """

    prompt_tokens: int
    hit_tokens: int
    lower_bound: bool
    note: str

    @property
    def miss_tokens(self) -> int:
        """Prompt tokens billed at the miss price."""
        return self.prompt_tokens - self.hit_tokens

    @property
    def hit_ratio(self) -> float:
        """Share of prompt tokens that hit (0 for an empty prompt)."""
        return self.hit_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


@dataclass
class CacheModel:
    """DeepSeek's prefix-unit cache as the client can model it, for one session.

    Feed it every request sent on one API model (and ``user_id``) with
    ``record(prompt_segments, output_segments)``, in the order sent; ask it
    ``predict(segments)`` before sending the next one. ``interval`` models rule 3
    when known (e.g. a test fixture); None leaves it out and marks predictions
    as lower bounds.
    """

    interval: int | None = None
    _units: dict[str, int] = field(default_factory=dict)
    _inputs: list[list[_Boundary]] = field(default_factory=list)
    _sequences: list[list[_Boundary]] = field(default_factory=list)
    _uncertain: bool = False

    def copy(self) -> CacheModel:
        """An independent copy, for what-if simulations."""
        return CacheModel(
            interval=self.interval,
            _units=dict(self._units),
            _inputs=list(self._inputs),
            _sequences=list(self._sequences),
            _uncertain=self._uncertain,
        )

    @property
    def unit_tokens(self) -> tuple[int, ...]:
        """Token lengths of the stored rule-1/rule-2 units, ascending (for tests and notes)."""
        return tuple(sorted(set(self._units.values())))

    def predict(self, segments: Sequence[Segment]) -> Prediction:
        """The expected hit of a request with these prompt segments, before it is sent."""
        chain = _chain(segments)
        total = chain[-1].tokens if chain else 0
        hit = 0
        for b in chain:
            if b.chain in self._units:
                hit = b.tokens
        if self.interval:
            shared = max((_common(chain, seq)[1] for seq in self._sequences), default=0)
            hit = max(hit, shared // self.interval * self.interval)
        lower = self.interval is None or self._uncertain
        if self.interval is None:
            note = "cache hits are a lower bound: fixed-interval units are not published"
        elif self._uncertain:
            note = "cache hits are a lower bound: some shared prefixes end inside a text"
        else:
            note = ""
        return Prediction(
            prompt_tokens=total, hit_tokens=min(hit, total), lower_bound=lower, note=note
        )

    def record(self, segments: Sequence[Segment], output: Sequence[Segment] = ()) -> Prediction:
        """Account for a request sent with ``segments`` that produced ``output``.

        Returns the prediction made before storing its units. ``output`` may be
        empty when the request failed before answering (its input unit is still
        stored: the server read it).
        """
        before = self.predict(segments)
        request = _chain(segments)
        full = _chain([*segments, *output])
        for seq in self._inputs:  # rule 2: the common prefix with each earlier input
            k, _ = _common(request, seq)
            if k == 0 or k == len(request) or k == len(seq):
                continue  # nothing shared, or a plain prefix (rule 1 covers it)
            if request[k].head == seq[k].head:
                self._uncertain = True  # they may share tokens past the boundary
                continue
            self._units[request[k - 1].chain] = request[k - 1].tokens
        if request:  # rule 1: end of input, end of output
            self._units[request[-1].chain] = request[-1].tokens
        if full:
            self._units[full[-1].chain] = full[-1].tokens
        self._inputs.append(request)
        self._sequences.append(full)
        return before


def _common(a: Sequence[_Boundary], b: Sequence[_Boundary]) -> tuple[int, int]:
    """(segments, tokens) the two chains share from the start."""
    k = 0
    for x, y in zip(a, b, strict=False):
        if x.chain != y.chain:
            break
        k += 1
    return k, (a[k - 1].tokens if k else 0)


# --- priming -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrimingRequest:
    """A tiny extra request that makes the corpus prefix a stored cache unit.

    Send ``messages`` in the session's ``mode`` with ``max_tokens``, right after
    the question's own request has reached the server. ``segments`` are for
    ``CacheModel.record``. ``cost_expected`` is None when the price is unknown.
    """

    messages: tuple[Message, ...]
    mode: ThinkingMode
    max_tokens: int
    prompt: RenderedPrompt
    expected: Prediction
    cost_expected: Decimal | None
    next_hit_without: int
    next_hit_with: int
    note: str

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The request's structure, to record in the cache model once sent."""
        return self.prompt.segments


def _placeholder_output(renderer: Renderer, mode: ThinkingMode) -> tuple[Segment, ...]:
    return renderer.output_segments(_UNKNOWN + "answer", _UNKNOWN + "reasoning", mode)


def next_request_segments(
    renderer: Renderer, prompt: RenderedPrompt, mode: ThinkingMode
) -> tuple[Segment, ...]:
    """The start of the following question's prompt: ``prompt``'s turns, then an unknown one.

    DeepSeek renderers only (the API is the only cache modelled here).

    The final think marker of ``prompt`` becomes ``</think>`` + answer + EOS
    in history, as every DeepSeek renderer does; the unknown answer and next
    question match nothing, so only the known part can hit.
    """
    from app.core.prompt.deepseek_v4 import END_THINK

    head = list(prompt.segments[:-1])
    head.append(special_segment(END_THINK))
    head.extend(_placeholder_output(renderer, ThinkingMode.NON_THINK))
    return tuple(head)


def shared_start(prompt: RenderedPrompt) -> tuple[Segment, ...]:
    """The start of another request on the same corpus whose turns differ (the next
    review or escalation): the prefix, the tag that opens the first turn, then an
    unknown text. The rule-2 unit priming stores ends after that tag, so a request
    modelled as the prefix alone would never be seen to hit it."""
    head: list[Segment] = []
    tokens = 0
    for seg in prompt.segments:
        if tokens >= prompt.prefix_tokens:
            if seg.key.startswith("special:"):
                head.append(seg)
            break
        head.append(seg)
        tokens += seg.tokens
    head.append(text_segment(_UNKNOWN + "turn", 1))
    return tuple(head)


def plan_priming(
    mode: ThinkingMode,
    turn_index: int,
    cache_model: CacheModel,
    *,
    renderer: Renderer,
    system: str,
    corpus: str,
    turns: Sequence[Turn],
    profile: Profile | None = None,
    at: dt.datetime | None = None,
    reuse: str = "conversation",
) -> PrimingRequest | None:
    """The priming request to send with question ``turn_index`` (0-based), or None.

    ``turns`` is the history plus the question about to be sent (last, open).
    Returns None when the cache model says the next request will hit the
    corpus anyway (non-thinking mode; a unit already covers the corpus) or
    priming would not help. ``profile``/``at`` price the request.
    ``reuse``: what the next request shares with this one: ``conversation`` (the
    next question continues it) or ``prefix`` (only the system prompt and corpus:
    the next review or escalation ends in a turn of its own).
    """
    from app.core.pricing import cost_of

    question = renderer.render(system, corpus, turns, mode)
    if reuse == "prefix":
        nxt = shared_start(question)
    else:
        nxt = next_request_segments(renderer, question, mode)
    without = cache_model.copy()
    without.record(question.segments, _placeholder_output(renderer, mode))
    hit_without = without.predict(nxt).hit_tokens
    if hit_without >= question.prefix_tokens:
        return None

    first_user = turns[0].user_content.encode("utf-8")[:1]
    text = next(c for c in PRIMING_CANDIDATES if c.encode() != first_user)
    priming = renderer.render(system, corpus, [Turn(text)], mode)
    with_priming = cache_model.copy()
    with_priming.record(question.segments, _placeholder_output(renderer, mode))
    expected = with_priming.predict(priming.segments)
    with_priming.record(priming.segments, _placeholder_output(renderer, mode))
    hit_with = with_priming.predict(nxt).hit_tokens
    if hit_with < question.prefix_tokens:
        return None

    price = None
    if profile is not None and at is not None:
        price = cost_of(expected.hit_tokens, expected.miss_tokens, 1, profile, at)
    return PrimingRequest(
        messages=priming.messages,
        mode=mode,
        max_tokens=1,
        prompt=priming,
        expected=expected,
        cost_expected=None if price is None else price.total,
        next_hit_without=hit_without,
        next_hit_with=hit_with,
        note=(
            (
                "primes the cache for the next review: it will hit "
                if reuse == "prefix"
                else f"primes the cache for question {turn_index + 2}: it will hit "
            )
            + f"{hit_with:,} tokens instead of {hit_without:,}"
        ),
    )
