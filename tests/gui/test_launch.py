"""``lectern FOLDER``: the command line opens the window, which reads the folder into
its session and quotes it (the CLI parses; the window queues the paths until the
session is open; the service reads them off the UI thread).

In this process, through ``app.cli.main`` and ``app.ui.main.run`` with Qt's real event
loop (``app.exec``), real ingestion into a real SQLite file, and the DeepSeek fixture
server's config for the quote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.cli import main
from app.ui.shell.window import MainWindow
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import TEST_KEY_ENV, fixture_config

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_lectern_with_a_folder_opens_the_window_reading_and_quoting_it(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "contracts"
    (folder / "annex").mkdir(parents=True)
    (folder / "msa.md").write_text("# MSA\nLiability is capped at five times the fees.\n")
    (folder / "annex" / "sla.txt").write_text("Uptime is 99.9% per month.\n")
    note = tmp_path / "note.txt"
    note.write_text("A file given beside the folder.\n")
    app = QApplication.instance()
    assert app is not None
    seen: dict[str, Any] = {}

    def look() -> None:  # once the window shows what it was started with: close it
        windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
        if not windows or "rows" in seen:
            return
        w = windows[0]
        quote = w.last_quote
        rows = sorted(r.path for r in w.library.rows)
        if len(rows) == 3 and quote is not None and quote.plan is not None:
            seen.update(
                rows=rows, prompt=quote.prompt_tokens, tokens=sum(r.tokens for r in w.library.rows)
            )
            seen["session"] = w.controller.session
            w.close()
            w.deleteLater()
            app.quit()

    with DeepSeekServer(cache_interval=None) as server:
        monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
        config = fixture_config(tmp_path / "config.toml", server.base_url)
        monkeypatch.setenv("LECTERN_CONFIG", str(config))
        timer = QTimer()
        timer.timeout.connect(look)
        timer.start(20)
        QTimer.singleShot(60_000, app.quit)  # never hang: the asserts below say what failed
        code = main([str(folder), str(note)])
        timer.stop()
    assert code == 0
    assert seen.get("rows") == ["contracts/annex/sla.txt", "contracts/msa.md", "note.txt"], seen
    assert seen["session"] and seen["prompt"] > seen["tokens"] > 0  # quoted: the corpus and more
