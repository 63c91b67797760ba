"""What the window does with a job's events, and the figures it derives from a plan.

``JobView`` turns the typed events of a running job (``app.core.events``) into
what the window shows: the live message in the transcript, the meters, a
progress bar for reading files or a local prefill, the review card under its
draft, citations marked in the library and on the context map. ``quote_html``
and ``context_map_data`` say what a plan costs and how full the window is.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from app.core.events import (
    AnswerEnded,
    AnswerStarted,
    CitationsChecked,
    Meter,
    Progress,
    ReasoningChunk,
    ReviewVerdict,
    Status,
    TextChunk,
)
from app.core.pricing import format_money
from app.ui.chat.model import ChatMessage
from app.ui.context.context_map import ContextMapData, MapEntry
from app.ui.library.library import eta_text
from app.ui.shell.records import DocRow, cited_paths, label_of

if TYPE_CHECKING:
    from app.ui.shell.controller import QuoteView, SessionView
    from app.ui.shell.window import MainWindow

PHASES = {
    "prefill": "Reading the prompt into the local model",
    "save_state": "Saving the corpus state (reopening will be instant)",
    "restore_state": "Restoring the saved corpus state",
}
_ids = itertools.count(1)


class JobView:
    """The window's side of a running job."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.question = ""
        self.live_role = ""
        self.text: list[str] = []
        self.reasoning_chars = 0
        self.citations: tuple[Any, ...] = ()
        self.review_of = ""
        self.review_label = ""
        self.verdict: ReviewVerdict | None = None

    def user_message(self, text: str) -> ChatMessage:
        return ChatMessage(id=f"pending-q{next(_ids)}", role="user", text=text)

    # --- lifecycle --------------------------------------------------------------------------

    def started(self, kind: str) -> None:
        w = self.w
        w.composer.set_busy(kind != "read")
        w.library.add_files.setEnabled(False)
        w.library.add_folder.setEnabled(False)
        w.review_action.setEnabled(False)
        # Nothing that changes the session while it works: no new or other session, no
        # rename or delete, no include/exclude, no settings reload under the answer.
        w.lock_session(True)
        w.library.tree.setEnabled(False)
        if kind == "read":
            w.library.reading(0, 0, 0, None, "")
        else:
            w.meters.reset_message()

    def ended(self, kind: str, outcome: Any, error: str | None) -> None:
        w = self.w
        w.composer.set_busy(False)
        w.library.add_files.setEnabled(True)
        w.library.add_folder.setEnabled(True)
        w.review_action.setEnabled(True)
        w.lock_session(w.planning)
        w.library.tree.setEnabled(True)
        w.library.reading_done()
        self._work_done()
        if self.live_role:  # the job failed before its answer ended
            w.transcript.finish_live("failed", "".join(self.text), (), error)
            self.live_role = ""
        if kind == "read":
            self._read_ended(outcome, error)
        elif error is not None:
            w.show_notice(error)
            if kind == "ask" and self.question:
                w.composer.restore(self.question)
        else:
            for note in outcome.notes:
                w.show_notice(note)
            w.library.set_cited(cited_paths(outcome.final.citations))
            w.controller.refresh_sessions()
            w.meters.show_spend(outcome.session)
        self.question = ""
        if kind != "read" or error is not None:  # read: the new documents' rows ask for it
            w.request_quote()  # (twice would plan the whole corpus twice, under the rebuild)
        w.flush_pending()

    def _read_ended(self, outcome: Any, error: str | None) -> None:
        w = self.w
        if error is not None:
            w.library.show_problems([], error)
            return
        report = outcome.report
        note = ""
        if outcome.nothing_new and not report.problems:
            note = f"All {outcome.unchanged_files} files are unchanged since they were read."
        problems = list(report.problems)
        problems += [(p, f"same bytes as {s}: counted once") for p, s in report.duplicates]
        w.library.show_problems(problems, note, outcome.ignored)
        w.controller.refresh_documents()
        w.controller.refresh_sessions()

    # --- events -----------------------------------------------------------------------------

    def event(self, event: object) -> None:
        w = self.w
        if isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, AnswerStarted):
            self._work_done()
            self._begin(event)
        elif isinstance(event, ReasoningChunk):
            self._prefill_over()
            self.reasoning_chars += len(event.text)
            w.transcript.append_reasoning(event.text)
        elif isinstance(event, TextChunk):
            self._prefill_over()
            self.text.append(event.text)
            w.transcript.append_text(event.text)
        elif isinstance(event, Meter):
            w.meters.show_meter(event)
            if event.message.reasoning:
                w.transcript.set_reasoning_tokens(event.message.reasoning)
        elif isinstance(event, CitationsChecked):
            self.citations = event.citations
        elif isinstance(event, ReviewVerdict):
            self.verdict = event
        elif isinstance(event, AnswerEnded):
            self._end(event)
        elif isinstance(event, Status):
            w.composer.set_quote(_escape(event.text))  # the quote line is rich text

    def _begin(self, e: AnswerStarted) -> None:
        w = self.w
        self.text, self.citations, self.reasoning_chars, self.verdict = [], (), 0, None
        self.live_role = e.role
        label = label_of(e.backend, e.model)
        if e.role == "review":
            self.review_of = f"a{e.of_answer}"
            self.review_label = label
            w.transcript.begin_live(
                "review", label, message_id=f"r{e.record_id}", review_of=self.review_of
            )
        else:
            note = e.reason if e.role == "escalation" else ""
            role = "escalation" if e.role == "escalation" else "draft"
            w.transcript.begin_live(role, label, note=note, message_id=f"a{e.record_id}")

    def _end(self, e: AnswerEnded) -> None:
        w = self.w
        if not self.live_role:
            return
        status = (
            e.status if e.status in ("complete", "stopped", "failed", "interrupted") else "failed"
        )
        text = "".join(self.text)
        error = e.error if status == "failed" else None
        self.live_role = ""
        if e.role == "review" and status == "complete":
            # Pro's text whatever its format: the corrected answer, else the reply as sent.
            w.transcript.finish_live(status, text, ())
            v = self.verdict
            verdict = v.verdict if v is not None else None
            shown = (v.corrected if v is not None else "") or text or "*Pro's reply had no text.*"
            cites = v.citations if v is not None else ()
            w.transcript.add_review(self.review_of, verdict, shown, cites, self.review_label)
        else:
            w.transcript.finish_live(status, text, self.citations, error)
        if self.citations:
            w.library.set_cited(cited_paths(self.citations))

    def _progress(self, p: Progress) -> None:
        w = self.w
        if p.phase == "ingest":
            w.library.reading(p.done, p.total, p.tokens, p.eta_s, p.current)
            return
        w.work.show()
        w.work_label.show()
        w.work.setRange(0, max(p.total, 1))
        w.work.setValue(p.done)
        title = PHASES.get(p.phase, p.phase)
        eta = eta_text(p.eta_s)
        w.work_label.setText(
            f"{title}: {p.done:,} of {p.total:,} {p.unit}" + (f" · {eta}" if eta else "")
        )

    def _prefill_over(self) -> None:
        """The answer streams: the prompt was read, so its progress line goes."""
        if not self.w.work_label.isHidden():
            self._work_done()

    def _work_done(self) -> None:
        self.w.work.hide()
        self.w.work_label.hide()


