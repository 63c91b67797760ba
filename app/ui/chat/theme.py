"""The transcript's colours for light and dark, as data.

Nothing rendered keeps a reference to these: the view re-renders its message
models when the theme changes. Body text takes the widget palette's colour;
only accents (labels, code, citations, verdicts, errors) are set from here.
Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """A verdict badge: its text and colours."""

    text: str
    fg: str
    bg: str


@dataclass(frozen=True)
class Theme:
    dark: bool
    base: str  # the view's background
    text: str
    dim: str  # labels, reasoning, status lines
    faint: str  # rules, glue
    link: str
    selection: str
    user_bg: str
    user_border: str
    code_bg: str
    code_border: str
    inline_code_bg: str
    table_border: str
    table_head_bg: str
    cite_bg: str
    cite_invalid: str
    review_bg: str
    review_border: str
    review_accent: str
    error_bg: str
    error_border: str
    error_text: str
    warn_text: str
    correct: Verdict
    partly: Verdict
    incorrect: Verdict
    no_verdict: Verdict
    pygments_style: str

    def verdict(self, value: str | None) -> Verdict:
        """The badge for a review verdict (correct / partly correct / incorrect / None)."""
        key = (value or "").strip().lower()
        if key == "correct":
            return self.correct
        if key in ("partly correct", "partially correct", "partly"):
            return self.partly
        if key == "incorrect":
            return self.incorrect
        return self.no_verdict


LIGHT = Theme(
    dark=False,
    base="#ffffff",
    text="#1f2328",
    dim="#656d76",
    faint="#d8dee4",
    link="#0969da",
    selection="#b6d7ff",
    user_bg="#f1f5fb",
    user_border="#d5e1f2",
    code_bg="#f6f8fa",
    code_border="#e1e6eb",
    inline_code_bg="#eff1f3",
    table_border="#d0d7de",
    table_head_bg="#eef2f6",
    cite_bg="#ddf4ff",
    cite_invalid="#cf222e",
    review_bg="#faf7ff",
    review_border="#d8c7f5",
    review_accent="#8250df",
    error_bg="#fff5f5",
    error_border="#ffb8b8",
    error_text="#b3261e",
    warn_text="#9a6700",
    correct=Verdict("✓ CORRECT", "#116329", "#d2f4dc"),
    partly=Verdict("◐ PARTLY CORRECT", "#7d4e00", "#fcefc0"),
    incorrect=Verdict("✗ INCORRECT", "#a40e26", "#ffdce0"),
    no_verdict=Verdict("NO VERDICT", "#57606a", "#eaeef2"),
    pygments_style="xcode",
)

DARK = Theme(
    dark=True,
    base="#17191e",
    text="#e3e7ec",
    dim="#8d96a0",
    faint="#30363d",
    link="#6cb6ff",
    selection="#264f78",
    user_bg="#20262f",
    user_border="#2f3946",
    code_bg="#1d2128",
    code_border="#2d333b",
    inline_code_bg="#2a2f37",
    table_border="#3d444d",
    table_head_bg="#22272e",
    cite_bg="#1c3149",
    cite_invalid="#ff7b72",
    review_bg="#1e1b29",
    review_border="#41355e",
    review_accent="#b395f5",
    error_bg="#2a1a1c",
    error_border="#6e2b2b",
    error_text="#ff8c82",
    warn_text="#d8a443",
    correct=Verdict("✓ CORRECT", "#7ee2a0", "#173823"),
    partly=Verdict("◐ PARTLY CORRECT", "#f2cc60", "#3b2e10"),
    incorrect=Verdict("✗ INCORRECT", "#ffa198", "#451b1f"),
    no_verdict=Verdict("NO VERDICT", "#adbac7", "#2d333b"),
    pygments_style="github-dark",
)


def theme_for(dark: bool) -> Theme:
    return DARK if dark else LIGHT
