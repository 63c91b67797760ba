"""app/ui is grouped by region of the screen, and its README maps every module.

A module left loose at the top of app/ui, a region folder that is not a package,
or a module the map (app/ui/README.md) does not name would leave a newcomer
guessing which room a change belongs in.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "app" / "ui"
REGIONS = {"shell", "library", "chat", "viewer", "context", "settings", "sessions", "common"}


def test_nothing_is_loose_at_the_top_of_app_ui() -> None:
    loose = sorted(p.name for p in UI.glob("*.py") if p.name not in ("__init__.py", "main.py"))
    assert loose == []


def test_every_region_is_a_package_and_nothing_else_is_there() -> None:
    folders = {p.name for p in UI.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == REGIONS
    assert all((UI / name / "__init__.py").is_file() for name in REGIONS)


def test_the_readme_names_every_region_and_module_in_its_row() -> None:
    readme = (UI / "README.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([a-z_]+)/` \|.*\| (.*) \|$", readme, re.MULTILINE)
    }
    assert set(rows) == REGIONS
    for region in REGIONS:
        modules = {p.name for p in (UI / region).glob("*.py") if p.name != "__init__.py"}
        named = set(re.findall(r"`([a-z_]+\.py)`", rows[region]))
        assert named == modules, region


def test_records_stays_qt_free() -> None:
    """The controller builds these on a worker thread: no widgets, no Qt."""
    text = (UI / "shell" / "records.py").read_text(encoding="utf-8")
    assert not re.search(r"\b(PySide6|shiboken6)\b", text)
