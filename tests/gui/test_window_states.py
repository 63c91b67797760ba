"""Random sequences of clicks against the real window: after every step the window
tells the truth.

A hypothesis ``RuleBasedStateMachine`` drives the window as a quick user would
(add, exclude, include, ask, Stop, review, new, open, rename, delete, settings),
against the DeepSeek fixture server, a real store and real files. After every
step, once the window is idle: the transcript equals the session's log, nothing
typed is lost (a question is in the log or still in the box), the session meter
equals the log's spend, and the library equals the store. A Qt warning fails
the run (``qt_log_level_fail``); so does any exception. A failing sequence found
once is kept below as a regression test.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pytestqt.qtbot import QtBot

from app.core.pricing import format_money
from app.ui.shell.records import doc_rows, messages_of
from tests.gui.test_window import LONG, WAIT, open_window, server

__all__ = ["server"]

REVIEWS = ("VERDICT: correct\n\nYes [f1.txt:L1].", "Looks fine to me, nothing to add.")


def idle(window: Any) -> bool:
    return (
        window.ws is not None
        and window.controller.session is not None
        and not window.controller.busy
        and not window.planning
        and window.tasks.pending() == 0
        and not window.composer._timer.isActive()
    )


def make_machine(qtbot: QtBot, root: Path, monkeypatch: pytest.MonkeyPatch, srv: Any) -> type:
    examples = itertools.count(1)

    class Window(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.folder = root / f"run{next(examples)}"
            self.folder.mkdir()
            monkeypatch.setenv("LECTERN_HOME", str(self.folder / "home"))
            self.w: Any = open_window(qtbot, self.folder, monkeypatch, srv)
            self.files = itertools.count(1)
            self.typed: list[str] = []  # every question sent
            self.deleted_questions: set[str] = set()  # gone with a deleted session
            self.settle()

        def settle(self) -> None:
            qtbot.waitUntil(lambda: idle(self.w), timeout=WAIT)

        def session(self) -> Any:
            return self.w.ws.session(self.w.controller.session)

        def teardown(self) -> None:
            self.settle()
            self.w.close()

        # --- rules ------------------------------------------------------------------------

        @rule()
        def add(self) -> None:
            n = next(self.files)
            path = self.folder / f"f{n}.txt"
            path.write_text(f"Fact {n}: the cap is {n} times the fees.\n", encoding="utf-8")
            self.w.add_paths([str(path)])
            self.settle()

        @precondition(lambda self: any(r.included for r in self.w.library.rows))
        @rule(pick=st.integers(0, 50))
        def exclude(self, pick: int) -> None:
            rows = [r for r in self.w.library.rows if r.included]
            self.w.controller.set_included([rows[pick % len(rows)].id], False)
            self.settle()

        @precondition(lambda self: any(not r.included for r in self.w.library.rows))
        @rule(pick=st.integers(0, 50))
        def include(self, pick: int) -> None:
            rows = [r for r in self.w.library.rows if not r.included]
            self.w.controller.set_included([rows[pick % len(rows)].id], True)
            self.settle()

        @rule(clicks=st.lists(st.sampled_from(["new", "open", "rename", "add"]), max_size=3))
        def ask(self, clicks: list[str]) -> None:
            question = f"Question {next(self.files)}: what is the cap?"
            srv.enqueue_reply(f"The cap is in [f1.txt:L1]. {question}")
            self.send(question)
            for click in clicks:  # clicked while the question is on its way
                self.click_busy(click)
            self.settle()

        @precondition(lambda self: any(r.included for r in self.w.library.rows))
        @rule()
        def stop(self) -> None:
            srv.enqueue_reply(LONG, chunk_delay=0.01)
            self.send("Summarise everything, at length.")
            qtbot.waitUntil(lambda: self.w.controller.busy, timeout=WAIT)
            self.w.composer.stopRequested.emit()
            self.settle()

        @rule(text=st.sampled_from(REVIEWS))
        def review(self, text: str) -> None:
            srv.enqueue_reply(text)
            self.w.review_last()
            self.settle()

        @rule()
        def new(self) -> None:
            self.w.new_action.trigger()
            self.settle()

        @rule(pick=st.integers(0, 50))
        def open(self, pick: int) -> None:
            names = [s.name for s in self.w.ws.sessions()]
            self.w.controller.open_session(names[pick % len(names)])
            self.settle()

        @rule()
        def rename(self) -> None:
            old = self.w.controller.session
            new = f"{old} r{next(self.files)}"
            self.w.ws.rename_session(old, new)  # what the sessions dialog does, then says so
            self.w._session_renamed(old, new)
            self.settle()

        @rule()
        def delete(self) -> None:
            name = self.w.controller.session
            self.deleted_questions |= {t.question for t in self.session().turns()}
            self.w.ws.delete_session(name)  # what the sessions dialog does, then says so
            self.w._session_deleted(name)
            self.settle()

        @rule()
        def settings(self) -> None:
            self.w.reload_workspace()  # what saving Settings does
            self.settle()

        # --- helpers ----------------------------------------------------------------------

        def send(self, question: str) -> None:
            left = self.w.composer.text()
            if left in self.typed:  # an unsent question the user now types over, knowingly
                self.typed.remove(left)
            self.w.composer.edit.setPlainText(question)
            self.w.composer.send.click()
            self.typed.append(question)

        def click_busy(self, click: str) -> None:
            w = self.w
            if click == "new":
                w.new_action.trigger()
            elif click == "open":
                w.controller.open_session(None)
            elif click == "rename":
                w.manage_sessions()
                from app.ui.sessions.sessions_dialog import SessionsDialog

                for d in w.findChildren(SessionsDialog):
                    d.close()
            else:
                path = self.folder / f"late{next(self.files)}.txt"
                path.write_text("A late fact.\n", encoding="utf-8")
                w.add_paths([str(path)])

        # --- what must hold after every step ---------------------------------------------

        checks = 0  # times the invariants ran (after the start and after every step)

        @invariant()
        def counted(self) -> None:
            type(self).checks += 1

        @invariant()
        def transcript_is_the_log(self) -> None:
            logged = [(m.role, m.text) for m in messages_of(self.session().turns())]
            shown = [(m.role, m.text) for m in self.w.transcript.messages()]
            assert shown == logged

        @invariant()
        def nothing_typed_is_lost(self) -> None:
            asked = {
                t.question for s in self.w.ws.sessions() for t in self.w.ws.session(s.name).turns()
            }
            box = self.w.composer.text()
            for question in set(self.typed) - asked - {box} - self.deleted_questions:
                raise AssertionError(f"lost: {question!r}")

        @invariant()
        def meter_is_the_logs_spend(self) -> None:
            spend = self.session().spend()
            money = format_money(spend.total) + (" + unknown" if spend.unknown_calls else "")
            assert self.w.meters.session.text() == money

        @invariant()
        def library_is_the_store(self) -> None:
            stored = [(r.path, r.status, r.tokens) for r in doc_rows(self.session().documents())]
            shown = [(r.path, r.status, r.tokens) for r in self.w.library.rows]
            assert shown == stored

    return Window


def test_random_clicks_keep_the_window_truthful(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Any
) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    machine = make_machine(qtbot, tmp_path, monkeypatch, server)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=12,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    # A few hundred steps, every one checked (hypothesis may end a run early).
    print(f"state machine: {machine.checks} checks over 12 runs")
    assert machine.checks >= 200
