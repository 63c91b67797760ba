"""The over-window banner's words, from a fit report as the workspace measures it."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.core.fit import FitSuggestion
from app.core.workspace.fitting import FitReport
from app.ui.library.library import LibraryPanel
from app.ui.shell.records import DocRow


def panel(qtbot: QtBot) -> LibraryPanel:
    library = LibraryPanel()
    qtbot.addWidget(library)
    library.set_documents(
        (
            DocRow(1, "repo/lib/big.py", "code", 60_000, "active", local_only=False),
            DocRow(2, "repo/app.py", "code", 900, "active", local_only=False),
        )
    )
    library.show()
    return library


def test_the_banner_gives_the_prompt_the_answer_and_the_window(qtbot: QtBot) -> None:
    library = panel(qtbot)
    library.show_fit(
        FitReport(
            backend="laptop",
            window=32_768,
            prompt_tokens=61_500,
            reserved=8_192,
            conversation_tokens=0,
            suggestions=(
                FitSuggestion("repo/lib/", 60_000, "largest folder", ("repo/lib/big.py",)),
            ),
            after_tokens=1_500,
            larger=("flash", "pro"),
        )
    )
    text = library.fit.text()
    assert "Over laptop's window by 36,924 tokens" in text
    assert "the prompt needs 61,500 and the answer 8,192, of 32,768" in text
    assert "<b>flash</b>, <b>pro</b> hold the whole corpus" in text
    assert "makes it fit (the prompt then needs 1,500)" in text
    assert library.fit_button.isVisible() and library.fit_button.text() == "Exclude this file"


def test_an_answer_reserve_that_fills_the_window_is_named(qtbot: QtBot) -> None:
    """Excluding documents cannot help: the banner says what can."""
    library = panel(qtbot)
    library.show_fit(
        FitReport(
            backend="laptop", window=32_768, prompt_tokens=61_500, reserved=32_768,
            conversation_tokens=0, larger=("flash",),
        )
    )  # fmt: skip
    text = library.fit.text()
    assert "<b>flash</b> holds the whole corpus" in text
    assert "the 32,768 tokens kept for the answer fill the window on their own" in text
    assert not library.fit_button.isVisible()
