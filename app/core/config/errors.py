"""``ConfigError``, importable without pydantic (``lectern ingest`` catches it)."""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """The config file is unreadable or invalid; the message names the key and the fix."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path
