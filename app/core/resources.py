"""Where Lectern's data files (``resources/``) live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def resource(*parts: str) -> Path:
    return RESOURCES.joinpath(*parts)
