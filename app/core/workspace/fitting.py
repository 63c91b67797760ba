"""Does the prompt fit, and what to leave out so it does: measured on the rendered prompt.

Every figure here is what a document costs in the prompt (its rendered block,
line anchors and page markers included: ``app.core.prompt.corpus``), never its
bare text. A suggestion is checked by rendering the prompt without it for the
backend that would answer; when the backend counts with another tokenizer than
the library's (a local GGUF), the shortfall is measured and the suggestion
grown until the rendered prompt fits, so applying it always makes the next
quote fit. Backends whose window holds the whole corpus are named first: no
need to drop most of it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.fit import FitSuggestion, fit_suggestions

if TYPE_CHECKING:
    from app.core.ask.cascade import Cascade
    from app.core.prompt.base import RenderedPrompt
    from app.core.session import Conversation
    from app.core.session.store import StoredDocument
    from backends.base import ThinkingMode
    from backends.router import BackendSpec, Router

_ROUNDS = 6  # grow a suggestion at most this many times before giving up


@dataclass(frozen=True)
class FitReport:
    """How full ``backend``'s window is, and the exclusions that make the prompt fit.

    ``conversation_tokens``: the questions and answers only (documents added
    mid-session count as documents). ``exclude``: the document paths to leave
    out; empty when the prompt fits or when no exclusion can make it fit.
    ``larger``: other usable backends whose window holds the prompt as it is.
    """

    backend: str
    window: int
    prompt_tokens: int
    reserved: int
    conversation_tokens: int
    suggestions: tuple[FitSuggestion, ...] = ()
    after_tokens: int | None = None  # the prompt's tokens once ``exclude`` is applied
    larger: tuple[str, ...] = ()

    @property
    def over(self) -> int:
        return max(0, self.prompt_tokens + self.reserved - self.window)

    @property
    def fits(self) -> bool:
        return self.over == 0

    @property
    def exclude(self) -> tuple[str, ...]:
        return tuple(f for s in self.suggestions for f in s.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "window": self.window,
            "prompt_tokens": self.prompt_tokens,
            "reserved": self.reserved,
            "conversation_tokens": self.conversation_tokens,
            "over": self.over,
            "exclude": list(self.exclude),
            "suggestions": [
                {"path": s.path, "prompt_tokens": s.tokens, "why": s.why, "files": list(s.files)}
                for s in self.suggestions
            ],
            "prompt_tokens_after": self.after_tokens,
            "larger_windows": list(self.larger),
        }


def prompt_costs(docs: Sequence[StoredDocument]) -> list[int]:
    """What each document costs in the prompt (V4 tokens of its rendered block)."""
    from app.core.prompt.corpus import block_tokens

    return block_tokens([d.document for d in docs])


def conversation_only(conv: Conversation, rendered: RenderedPrompt) -> int:
    """The prompt's tokens after its stable prefix, less the documents riding in turns."""
    riding = [d for t in conv.turns for d in t.added] + list(conv.pending)
    return max(0, rendered.suffix_tokens - sum(prompt_costs(riding)))


def matches(path: str, patterns: Iterable[str]) -> bool:
    """``path`` is named by a pattern: the path itself, a folder holding it, or a glob."""
    for pattern in patterns:
        p = pattern.strip().rstrip("/")
        if not p:
            continue
        if path == p or path.startswith(p + "/") or fnmatch.fnmatchcase(path, p):
            return True
        if p.startswith("**/") and fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], p[3:]):
            return True
    return False


def without(conv: Conversation, patterns: Iterable[str]) -> Conversation:
    """``conv`` with the documents ``patterns`` name left out (nothing is written)."""
    pats = tuple(patterns)

    def keep(docs: Iterable[StoredDocument]) -> tuple[StoredDocument, ...]:
        return tuple(d for d in docs if not matches(d.document.path, pats))

    return dataclasses.replace(
        conv,
        corpus=keep(conv.corpus),
        turns=tuple(dataclasses.replace(t, added=keep(t.added)) for t in conv.turns),
        pending=keep(conv.pending),
    )


def unmatched(conv: Conversation, patterns: Iterable[str]) -> list[str]:
    """The patterns that name no document of ``conv``."""
    paths = [d.document.path for d in conv.documents]
    return [p for p in patterns if not any(matches(path, (p,)) for path in paths)]


def fit_report(  # noqa: PLR0917 (the quote's inputs, in order)
    cascade: Cascade,
    router: Router,
    conv: Conversation,
    question: str,
    mode: ThinkingMode | None,
    backend: str | None,
) -> FitReport | None:
    """How ``question`` fits the backend that would answer it (``backend``, else the
    draft), with checked exclusions when it does not. None when there is no such
    backend or nothing to render."""
    from app.core.ask.planner import conversation_turns

    name = backend or router.settings.draft
    spec = router.specs.get(name or "")
    if spec is None or not conv.documents:
        return None
    mode = mode or cascade.session.mode
    reserve = cascade.max_tokens(spec, mode)

    def render(c: Conversation, s: BackendSpec = spec) -> RenderedPrompt:
        return cascade.render(cascade.snapshot(c), s, conversation_turns(c, question), mode)

    rendered = render(conv)
    report = FitReport(
        spec.name, spec.context, rendered.prompt_tokens, reserve, conversation_only(conv, rendered)
    )
    if report.fits:
        return report
    report = dataclasses.replace(report, larger=_larger(cascade, router, conv, spec, render))
    paths = [d.document.path for d in conv.documents]
    docs = list(zip(paths, prompt_costs(conv.documents), strict=True))
    need = report.over
    for _ in range(_ROUNDS):
        found = fit_suggestions(docs, need)
        if not found:
            return report
        after = render(without(conv, [f for s in found for f in s.files]))
        left = after.prompt_tokens + reserve - spec.context
        if left <= 0:
            return dataclasses.replace(
                report, suggestions=tuple(found), after_tokens=after.prompt_tokens
            )
        # Another tokenizer: grow the ask by the shortfall, in the library's tokens.
        freed_here = max(1, rendered.prompt_tokens - after.prompt_tokens)
        freed_v4 = sum(s.tokens for s in found)
        need += math.ceil(left * max(1.0, freed_v4 / freed_here)) + 1
    return report


def _larger(
    cascade: Cascade,
    router: Router,
    conv: Conversation,
    chosen: BackendSpec,
    render: Any,
) -> tuple[str, ...]:
    """Other usable backends whose window holds the whole prompt."""
    local_only = any(d.local_only for d in conv.documents)
    out = []
    for spec in router.specs.values():
        if spec.name == chosen.name or spec.unavailable is not None:
            continue
        if router.why_forbidden(spec, local_only=local_only) is not None:
            continue
        if spec.context <= chosen.context:
            continue
        mode = cascade.session.mode
        try:
            tokens = render(conv, spec).prompt_tokens
        except Exception:
            continue
        if tokens + cascade.max_tokens(spec, mode) <= spec.context:
            out.append(spec.name)
    return tuple(out)
