"""Screenshots of a real Lectern session, for the README and for judging the window.

Starts the real window (under Xvfb: ``xvfb-run -a .venv/bin/python
scripts/screenshots.py``, ``--dark`` for the dark theme; or offscreen), with a
sample corpus (a code tree with a large parser in ``lib/``, a ``vendor/`` folder
that ignore rules leave out, a few PNGs and a file that is not text, and a
contract PDF) and the DeepSeek wire-format fixture server on
loopback standing in for the API (scripted answers with reasoning, a table, code
and citations; a Pro review with a verdict and one in free text). A third backend,
``laptop``, is a server with a 32,768-token window (answers are capped at 8,192
tokens): the corpus does not fit it.

One session, in order: the library with its problems list (``library``,
``problems``), a question (``chat``), its Pro review (``review``), the cited PDF page
(``viewer``), a second question reviewed without a VERDICT line
(``review_no_verdict``), the Sessions dialog (``sessions``), Settings
(``settings``), then ``laptop`` picked: the over-window banner with its fit
suggestion (``over_window``) and the context map's detail list
(``context_map``), and the suggestion applied (``after_exclude``). PNGs go to
``docs/screenshots/`` (``--out DIR`` elsewhere; ``_dark`` added with ``--dark``).
Nothing touches the user's data: everything lives in a temporary folder.
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


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
QUESTION = "Where is a request authenticated, and can the signature check be bypassed?"
QUESTION_2 = "What is the liability cap in the hosting contract?"
ANSWER_2 = """Clause 9.1 caps each party's liability at five times the fees paid in the \
twelve months before the claim [msa.pdf p.2 "capped at five times the fees"]; at \
EUR 120,000 a year that is EUR 600,000 [msa.pdf p.1 "EUR 120,000 a year"]. Schedule 3 \
fixes the same figure [msa.pdf p.3 "fixed at EUR 600,000"]. Fraud is not capped \
[msa.pdf p.2 "does not apply to fraud"]."""
# Pro's reply in free text, with no VERDICT line: the card must still show it.
REVIEW_FREE = """The arithmetic holds: five times EUR 120,000 is EUR 600,000, and Schedule 3 \
says so [msa.pdf p.3 "fixed at EUR 600,000"]. The draft should add that 9.1 counts \
the fees of the twelve months before the claim, so the cap is lower in the first \
year of the contract [msa.pdf p.2 "in the twelve months before the claim"]."""
QUESTION_3 = "Which parser rules handle list items?"
SMALL = "laptop"  # a server with a small window, for the over-window banner
SMALL_WINDOW = 32_768


def vendored(module: int, rules: int = 120) -> str:
    """A vendored parser module: plausible code, about 13,000 tokens."""
    parts = [f'"""Block rules of the vendored Markdown parser, part {module}."""\n']
    for n in range(rules):
        parts.append(
            f"""

def rule_{module}_{n}(state, start, end, silent):
    \"\"\"Block rule {n}: a list item, a fence or a heading at ``start``.\"\"\"
    pos = state.bMarks[start] + state.tShift[start]
    maximum = state.eMarks[start]
    if state.sCount[start] - state.blkIndent >= {4 + n % 3}:
        return False
    marker = state.src[pos] if pos < maximum else ""
    if marker not in ("*", "-", "+", "#", "`"):
        return False
    if silent:
        return True
    token = state.push("rule_{n}_open", "div", 1)
    token.map = [start, state.line]
    state.line = start + {1 + n % 4}
    return True
"""
        )
    return "".join(parts)


def write_corpus(root: Path) -> list[Path]:
    from tests.fixtures.docs import make_pdf

    app = root / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "tests").mkdir()
    (app / "static").mkdir()
    (app / "lib" / "mdparse").mkdir(parents=True)
    (app / "vendor").mkdir()
    (app / "src" / "auth.py").write_text(AUTH)
    (app / "src" / "routes.py").write_text(ROUTES)
    (app / "src" / "sessions.py").write_text(SESSIONS)
    (app / "tests" / "test_auth.py").write_text(TESTS)
    (app / "README.md").write_text(README)
    for n in range(3):
        (app / "lib" / "mdparse" / f"rules_{n + 1}.py").write_text(vendored(n + 1))
    (app / "vendor" / "left_pad.py").write_text("def left_pad(s, n):\n    return s.rjust(n)\n")
    # A code tree's images are skipped in one line, not listed as problems one by one.
    for n, name in enumerate(("logo.png", "favicon.png", "hero.png", "icon-192.png")):
        (app / "static" / name).write_bytes(PNG + bytes([n]) * 64)
    # A real problem: a .py file that is not text.
    (app / "src" / "legacy_blob.py").write_bytes(b"def f():\n    return '\xff\xfe'\x00\n")
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
        small = "\n".join(
            (
                f"[backends.{SMALL}]",
                'kind = "openai"',
                f'base_url = "{srv.base_url}"',
                'model = "deepseek-v4-flash"',
                'flavour = "deepseek"',
                f'api_key_env = "{TEST_KEY_ENV}"',
                f"context = {SMALL_WINDOW}",
                "",
            )
        )
        config = fixture_config(
            tmp / "config.toml",
            srv.base_url,
            # No priming requests: the scripted replies then reach the calls in order.
            cascade={"max_tries": 1, "prime_cache": False, "escalate_on_failure": False},
            # Answers of up to 8,192 tokens: the thinking default (32,768) would fill laptop.
            extra='[session]\nmode = "high"\nmax_tokens = 8192\n\n' + small,
        )
        os.environ["LECTERN_CONFIG"] = str(config)
        srv.enqueue_reply(ANSWER, reasoning=REASONING, chunk_delay=0.003)
        srv.enqueue_reply(REVIEW, reasoning="Checking the draft against auth.py.")
        srv.enqueue_reply(ANSWER_2, reasoning="Clause 9.1 and Schedule 3.", chunk_delay=0.002)
        srv.enqueue_reply(REVIEW_FREE, reasoning="Checking the cap against the contract.")
        return _drive(write_corpus(tmp / "corpus"), args.out, args.dark)


