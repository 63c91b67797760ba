"""A streaming answer's text, appended in chunks (``answer_chunks``, migration m005).

While an answer streams, its ``events`` row keeps the payload it started with and
each flush of the writer appends only what arrived since the last one, as a row of
``answer_chunks`` (event id, sequence number, text, reasoning): the bytes written
grow with the answer's length, never its square (a rewrite of the whole text on
each flush did). When the answer ends (or is found interrupted) its text is
written into the payload once and its chunks are dropped, in one transaction.
Readers of a row still ``streaming`` see its payload with the chunks appended
(``merged``), so a reader in another process sees the answer so far.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any


def append(conn: sqlite3.Connection, event_id: int, seq: int, text: str, reasoning: str) -> None:
    conn.execute(
        "INSERT INTO answer_chunks (event_id, seq, text, reasoning) VALUES (?, ?, ?, ?)",
        (event_id, seq, text, reasoning),
    )


def streamed(conn: sqlite3.Connection, event_id: int) -> tuple[str, str]:
    """The text and reasoning appended to ``event_id`` so far, in order."""
    rows = conn.execute(
        "SELECT text, reasoning FROM answer_chunks WHERE event_id = ? ORDER BY seq",
        (event_id,),
    ).fetchall()
    return "".join(r[0] for r in rows), "".join(r[1] for r in rows)


def merged(conn: sqlite3.Connection, event_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` of a streaming row with its chunks appended to its text and reasoning."""
    text, reasoning = streamed(conn, event_id)
    out = dict(payload)
    if text or reasoning:
        out["text"] = str(out.get("text") or "") + text
        out["reasoning"] = str(out.get("reasoning") or "") + reasoning
    return out


def drop(conn: sqlite3.Connection, event_id: int) -> None:
    conn.execute("DELETE FROM answer_chunks WHERE event_id = ?", (event_id,))
