"""Search over the questions and answers of every session (SQLite FTS5).

The index is kept by triggers on the event log (migration ``m004``); a search
is one query. What the user types is taken as words, not FTS syntax: each word
must appear (in any order), the last one may be a prefix (search as you type),
and quotes or operators in it are matched as text rather than failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.session.store import Store

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchHit:
    session: str  # session name: where to open it
    session_id: int
    event_id: int  # the question's or answer's event
    question_id: int  # the turn it belongs to (a question's own id for a question)
    kind: str  # question | answer
    ts: str
    snippet: str  # the matching passage, hits between [ and ]


def fts_query(text: str) -> str | None:
    """An FTS5 query of ``text``'s words (all required, the last a prefix); None if none."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def search(store: Store, text: str, *, limit: int = 50) -> list[SearchHit]:
    """Questions and answers of every session matching ``text``, best first."""
    query = fts_query(text)
    if query is None:
        return []
    rows = store.conn.execute(
        """
        SELECT e.id, e.session_id, s.name, e.type, e.ts,
               COALESCE(json_extract(e.payload, '$.question_id'), e.id) AS qid,
               snippet(search_index, 0, '[', ']', '…', 16) AS snip
        FROM search_index
        JOIN events e ON e.id = search_index.rowid
        JOIN sessions s ON s.id = e.session_id
        WHERE search_index MATCH ?
        ORDER BY rank, e.id DESC
        LIMIT ?
        """,
        (query, limit),
    ).fetchall()
    return [
        SearchHit(
            session=str(r[2]),
            session_id=int(r[1]),
            event_id=int(r[0]),
            question_id=int(r[5]),
            kind=str(r[3]),
            ts=str(r[4]),
            snippet=str(r[6]),
        )
        for r in rows
    ]