def quote_html(quote: QuoteView, view: SessionView | None) -> str:
    """The line under the question box: tokens, expected and worst-case cost, fit."""
    fit = quote.fit
    if quote.error is not None and fit is not None and not fit.fits:
        # A quote sends nothing: say what does not fit, in the banner's figures.
        return (
            f"<b>{_escape(fit.backend)}</b> · {fit.prompt_tokens:,} tokens · "
            f"<span style='color:#c0392b'>over its window by {fit.over:,}</span> (the answer "
            f"keeps {fit.reserved:,} of {fit.window:,}): sending waits until it fits; the "
            "library says what to exclude"
        )
    if quote.error is not None:
        return f"<span>{_escape(quote.error)}</span>"
    plan = quote.plan
    if plan is None:
        return " "
    spec = plan.route.spec
    rendered = plan.rendered
    approx = "~" if rendered.estimated else ""
    draft = next((q for q in plan.quotes if q.purpose == "draft"), None)
    parts = [f"<b>{_escape(spec.name)}</b>", f"{approx}{rendered.prompt_tokens:,} tokens"]
    local = draft is not None and draft.line is not None and draft.line.local
    if local:
        assert draft is not None and draft.line is not None
        saved = format_money(draft.line.saved_expected)
        parts.append(f"local: $0 (saves {saved})")
        if draft.line.prefill_seconds is not None and draft.line.prefill_tokens:
            parts.append(f"prefill ~{draft.line.prefill_seconds:.0f} s")
        elif draft.line.prefill_tokens < rendered.prompt_tokens:
            parts.append("saved corpus state: starts at once")
    else:
        if draft is not None and draft.cache_hit > 0:
            parts.append(f"at least {draft.cache_hit:,} cached")
        elif draft is not None:
            parts.append("no cache hit expected")
        parts.append(
            f"expected <b>{format_money(plan.expected_usd)}</b>, "
            f"at most {format_money(plan.worst_usd)}"
        )
    if plan.priming is not None:
        parts.append("+ cache priming")
    if view is not None and str(plan.mode) != view.mode:
        parts.append(f"switches to {plan.mode}: the corpus is read again")
    html = " · ".join(parts)
    if plan.budget is not None:
        html += f"<br><span style='color:#c0392b'>{_escape(plan.budget.text)}</span>"
    memory = quote.memory
    if memory is not None:  # a local model: what the corpus needs against this machine
        style = "" if memory.fits else " style='color:#c0392b'"
        html += f"<br><span{style}>{_escape(memory.text)}</span>"
    return html


def context_map_data(quote: QuoteView, rows: Sequence[DocRow], cited: set[str]) -> ContextMapData:
    """The map of the quoted prompt: documents, system prompt, conversation, reserve."""
    entries = tuple(
        MapEntry(
            label=r.path,
            tokens=r.tokens,
            group=_group(r.path),
            cited=r.path in cited,
            excluded=not r.included,
        )
        for r in rows
    )
    corpus = sum(r.tokens for r in rows if r.included)
    conversation = quote.conversation_tokens
    # The rest of the prompt is the system prompt and the template around it (another
    # tokenizer than the library's may make that differ from the V4 count).
    rest = quote.prompt_tokens - corpus - conversation
    system = rest if rest > 0 else min(quote.prompt_tokens, quote.system_tokens)
    return ContextMapData(
        window=quote.window,
        system_tokens=system,
        conversation_tokens=conversation,
        suggestions=tuple(quote.fit.suggestions) if quote.fit is not None else None,
        reserved_tokens=quote.reserved,
        entries=entries,
    )


def _group(path: str) -> str:
    parts = PurePosixPath(path).parts
    return parts[0] if len(parts) > 1 else "(top level)"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
