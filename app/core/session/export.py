"""Export a session as Markdown (to read) or JSON (to process), with provenance.

Both carry the corpus manifest (path, kind, sha256, prompt tokens, when it was added)
and, per answer, the model, backend, mode, token usage, cost, citation
validity and any reviews, so a reader can tell exactly what produced each
answer and from which bytes. Everything comes from the session's log: an
export never calls a model or re-reads a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from app.core.pricing import format_money
from app.core.session.log import AnswerRecord, ReviewRecord, Session, Spend, TurnRecord
from app.core.session.store import EventRow, now_iso

EXPORT_VERSION = 1


def export_json(session: Session) -> str:
    return json.dumps(export_data(session), indent=2, ensure_ascii=False) + "\n"


def export_data(session: Session) -> dict[str, Any]:
    """The whole session as plain data (what ``export_json`` writes)."""
    doc_events = {e.id: e for e in session.events(("documents",))}
    turns = session.turns()
    spend = session.spend()
    from app.core.prompt.corpus import block_tokens

    corpus = []
    documents = session.documents()
    costs = block_tokens([d.document for d in documents])
    for d, cost in zip(documents, costs, strict=True):
        doc = d.document
        added: EventRow | None = doc_events.get(d.event_id)
        corpus.append(
            {
                "seq": d.seq,
                "path": doc.path,
                "source": doc.source,
                "kind": doc.kind,
                "sha256": doc.sha256,
                "size": doc.size,
                "mtime": doc.mtime,
                "prompt_tokens": cost,  # what it costs in the prompt: sums to corpus_tokens
                "text_tokens": doc.tokens,  # the bare text, without line anchors or markers
                "anchor": doc.anchor,
                "pages": doc.pages,
                "notes": list(doc.notes),
                "status": d.status,
                "local_only": d.local_only,
                "added": added.ts if added else None,
                "added_after_question": bool(added and added.payload.get("after_question")),
            }
        )
    return {
        "lectern_export": EXPORT_VERSION,
        "exported": now_iso(),
        "session": {
            "name": session.name,
            "mode": str(session.mode),
            "settings": dict(session.settings),
        },
        "corpus": corpus,
        "corpus_tokens": sum(c["prompt_tokens"] for c in corpus if c["status"] != "excluded"),
        "spend": _spend(spend),
        "turns": [_turn(t) for t in turns],
        "mode_changes": [{"ts": e.ts, **e.payload} for e in session.events(("mode_changed",))],
    }


def _spend(spend: Spend) -> dict[str, Any]:
    share = spend.pro_share
    return {
        "total_usd": str(spend.total) if spend.priced else None,
        "by_tier_usd": {k: str(v) for k, v in spend.by_tier.items()},
        "pro_share": str(share.quantize(Decimal("0.0001"))) if share is not None else None,
        "saved_usd": str(spend.saved),
        "unknown_cost_calls": spend.unknown_calls,
    }


def _turn(turn: TurnRecord) -> dict[str, Any]:
    spend = turn.spend
    final = turn.final
    return {
        "question": turn.question,
        "asked": turn.ts,
        "mode": turn.payload.get("mode"),
        "answers": [_answer(a, final) for a in turn.answers],
        "reviews": [_review(r) for r in turn.reviews],
        "calls": [dict(c) for c in turn.calls],
        "cost_usd": str(spend.total) if spend.priced else None,
        "unknown_cost_calls": spend.unknown_calls,
    }


def _answer(a: AnswerRecord, final: AnswerRecord | None) -> dict[str, Any]:
    return {
        "id": a.id,
        "role": a.role,
        "final": final is not None and a.id == final.id,
        "status": a.status,
        "backend": a.backend,
        "model": a.model,
        "profile": a.profile,
        "tier": a.tier,
        "mode": a.mode,
        "finish_reason": a.finish_reason,
        "usage": dict(a.usage) if a.usage else None,
        "cost_usd": a.cost_usd,
        "latency_s": a.latency_s,
        "error": a.error,
        "text": a.text,
        "reasoning": a.reasoning,
        "citations": [dict(c) for c in a.citations],
        "answered": a.ts,
    }


def _review(r: ReviewRecord) -> dict[str, Any]:
    return {"id": r.id, "answer_id": r.answer_id, "reviewed": r.ts, **dict(r.payload)}


# --- Markdown -----------------------------------------------------------------------


def export_markdown(session: Session) -> str:
    data = export_data(session)
    out: list[str] = [f"# Lectern session: {session.name}", ""]
    spend = data["spend"]
    out.append(
        f"Mode: {data['session']['mode']} · Corpus: {len(_rendered(data['corpus']))} "
        f"documents, {data['corpus_tokens']:,} tokens · Spend: {format_usd(spend['total_usd'])}"
        + (f" · Pro: {_pct(spend['pro_share'])} of spend" if spend["pro_share"] else "")
        + (
            f" · {spend['unknown_cost_calls']} calls at unknown price"
            if spend["unknown_cost_calls"]
            else ""
        )
    )
    out.append(f"Exported {data['exported']}")
    out += [
        "",
        "## Corpus",
        "",
        "| # | Path | Kind | Prompt tokens | SHA-256 | Status |",
        "|---|---|---|---|---|---|",
    ]
    for c in data["corpus"]:
        status = c["status"] + (", local-only" if c["local_only"] else "")
        if c["added_after_question"]:
            status += ", added mid-session"
        out.append(
            f"| {c['seq']} | {_cell(c['path'])} | {c['kind']} | {c['prompt_tokens']:,} | "
            f"`{c['sha256'][:16]}` | {status} |"
        )
    for change in data["mode_changes"]:
        out += ["", f"*Mode changed from {change['from']} to {change['to']} at {change['ts']}.*"]
    for n, turn in enumerate(data["turns"], 1):
        out += ["", f"## Q{n}. {_oneline(turn['question'])}", ""]
        if "\n" in turn["question"].strip():
            out += [_quote(turn["question"]), ""]
        for ans in turn["answers"]:
            out += _answer_md(ans)
        for rev in turn["reviews"]:
            out += _review_md(rev)
        out.append(
            f"*Question cost: {format_usd(turn['cost_usd'])}"
            + (
                f" ({turn['unknown_cost_calls']} calls at unknown price)"
                if turn["unknown_cost_calls"]
                else ""
            )
            + f", {len(turn['calls'])} backend calls.*"
        )
    return "\n".join(out) + "\n"


def _answer_md(ans: Mapping[str, Any]) -> list[str]:
    label = "Answer" if ans["role"] == "draft" else "Answer (escalated to " + ans["tier"] + ")"
    if ans["status"] != "complete":
        label += f" — {ans['status'].upper()}"
    lines = [f"### {label}", ""]
    if ans["error"]:
        lines += [f"> {ans['error']}", ""]
    if ans["reasoning"]:
        lines += [
            "<details><summary>Reasoning</summary>",
            "",
            ans["reasoning"],
            "",
            "</details>",
            "",
        ]
    lines += [ans["text"] or "*(no text)*", ""]
    lines.append("*" + _provenance(ans) + "*")
    bad = [c for c in ans["citations"] if not c.get("valid", True)]
    if ans["citations"]:
        lines.append(
            f"*Citations: {len(ans['citations']) - len(bad)} of {len(ans['citations'])} valid"
            + ("; invalid: " + "; ".join(_citation(c) for c in bad) if bad else "")
            + "*"
        )
    lines.append("")
    return lines


def _review_md(rev: Mapping[str, Any]) -> list[str]:
    verdict = rev.get("verdict") or "no verdict (the reply had no VERDICT line)"
    lines = [f"### Review by {rev.get('model') or '?'}: {verdict}", ""]
    if rev.get("status", "complete") != "complete":
        lines += [f"> Review {rev.get('status')}: {rev.get('error') or ''}", ""]
    corrected = rev.get("corrected")
    if corrected:
        lines += ["Corrected answer:", "", corrected, ""]
    elif rev.get("text"):
        lines += [rev["text"], ""]
    lines += ["*" + _provenance(rev) + "*", ""]
    return lines


def _provenance(item: Mapping[str, Any]) -> str:
    parts = [str(item.get("model") or "?"), f"via {item.get('backend') or '?'}"]
    if item.get("mode"):
        parts.append(str(item["mode"]))
    usage = item.get("usage")
    if usage:
        parts.append(
            f"{usage.get('prompt', 0):,} sent ({usage.get('cache_hit', 0):,} cache hit), "
            f"{usage.get('completion', 0):,} received ({usage.get('reasoning', 0):,} reasoning)"
            + (" (estimated)" if usage.get("estimated") else "")
        )
    parts.append(f"cost {format_usd(item.get('cost_usd'))}")
    if item.get("latency_s") is not None:
        parts.append(f"{float(item['latency_s']):.1f} s")
    return " · ".join(parts)


def _citation(c: Mapping[str, Any]) -> str:
    text = str(c.get("text") or c.get("raw") or c)
    reason = c.get("reason") or c.get("problem")
    return f"{text} ({reason})" if reason else text


def _rendered(corpus: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in corpus if c["status"] == "active"]


def format_usd(value: str | None) -> str:
    """A stored amount (Decimal text) as the meter shows money; None is "unknown"."""
    return format_money(Decimal(value) if value is not None else None)


def _pct(share: str) -> str:
    return f"{Decimal(share) * 100:.0f}%"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _oneline(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.strip().splitlines())
