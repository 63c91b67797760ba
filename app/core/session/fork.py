"""Fork a session at any question, and take back the last question to edit it.

A fork is a new session holding the same corpus and the conversation up to and
including the chosen turn: the log's events before the next question are
copied in order (documents with their rows, questions, answers, reviews and
backend calls), ids mapped. The fork's prompt is then byte-identical to the
original's at that point, so its first question still hits the prefix cache.
Document statuses are as they stood at the fork point (an exclusion or a
re-read made later in the original does not apply).

Taking back the last question logs a ``retracted`` event: the turn leaves the
conversation (and the transcript), stays in the log, and the edited question
is asked after the same prefix.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.session import chunks
from app.core.session.schema import now_iso
from app.core.session.store import Store

_DOC_COLUMNS = (
    "path, source, kind, sha256, size, mtime, tokens, anchor, page_starts, notes, language, "
    "local_only, text, block_tokens, count_basis"
)


class ForkError(RuntimeError):
    """The fork cannot be made as asked; the message says why."""


def fork_session(
    store: Store, source_id: int, question_id: int, *, name: str, mode: str, settings: Any
) -> int:
    """Copy session ``source_id`` up to and including turn ``question_id`` into a new
    session ``name``; returns the new session's id."""
    conn = store.conn
    q = conn.execute(
        "SELECT id FROM events WHERE id = ? AND session_id = ? AND type = 'question'",
        (question_id, source_id),
    ).fetchone()
    if q is None:
        raise ForkError(
            f"Question #{question_id} is not in this session: fork from one of its questions."
        )
    nxt = conn.execute(
        "SELECT MIN(id) FROM events WHERE session_id = ? AND type = 'question' AND id > ?",
        (source_id, question_id),
    ).fetchone()[0]
    cutoff = int(nxt) if nxt is not None else None
    where = "session_id = ?" + (" AND id < ?" if cutoff is not None else "")
    params: tuple[Any, ...] = (source_id, cutoff) if cutoff is not None else (source_id,)
    events = conn.execute(
        f"SELECT id, ts, type, status, payload FROM events WHERE {where} ORDER BY id", params
    ).fetchall()
    doc_where = "session_id = ?" + (" AND event_id < ?" if cutoff is not None else "")
    docs = conn.execute(
        f"SELECT id, seq, event_id, status, {_DOC_COLUMNS} FROM documents WHERE {doc_where} "
        "ORDER BY seq",
        params,
    ).fetchall()
    statuses = _statuses_at_cutoff(store, source_id, cutoff, docs)
    ts = now_iso()
    with store.transaction() as tx:
        cur = tx.execute(
            "INSERT INTO sessions (name, created, updated, mode, settings) VALUES (?, ?, ?, ?, ?)",
            (name, ts, ts, mode, json.dumps(dict(settings or {}))),
        )
        new_id = cur.lastrowid
        assert new_id is not None
        event_ids: dict[int, int] = {}
        doc_ids: dict[int, int] = {}
        by_event: dict[int, list[Any]] = {}
        for d in docs:
            by_event.setdefault(int(d[2]), []).append(d)
        for ev in events:
            old_id, ev_ts, type_, status, payload = ev
            raw = json.loads(payload)
            if status == "streaming":  # the text it has streamed so far comes along
                raw = chunks.merged(tx, old_id, raw)
            body = _mapped(raw, event_ids, doc_ids)
            cur = tx.execute(
                "INSERT INTO events (session_id, ts, type, status, payload) VALUES (?, ?, ?, ?, ?)",
                (new_id, ev_ts, type_, status, json.dumps(body, ensure_ascii=False)),
            )
            assert cur.lastrowid is not None
            event_ids[int(old_id)] = cur.lastrowid
            for d in by_event.get(int(old_id), []):
                cur = tx.execute(
                    f"INSERT INTO documents (session_id, seq, event_id, status, {_DOC_COLUMNS}) "
                    f"SELECT ?, seq, ?, ?, {_DOC_COLUMNS} FROM documents WHERE id = ?",
                    (new_id, cur.lastrowid, statuses[int(d[0])], int(d[0])),
                )
                assert cur.lastrowid is not None
                doc_ids[int(d[0])] = cur.lastrowid
    return int(new_id)


def _mapped(
    payload: dict[str, Any], events: dict[int, int], docs: dict[int, int]
) -> dict[str, Any]:
    out = dict(payload)
    for key in ("question_id", "answer_id"):
        if isinstance(out.get(key), int) and out[key] in events:
            out[key] = events[out[key]]
    if isinstance(out.get("ids"), list):
        out["ids"] = [docs.get(i, i) for i in out["ids"] if isinstance(i, int)]
    return out


def _statuses_at_cutoff(
    store: Store, session_id: int, cutoff: int | None, docs: list[Any]
) -> dict[int, str]:
    """Each copied document's status as it stood before ``cutoff``."""
    status = {int(d[0]): str(d[3]) for d in docs}
    if cutoff is None:
        return status
    later = store.conn.execute(
        "SELECT payload FROM events WHERE session_id = ? AND type = 'documents' AND id >= ? "
        "ORDER BY id",
        (session_id, cutoff),
    ).fetchall()
    undone: set[int] = set()
    for (payload,) in later:
        body = json.loads(payload)
        action = body.get("action")
        if action not in ("excluded", "included"):
            continue
        for i in body.get("ids", []):
            if i in status and i not in undone:
                undone.add(i)  # the first later change tells what it was before
                status[i] = "active" if action == "excluded" else "excluded"
    # A re-read after the cutoff superseded a version that was current at it.
    newest: dict[str, int] = {}
    for d in docs:
        newest[str(d[5])] = int(d[0])  # by source, in seq order
    for d in docs:
        doc_id = int(d[0])
        if status[doc_id] == "superseded" and newest[str(d[5])] == doc_id:
            status[doc_id] = "active"
    return status


def mode_at(store: Store, session_id: int, question_id: int, current: str) -> str:
    """The session's thinking mode as it stood at ``question_id``'s turn."""
    nxt = store.conn.execute(
        "SELECT MIN(id) FROM events WHERE session_id = ? AND type = 'question' AND id > ?",
        (session_id, question_id),
    ).fetchone()[0]
    if nxt is None:
        return current
    row = store.conn.execute(
        "SELECT payload FROM events WHERE session_id = ? AND type = 'mode_changed' AND id > ? "
        "ORDER BY id LIMIT 1",
        (session_id, nxt - 1),
    ).fetchone()
    return str(json.loads(row[0]).get("from", current)) if row else current
