"""The loaded config: the validated document, resolved, plus where it came from.

``Config`` is what ``load_config`` returns and everything else reads: the
sections are the schema's own models (``app.core.config.schema``), with the
cascade's defaults already resolved, and ``backends`` holds the
``backends.settings`` objects that ``backends.factory`` builds from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.config.schema import (
    BudgetSection,
    CascadeSection,
    Document,
    IngestSection,
    SessionSection,
)
from backends.profiles import Profile, load_profiles
from backends.settings import BackendSettings


@dataclass(frozen=True)
class Config:
    """The whole config. ``path`` is the file read (None: no file, the built-in demo);
    ``demo``: no backend configured, the embedded demo model answers."""

    path: Path | None
    data_dir: Path
    settings: Document
    demo: bool = False

    @property
    def offline(self) -> bool:
        return self.settings.offline

    @property
    def backends(self) -> Mapping[str, BackendSettings]:
        return self.settings.backends

    @property
    def cascade(self) -> CascadeSection:
        return self.settings.cascade

    @property
    def session(self) -> SessionSection:
        return self.settings.session

    @property
    def budget(self) -> BudgetSection:
        return self.settings.budget

    @property
    def ingest(self) -> IngestSection:
        return self.settings.ingest

    @property
    def profile_overrides(self) -> Mapping[str, Mapping[str, Any]]:
        return self.settings.profile_overrides()

    def profiles(self) -> dict[str, Profile]:
        """``resources/models.toml`` with this config's ``[profiles]`` overrides applied."""
        return load_profiles(overrides=self.profile_overrides)

    def backend_tables(self) -> Mapping[str, BackendSettings]:
        """The backends as ``backends.factory.BackendPool`` takes them."""
        return self.settings.backends

    @property
    def draft(self) -> BackendSettings:
        """The backend that answers by default."""
        assert self.cascade.draft is not None  # resolved at load
        return self.backends[self.cascade.draft]

    @property
    def review(self) -> BackendSettings | None:
        """The backend for review and escalation, if any."""
        return None if self.cascade.review is None else self.backends[self.cascade.review]