def _shrink(path: Path) -> None:
    """256 colours, no dithering: a third of the size, the same to the eye for a UI
    (Pillow is in the lock; without it the PNG stays as Qt wrote it)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(path, optimize=True)


def _drive(paths: list[Path], out: Path, dark: bool) -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.main import build_window, make_app
    from app.ui.sessions.sessions_dialog import SessionsDialog
    from app.ui.settings.settings_dialog import SettingsDialog

    app = make_app(sys.argv[:1])
    QSettings().setValue("appearance/theme", "dark" if dark else "light")
    window: Any = build_window(app)
    window.resize(1440, 900)
    suffix = "_dark" if dark else ""
    steps: list[str] = []
    reviews: list[str] = []

    def shot(name: str, widget: Any = None, screen: bool = False) -> None:
        """Save ``widget`` (the window) as drawn; ``screen``: as the screen shows it (a
        window of its own, so what is under a transparent part shows too)."""
        QApplication.processEvents()
        target = widget or window
        image = QApplication.primaryScreen().grabWindow(target.winId()) if screen else target.grab()
        image.save(str(out / f"{name}{suffix}.png"))
        _shrink(out / f"{name}{suffix}.png")
        steps.append(name)
        print(f"saved {out / f'{name}{suffix}.png'}", flush=True)

    def later(ms: int, fn: Any) -> None:
        QTimer.singleShot(ms, fn)

    def ready() -> None:
        window.ready.disconnect(ready)
        window.add_paths([str(p) for p in paths])

    def ended(kind: str, outcome: Any, error: str | None) -> None:
        if error:
            print(f"{kind} failed: {error}", file=sys.stderr)
            app.exit(1)
        elif kind == "read" and "library" not in steps:
            tree = window.library.tree
            tree.expandAll()
            model = tree.model()
            top = model.index(0, 0)  # webapp/
            for row in range(model.rowCount(top)):
                child = model.index(row, 0, top)
                if str(child.data()).startswith("lib"):
                    tree.collapse(child)  # its files are long; the folder sums them
            later(800, lambda: (shot("library"), shot("problems", window.library), ask()))
        elif kind == "ask" and "chat" not in steps:
            later(800, after_answer)
        elif kind == "ask":
            later(600, window.review_last)
        elif kind == "review":
            reviews.append("done")
            later(800, after_review if len(reviews) == 1 else after_free_review)

    def ask(question: str = QUESTION) -> None:
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
        window.viewer.hide()
        ask(QUESTION_2)

    def after_free_review() -> None:
        bar = window.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())
        shot("review_no_verdict")
        dialog = SessionsDialog(window.ws, window.tasks, window)
        dialog.resize(900, 420)
        dialog.show()
        later(1500, lambda: (shot("sessions", dialog), dialog.close(), settings()))

    def settings() -> None:
        dialog = SettingsDialog(window.tasks, window)
        dialog.show()
        later(1200, lambda: (shot("settings", dialog), dialog.close(), over_window()))

    def over_window() -> None:
        box = window.backend_box
        box.setCurrentIndex(box.findData(SMALL))
        window.composer.edit.setPlainText(QUESTION_3)  # quoted as typed, on laptop
        later(3000, over_window_shots)

    def over_window_shots() -> None:
        shot("over_window")
        window.context_map.show_details()
        later(800, lambda: (shot("context_map", window.context_map.details, screen=True), fit()))

    def fit() -> None:
        window.context_map.details.close()
        window.library.fit_button.click()  # "Exclude these": the next quote fits
        later(3000, lambda: (shot("after_exclude"), finish()))

    def finish() -> None:
        window.close()
        app.exit(0)

    window.ready.connect(ready)
    window.controller.jobEnded.connect(ended)
    window.controller.error.connect(lambda text: print(f"error: {text}", flush=True))
    window.controller.workspaceFailed.connect(
        lambda text: (print(f"the workspace failed: {text}", file=sys.stderr), app.exit(1))
    )
    window.show()
    QTimer.singleShot(0, window.start)
    QTimer.singleShot(240_000, lambda: app.exit(2))
    code = app.exec()
    print("steps:", ", ".join(steps))
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
