"""Screenshots of a real Lectern session, for the README and for judging the window.

Starts the real window (under Xvfb: ``xvfb-run -a .venv/bin/python
scripts/screenshots.py``; or offscreen), with a sample corpus (a small codebase
and a contract PDF) and the DeepSeek wire-format fixture server on loopback
standing in for the API (scripted answers with reasoning, a table, code and
citations; a Pro review). It drops the corpus, asks, reviews, opens a cited PDF
page and the settings, and saves PNGs of each state into ``docs/screenshots/``
(``--out DIR`` elsewhere). Nothing touches the user's data: everything lives in
a temporary folder.
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

AUTH = '''"""Request authentication for the web app."""

import hmac
from hashlib import sha256

from .sessions import load_session


def authenticate(request):
    """Return the user of a signed request, or None."""
    token = request.headers.get("Authorization", "")
    if not token.startswith("Bearer "):
        return None
    session = load_session(token.removeprefix("Bearer "))
    if session is None or session.expired:
        return None
    expected = hmac.new(session.key, request.body, sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
        return None
    return session.user
'''
ROUTES = """from .auth import authenticate


def handle(request):
    user = authenticate(request)
    if user is None:
        return 401, "sign in first"
    return 200, f"hello {user.name}"
"""
SESSIONS = """import time

SESSIONS = {}


class Session:
    def __init__(self, user, key, ttl=3600):
        self.user, self.key, self.created = user, key, time.time()
        self.ttl = ttl

    @property
    def expired(self):
        return time.time() - self.created > self.ttl


def load_session(token):
    return SESSIONS.get(token)
"""
TESTS = """from webapp.auth import authenticate


def test_rejects_missing_token(request_factory):
    assert authenticate(request_factory(headers={})) is None
"""
README = """# webapp

A tiny web service. Requests are signed with HMAC-SHA256; see `src/auth.py`.
"""
PAGES = [
    "MASTER SERVICES AGREEMENT\n\n1. Services. The Supplier provides hosting.\n"
    "2. Fees. The Customer pays EUR 120,000 a year.",
    "9. Liability.\n9.1 Each party's liability is capped at five times the fees paid\n"
    "in the twelve months before the claim.\n9.2 The cap does not apply to fraud.",
    "12. Governing law. This agreement is governed by the laws of Ireland.\n"
    "Schedule 3. The cap is fixed at EUR 600,000.",
]
REASONING = (
    "The user asks where requests are authenticated. src/auth.py defines authenticate(); "
    "routes.py calls it before answering. Sessions expire after ttl seconds. The contract "
    "is unrelated but caps liability at five times the fees."
)
ANSWER = """Requests are authenticated in **`authenticate()`** in `src/auth.py` \
[webapp/src/auth.py:L9-20], which `handle()` calls before it answers \
[webapp/src/routes.py:L4-7].

It checks three things, in order:

| Step | Check | Fails with |
|---|---|---|
| 1 | a `Bearer` token in `Authorization` | `None` → 401 |
| 2 | a live session for that token | `None` → 401 |
| 3 | an HMAC-SHA256 of the body in `X-Signature` | `None` → 401 |

```python
expected = hmac.new(session.key, request.body, sha256).hexdigest()
if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
    return None
```

Sessions expire after `ttl` seconds, an hour by default [webapp/src/sessions.py:L7-14]. \
Separately, the hosting contract caps liability at five times the annual fees \
[msa.pdf p.2 "capped at five times the fees"]."""
REVIEW = """VERDICT: partly correct

The flow is right [webapp/src/auth.py:L9-20], but the comparison uses \
`hmac.compare_digest`, which is constant-time, so timing attacks on the signature \
do not work [webapp/src/auth.py:L17-18]. Note also that Schedule 3 fixes the contract's \
cap at EUR 600,000 [msa.pdf p.3 "fixed at EUR 600,000"]."""


