"""Every key of ``config.toml``, declared once: type, default, description.

The sections are pydantic models: ``Document`` is the whole file as written
(``[backends.NAME]`` tables come from ``backends.settings``). Validation checks
each value against its field (the phrase a wrong value gets is part of its
type); ``app.core.config.load`` then resolves what depends on several sections
(which backend drafts, reviews, names that must exist) once, at load. The
README's configuration table documents the same keys; ``tests/unit/test_config``
keeps the two in step.

Secrets are refused before anything else looks at the document (``refuse_secrets``),
so no message can echo one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from backends.base import ThinkingMode
from backends.settings import (
    BackendSettings,
    Count,
    Count0,
    Flag,
    Positive,
    Text,
    must,
    one_of,
    setting,
)

EscalateOn = Literal["error", "empty", "length", "citations"]
ESCALATE_ON: tuple[EscalateOn, ...] = get_args(EscalateOn)
MODES = tuple(m.value for m in ThinkingMode)

SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "secret",
        "api_secret",
        "secret_key",
        "token",
        "access_token",
        "auth_token",
        "bearer",
        "password",
        "passwd",
    }
)
_KEY_LIKE_VALUE = re.compile(r"^(sk|pk|rk)-[A-Za-z0-9_-]{16,}$")
_SECRET_FIX = (
    "secrets never go in the config file. Remove it, then store the key in the OS keyring "
    "(`lectern key set NAME`, NAME being the backend's name) or name an environment "
    'variable: api_key_env = "DEEPSEEK_API_KEY".'
)


def refuse_secrets(node: Any, where: str, fail: Callable[[str], None]) -> None:
    """Call ``fail(message)`` at the first key-like field or key-looking value."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            name = f"{where}.{key}" if where else str(key)
            if str(key).lower() in SECRET_KEYS:
                fail(f"{name}: {_SECRET_FIX}")
            refuse_secrets(value, name, fail)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            refuse_secrets(item, f"{where}[{i}]", fail)
    elif isinstance(node, str) and _KEY_LIKE_VALUE.match(node.strip()):
        fail(
            f"{where} looks like an API key: secrets never go in the config file. Remove "
            "it and use the OS keyring (`lectern key set NAME`) or api_key_env."
        )


def _usd(value: Any) -> Any:
    """TOML numbers to exact amounts (0.1 stays 0.1); anything else fails the field."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("not an amount")
    return Decimal(str(value))


Usd = Annotated[
    Decimal, BeforeValidator(_usd), Field(ge=0), must("must be an amount in USD, like 0.50")
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_RULE_SHAPE = 'a rule needs both, like { over_tokens = 200000, use = "pro" }'


class Rule(_Section):
    """Route prompts over ``over_tokens`` tokens to backend ``use``."""

    model_config = ConfigDict(
        json_schema_extra={"example": '{ over_tokens = 200000, use = "pro" }'}
    )

    over_tokens: Count = setting(
        description="prompts over this many tokens go to `use`", missing=_RULE_SHAPE
    )
    use: Text = setting(description="the backend that answers them", missing=_RULE_SHAPE)


class CascadeSection(_Section):
    """Who drafts, who reviews, and when Pro is spent. At load, ``draft`` and
    ``review`` are filled in and ``escalate_on_failure`` is what will happen."""

    draft: Text | None = setting(
        None,
        "who answers",
        shown_default="the only backend or `flash`",
        missing="set draft = the backend that answers",
    )
    review: Text | None = setting(None, "who reviews and takes escalations", shown_default="`pro`")
    local: Text | None = setting(
        None,
        "preferred for the draft when the prompt fits its window",
        shown_default="first runnable in-process backend",
    )
    auto_review: Flag = setting(False, "review every answer")
    escalate_on_failure: Flag = setting(True, "retry a failed draft on the review backend")
    escalate_on: Annotated[
        frozenset[EscalateOn], must(f"must be a list of {', '.join(ESCALATE_ON)}")
    ] = setting(
        frozenset(ESCALATE_ON),
        "what counts as a failed draft",
        shown_default="all of `error empty length citations`",
    )
    max_escalations: Count0 = setting(1, "escalations per question")
    max_tries: Count = setting(5, "tries per call for retryable errors (before the first token)")
    prime_cache: Flag = setting(
        True,
        "in thinking mode, a 1-token request beside the first question so DeepSeek stores "
        "the corpus as a cache unit",
    )
    rules: tuple[Rule, ...] = setting(
        (), 'e.g. `[{ over_tokens = 600000, use = "pro" }]`', shown_default="none"
    )

    @property
    def pro_over_tokens(self) -> int | None:
        """The smallest rule threshold that routes to the review backend (the router's rule)."""
        found = [r.over_tokens for r in self.rules if r.use == self.review]
        return min(found) if found else None


class SessionSection(_Section):
    """Defaults for new sessions. ``max_tokens`` None: chosen by mode within the profile cap."""

    mode: Annotated[ThinkingMode, one_of(MODES)] = setting(
        ThinkingMode.NON_THINK, "mode of new sessions (fixed per session)"
    )
    max_tokens: Count | None = setting(None, "output cap", shown_default="8192 (32768 thinking)")


class BudgetSection(_Section):
    """Spending caps in USD; None: no cap."""

    per_message_usd: Usd | None = setting(
        None,
        "over a cap `ask` asks, or refuses without `--yes` when not interactive",
        shown_default="no cap",
    )
    per_session_usd: Usd | None = setting(None, "the same, per session", shown_default="no cap")


class IngestSection(_Section):
    """Ingestion settings; ``max_file_mb`` None: ingestion's own default."""

    max_file_mb: Positive | None = setting(
        None, "text files over this are skipped (forceable)", shown_default="20"
    )


class ProfileOverride(_Section):
    """``[profiles."ID"]``: keys of ``resources/models.toml``, whose values
    ``backends.profiles`` checks (the one reader of profiles)."""

    display: Any = setting(None, "the name shown")
    family: Any = setting(None, "`deepseek-v4`, `deepseek-v41`, `gguf`, `generic`")
    tier: Any = setting(None, "`flash`, `pro`, `local`")
    context: Any = setting(None, "window, in tokens")
    max_output: Any = setting(None, "output cap, in tokens")
    prices: Any = setting(None, "dated prices with `peak` hours")
    price_cache_hit: Any = setting(None, "USD per 1M tokens (shorthand for one price)")
    price_cache_miss: Any = setting(None, "USD per 1M tokens")
    price_output: Any = setting(None, "USD per 1M tokens")


class Document(_Section):
    """The whole ``config.toml``."""

    offline: Flag = setting(
        False,
        "refuse every backend that is not on this machine (in process, or a loopback "
        "`base_url`); `--offline` for one run",
    )
    backends: dict[str, BackendSettings] = setting(description="the backends", factory=dict)
    cascade: CascadeSection = setting(description="the cascade", factory=CascadeSection)
    session: SessionSection = setting(description="new sessions", factory=SessionSection)
    budget: BudgetSection = setting(description="spending caps", factory=BudgetSection)
    ingest: IngestSection = setting(description="ingestion", factory=IngestSection)
    profiles: dict[str, ProfileOverride] = setting(
        description="overrides of resources/models.toml", factory=dict
    )

    def profile_overrides(self) -> dict[str, dict[str, Any]]:
        """The ``[profiles]`` tables as written (only the keys given)."""
        return {pid: p.model_dump(exclude_unset=True) for pid, p in self.profiles.items()}
