"""Shared set-up for the window's tests: real widgets on Qt's offscreen platform."""

from __future__ import annotations

import os

# Before any QApplication exists (pytest-qt creates it on first use).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import pytest


@pytest.fixture(scope="session")
def qapp_cls() -> type:
    """pytest-qt's application is Lectern's own (it queues files the OS asks to open)."""
    from app.ui.main import LecternApp

    return LecternApp