def write_corpus(root: Path) -> list[Path]:
    from tests.fixtures.docs import make_pdf

    app = root / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "tests").mkdir()
    (app / "src" / "auth.py").write_text(AUTH)
    (app / "src" / "routes.py").write_text(ROUTES)
    (app / "src" / "sessions.py").write_text(SESSIONS)
    (app / "tests" / "test_auth.py").write_text(TESTS)
    (app / "README.md").write_text(README)
    pdf = make_pdf(root / "msa.pdf", PAGES, fontsize=12)
    return [app, pdf]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--dark", action="store_true", help="the dark theme")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lectern-shots-"))
    os.environ["LECTERN_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "xdg")
    from tests.fixtures.deepseek_server import DeepSeekServer
    from tests.fixtures.lectern_env import TEST_KEY_ENV, fixture_config

    os.environ[TEST_KEY_ENV] = "sk-lectern-fixture-0000"
    with DeepSeekServer(cache_interval=None) as srv:
        config = fixture_config(
            tmp / "config.toml",
            srv.base_url,
            cascade={"max_tries": 1},
            extra='[session]\nmode = "high"\n',
        )
        os.environ["LECTERN_CONFIG"] = str(config)
        srv.enqueue_reply(ANSWER, reasoning=REASONING, chunk_delay=0.003)
        srv.enqueue_reply("", reasoning="")  # the cache-priming request beside it
        srv.enqueue_reply(REVIEW, reasoning="Checking the draft against auth.py.")
        srv.enqueue_reply("", reasoning="")  # the review's priming request
        return _drive(write_corpus(tmp / "corpus"), args.out, args.dark)


def _drive(paths: list[Path], out: Path, dark: bool) -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.main import build_window, make_app

    app = make_app(sys.argv[:1])
    QSettings().setValue("appearance/theme", "dark" if dark else "light")
    window: Any = build_window(app)
    window.resize(1440, 900)
    suffix = "_dark" if dark else ""
    steps: list[str] = []

    def shot(name: str, widget: Any = None) -> None:
        QApplication.processEvents()
        (widget or window).grab().save(str(out / f"{name}{suffix}.png"))
        steps.append(name)
        print(f"saved {out / f'{name}{suffix}.png'}", flush=True)

    def later(ms: int, fn: Any) -> None:
        QTimer.singleShot(ms, fn)

    def ready() -> None:
        window.ready.disconnect(ready)
        window.add_paths([str(p) for p in paths])

    question = "Where is a request authenticated, and can the signature check be bypassed?"

    def ended(kind: str, outcome: Any, error: str | None) -> None:
        if error:
            print(f"{kind} failed: {error}", file=sys.stderr)
            app.exit(1)
        elif kind == "read":
            window.library.tree.expandAll()
            later(600, lambda: (shot("library"), ask()))
        elif kind == "ask":
            later(800, after_answer)
        elif kind == "review":
            later(800, after_review)

    def ask() -> None:
        window.composer.edit.setPlainText(question)
        later(900, lambda: window.send(question))

    def after_answer() -> None:
        window.transcript.verticalScrollBar().setValue(0)
        shot("chat")
        window.review_last()

    def after_review() -> None:
        bar = window.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())
        shot("review")
        cites = [
            c
            for m in window.transcript.messages()
            for c in m.citations
            if c.get("kind") == "page" and c.get("valid")
        ]
        if cites:
            window.open_citation(dict(cites[0]))
        later(2500, viewer)

    def viewer() -> None:
        shot("viewer")
        from app.ui.settings.settings_dialog import SettingsDialog

        dialog = SettingsDialog(window.tasks, window)
        dialog.show()
        later(1200, lambda: (shot("settings", dialog), dialog.close(), finish()))

    def finish() -> None:
        window.close()
        app.exit(0)

    window.ready.connect(ready)
    window.controller.jobEnded.connect(ended)
    window.show()
    QTimer.singleShot(0, window.start)
    QTimer.singleShot(180_000, lambda: app.exit(2))
    code = app.exec()
    print("steps:", ", ".join(steps))
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
