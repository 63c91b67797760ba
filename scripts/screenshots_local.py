"""Screenshot of a local model reading a corpus, for ``docs/local-models.md``.

Starts the real window (``xvfb-run -a .venv/bin/python scripts/screenshots_local.py``)
on a random-weight ``deepseek4`` GGUF that ``tests.fixtures.tiny_deepseek4_gguf``
writes (llama.cpp in process, offline, V4 Flash's profile), with twelve contracts
(about 82K tokens). The question is sent and the window is captured while the
prompt is read: the progress line with its ETA, the quote line with the memory
sentence (what this question holds, llama.cpp's context, this machine's RAM) and
the context map. The answer is not shown: random weights write nonsense.
Everything lives in a temporary folder; the PNG goes to ``docs/screenshots/``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from screenshots import _shrink  # noqa: E402  (256 colours, as the README's shots)

QUESTION = "Which contract has the longest notice period, and what does it say?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lectern-local-shot-"))
    os.environ["LECTERN_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    from tests.fixtures.llama_corpus import corpus_text
    from tests.fixtures.tiny_deepseek4_gguf import build_tiny_deepseek4_gguf

    gguf = build_tiny_deepseek4_gguf(tmp / "DeepSeek-V4-Flash-tiny.gguf")
    corpus = tmp / "contracts"
    corpus.mkdir()
    for i in range(12):
        text = f"# Supply contract {i + 1}\n\n" + corpus_text(90)
        (corpus / f"supply_{i + 1:02d}.md").write_text(text, encoding="utf-8")
    config = tmp / "config.toml"
    config.write_text(
        "offline = true\n\n[backends.local]\n"
        f'kind = "llama_cpp"\nmodel_path = "{gguf}"\nprofile = "deepseek-v4-flash-gguf"\n\n'
        '[cascade]\ndraft = "local"\n\n[session]\nmode = "non-think"\nmax_tokens = 1024\n',
        encoding="utf-8",
    )
    os.environ["LECTERN_CONFIG"] = str(config)
    try:
        return _drive(corpus, args.out / "local_prefill.png")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _drive(corpus: Path, out: Path) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.main import build_window, make_app

    app = make_app(sys.argv[:1])
    window: Any = build_window(app)
    window.resize(1440, 900)
    shots: list[str] = []

    def watch() -> None:
        """The first progress line with an ETA (the read is under way) is captured."""
        text = window.work_label.text()
        if shots:
            return
        if window.work_label.isVisible() and "left" in text:
            QApplication.processEvents()
            window.grab().save(str(out))
            _shrink(out)
            shots.append(text)
            print(f"saved {out} ({text})", flush=True)
        else:
            QTimer.singleShot(50, watch)

    def ready() -> None:
        window.ready.disconnect(ready)
        window.add_paths([str(corpus)])

    def ended(kind: str, _outcome: Any, error: str | None) -> None:
        if error:
            print(f"{kind} failed: {error}", file=sys.stderr)
            app.exit(1)
        elif kind == "read":
            window.composer.edit.setPlainText(QUESTION)
            QTimer.singleShot(2500, lambda: (window.send(QUESTION), watch()))
        elif kind == "ask":
            window.close()
            app.exit(0 if shots else 1)

    window.ready.connect(ready)
    window.controller.jobEnded.connect(ended)
    window.controller.error.connect(lambda text: print(f"error: {text}", flush=True))
    window.show()
    QTimer.singleShot(0, window.start)
    QTimer.singleShot(180_000, lambda: app.exit(2))
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
