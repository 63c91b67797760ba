"""``lectern FOLDER``: the command line opens the window, which reads the folder into
its session and quotes it (the CLI parses; the window queues the paths until the
session is open; the service reads them off the UI thread).

In a fresh interpreter, as a user starts it: ``app.cli.main`` with the paths, Qt's real
event loop (``app.exec`` in ``app.ui.main.run``), real ingestion into a real SQLite
file, and the DeepSeek fixture server's config for the quote. A timer in that process
looks at the window until it lists the files and shows their quote, then closes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import REPO, TEST_KEY_ENV, fixture_config

SCRIPT = r"""
import json, sys
from PySide6.QtCore import QTimer
from app.ui.main import make_app
from app.ui.shell.window import MainWindow
from app.cli import main

app = make_app()
seen = {}

def look():
    windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
    if not windows or seen:
        return
    w = windows[0]
    quote = w.last_quote
    if len(w.library.rows) == 3 and quote is not None and quote.plan is not None:
        seen.update(
            rows=sorted(r.path for r in w.library.rows),
            tokens=sum(r.tokens for r in w.library.rows),
            prompt=quote.prompt_tokens,
            session=w.controller.session,
            visible=w.isVisible(),
        )
        w.close()
        app.quit()

timer = QTimer()
timer.timeout.connect(look)
timer.start(20)
QTimer.singleShot(60_000, app.quit)  # never hang: the test says what was missing
code = main(sys.argv[1:])
print(json.dumps({"code": code, **seen}))
"""


def test_lectern_with_a_folder_opens_the_window_reading_and_quoting_it(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    (folder / "annex").mkdir(parents=True)
    (folder / "msa.md").write_text("# MSA\nLiability is capped at five times the fees.\n")
    (folder / "annex" / "sla.txt").write_text("Uptime is 99.9% per month.\n")
    note = tmp_path / "note.txt"
    note.write_text("A file given beside the folder.\n")
    with DeepSeekServer(cache_interval=None) as server:
        config = fixture_config(tmp_path / "config.toml", server.base_url)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "QT_QPA_PLATFORM": "offscreen",
            "LECTERN_CONFIG": str(config),
            TEST_KEY_ENV: "sk-lectern-fixture-0000",
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(folder), str(note)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0
    assert seen.get("rows") == ["contracts/annex/sla.txt", "contracts/msa.md", "note.txt"], seen
    assert seen["visible"] and seen["session"]
    assert seen["prompt"] > seen["tokens"] > 0  # quoted: the corpus and the prompt around it
