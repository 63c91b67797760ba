"""Screenshots of the states issue 17 is about, to look at: the over-window banner and
the context map, a code tree's problems list, and a Pro review without a verdict.

``xvfb-run -a .venv/bin/python scripts/screenshots_truth.py`` (or offscreen). Like
``scripts/screenshots.py``: the real window, the sample code tree (plus a few PNGs)
and contract, the DeepSeek fixture server; ``flash`` gets a small window so the
corpus is over it. Saves ``over_window.png``, ``problems.png``,
``after_exclude.png`` and ``review_no_verdict.png`` into ``docs/screenshots/``
(``--out DIR`` elsewhere).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.screenshots import ANSWER, REASONING, write_corpus  # noqa: E402

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
NO_VERDICT = (
    "The draft is right about where authentication happens [webapp/src/auth.py:L9-20], "
    "but it misses that an expired session is rejected before the signature is checked "
    "[webapp/src/auth.py:L15-16]. The constant-time comparison point stands."
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lectern-shots-"))
    os.environ["LECTERN_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    from tests.fixtures.deepseek_server import DeepSeekServer
    from tests.fixtures.lectern_env import TEST_KEY_ENV, fixture_config

    os.environ[TEST_KEY_ENV] = "sk-lectern-fixture-0000"
    paths = write_corpus(tmp / "corpus")
    static = paths[0] / "static"
    static.mkdir()
    for n, name in enumerate(("logo.png", "favicon.png", "hero.png", "icon-192.png")):
        (static / name).write_bytes(PNG + bytes([n]) * 64)
    (paths[0] / "src" / "broken.py").write_bytes(b"def f():\n    return '\xff\xfe'\x00\n")
    with DeepSeekServer(cache_interval=None) as srv:
        config = fixture_config(
            tmp / "config.toml",
            srv.base_url,
            cascade={"max_tries": 1, "escalate_on_failure": False},
        )
        text = config.read_text().replace(
            "read_timeout = 30", "read_timeout = 30\ncontext = 9000", 1
        )
        config.write_text(text)
        os.environ["LECTERN_CONFIG"] = str(config)
        srv.enqueue_reply(ANSWER, reasoning=REASONING, chunk_delay=0.002)
        # The review and its priming request run side by side: either may take either.
        for _ in range(3):
            srv.enqueue_reply(NO_VERDICT, reasoning="Checking the draft against auth.py.")
        return _drive(paths, args.out)


def _drive(paths: list[Path], out: Path) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.ui.main import build_window, make_app

    def answer(_parent: Any, title: str, text: str, *_a: Any) -> Any:
        print(f"asked: {title}: {text}", flush=True)  # a scripted user says yes
        return QMessageBox.StandardButton.Yes

    QMessageBox.question = answer  # type: ignore[assignment]
    app = make_app(sys.argv[:1])
    window: Any = build_window(app)
    window.resize(1440, 900)

    def shot(name: str, widget: Any = None) -> None:
        QApplication.processEvents()
        (widget or window).grab().save(str(out / f"{name}.png"))
        print(f"saved {out / f'{name}.png'}", flush=True)

    def later(ms: int, fn: Any) -> None:
        QTimer.singleShot(ms, fn)

    def ready() -> None:
        window.ready.disconnect(ready)
        window.add_paths([str(p) for p in paths])

    def ended(kind: str, outcome: Any, error: str | None) -> None:
        if error:
            print(f"{kind} failed: {error}", file=sys.stderr)
        if kind == "read":
            window.library.tree.expandAll()
            later(2500, over_window)
        elif kind == "ask":
            later(800, window.review_last)
        elif kind == "review":
            later(800, lambda: (shot("review_no_verdict"), finish()))

    def over_window() -> None:
        shot("over_window")
        shot("problems", window.library)
        window.library.fit_button.click()  # "Exclude these": the next quote fits
        later(3000, fitted)

    def fitted() -> None:
        shot("after_exclude")
        question = "Where is a request authenticated?"
        window.composer.edit.setPlainText(question)
        later(600, lambda: window.send(question))

    def finish() -> None:
        window.close()
        app.exit(0)

    window.ready.connect(ready)
    window.controller.jobEnded.connect(ended)
    window.controller.jobStarted.connect(lambda kind: print(f"started {kind}", flush=True))
    window.controller.error.connect(lambda text: print(f"error: {text}", flush=True))
    window.show()
    QTimer.singleShot(0, window.start)
    QTimer.singleShot(180_000, lambda: app.exit(2))
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
