"""Validation of the config file: every key typed and checked, every message actionable.

Split from ``app.core.config`` (which holds the values and the loading) so each
file has one job. ``parse`` walks the parsed TOML once: secrets are refused
first (before anything could echo them), unknown keys get a "did you mean",
and each backend table is checked for its kind's keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from app.core.config import (
    DEMO_BACKEND,
    ESCALATE_ON,
    FLAVOURS,
    KINDS,
    BackendConfig,
    BudgetConfig,
    CascadeConfig,
    Config,
    ConfigError,
    IngestConfig,
    Rule,
    SessionConfig,
    data_dir,
    demo_backend,
)
from backends.base import ThinkingMode
from backends.profiles import Profile, ProfileError, load_profiles

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
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_TOP = ("offline", "backends", "cascade", "session", "budget", "ingest", "profiles")
_COMMON = ("kind", "profile", "context")
_BY_KIND: dict[str, tuple[str, ...]] = {
    "openai": (
        "timeout",
        "base_url",
        "model",
        "api_key_env",
        "flavour",
        "needs_key",
        "connect_timeout",
        "read_timeout",
        "max_tries",
        "extra_body",
    ),
    "llama_cpp": ("model_path", "n_ctx", "n_threads", "kv_budget_gb"),
    "mlx": ("model_path", "n_ctx", "kv_budget_gb"),
}
_CASCADE = (
    "draft",
    "review",
    "local",
    "auto_review",
    "escalate_on_failure",
    "escalate_on",
    "max_escalations",
    "max_tries",
    "prime_cache",
    "rules",
)
_SESSION = ("mode", "max_tokens")
_BUDGET = ("per_message_usd", "per_session_usd")
_INGEST = ("max_file_mb",)
_PROFILE_KEYS = (
    "display",
    "family",
    "tier",
    "context",
    "max_output",
    "prices",
    "price_cache_hit",
    "price_cache_miss",
    "price_output",
)


def parse(
    raw: Mapping[str, Any], *, path: Path | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML document into a ``Config`` (``path`` names it in messages)."""
    v = _Validator(path.name if path is not None else "config.toml", path)
    v.refuse_secrets(raw, "")
    v.known_keys(raw, _TOP, "")
    offline = v.boolean(raw, "offline", "", default=False)

    overrides = v.table(raw, "profiles", "")
    for pid, table in overrides.items():
        if not isinstance(table, Mapping):
            v.fail(f'profiles."{pid}" must be a table of profile keys')
        v.known_keys(table, _PROFILE_KEYS, f'profiles."{pid}"')
    try:
        profiles = load_profiles(overrides=overrides)
    except ProfileError as exc:
        v.fail(f"{exc}")

    backends_raw = v.table(raw, "backends", "")
    backends: dict[str, BackendConfig] = {}
    for name, table in backends_raw.items():
        if not isinstance(table, Mapping):
            v.fail(f"backends.{name} must be a table, like [backends.{name}] with kind = ...")
        backends[name] = v.backend(name, table, profiles)
    demo = not backends
    if demo:
        backends = {DEMO_BACKEND: demo_backend()}

    cascade = v.cascade(v.table(raw, "cascade", ""), backends, demo)
    session = v.session(v.table(raw, "session", ""))
    budget = v.budget(v.table(raw, "budget", ""))
    ingest_t = v.table(raw, "ingest", "")
    v.known_keys(ingest_t, _INGEST, "ingest")
    ingest = IngestConfig(max_file_mb=v.number(ingest_t, "max_file_mb", "ingest"))
    return Config(
        path=path,
        data_dir=data_dir(env),
        offline=offline,
        backends=backends,
        cascade=cascade,
        session=session,
        budget=budget,
        ingest=ingest,
        profile_overrides={k: dict(t) for k, t in overrides.items()},
        demo=demo,
    )


class _Validator:
    """Typed reads of a TOML document, failing with the key's full name and the fix."""

    def __init__(self, file: str, path: Path | None) -> None:
        self.file = file
        self.path = path

    def fail(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.file}: {message}", self.path)

    @staticmethod
    def _name(where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def refuse_secrets(self, node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                name = self._name(where, str(key))
                if str(key).lower() in SECRET_KEYS:
                    self.fail(
                        f"{name}: secrets never go in the config file. Remove it, then store "
                        "the key in the OS keyring (`lectern key set NAME`, NAME being the "
                        "backend's name) or name an environment variable: api_key_env = "
                        '"DEEPSEEK_API_KEY".'
                    )
                self.refuse_secrets(value, name)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self.refuse_secrets(item, f"{where}[{i}]")
        elif isinstance(node, str) and _KEY_LIKE_VALUE.match(node.strip()):
            self.fail(
                f"{where} looks like an API key: secrets never go in the config file. Remove "
                "it and use the OS keyring (`lectern key set NAME`) or api_key_env."
            )

    def known_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                place = f"[{where}]" if where else "the top level"
                self.fail(
                    f"{self._name(where, str(key))} is not a setting{hint}; "
                    f"{place} accepts {', '.join(allowed)}."
                )

    def table(self, raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(f"{self._name(where, key)} must be a table ([{self._name(where, key)}]).")
        return value

    def boolean(self, raw: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{self._name(where, key)} = {value!r} must be true or false.")
        return value

    def string(self, raw: Mapping[str, Any], key: str, where: str) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{self._name(where, key)} = {value!r} must be a non-empty string.")
        return value.strip()

    def choice(
        self, raw: Mapping[str, Any], key: str, where: str, options: tuple[str, ...]
    ) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if value not in options:
            self.fail(f"{self._name(where, key)} = {value!r} is not one of {', '.join(options)}.")
        return str(value)

    def integer(
        self, raw: Mapping[str, Any], key: str, where: str, *, minimum: int = 1
    ) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(f"{self._name(where, key)} = {value!r} must be a whole number >= {minimum}.")
        return value

    def number(self, raw: Mapping[str, Any], key: str, where: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(f"{self._name(where, key)} = {value!r} must be a positive number.")
        return float(value)

    def money(self, raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(f"{self._name(where, key)} = {value!r} must be an amount in USD, like 0.50.")
        return Decimal(str(value))

    # -- sections ---------------------------------------------------------------------

    def backend(
        self, name: str, t: Mapping[str, Any], profiles: Mapping[str, Profile]
    ) -> BackendConfig:
        where = f"backends.{name}"
        if "kind" not in t:
            self.fail(f"{where}.kind is missing: set kind = one of {', '.join(KINDS)}.")
        kind = self.choice(t, "kind", where, KINDS)
        assert kind is not None
        self.known_keys(t, _COMMON + _BY_KIND[kind], where)
        table = dict(t)
        base_url = self.string(t, "base_url", where)
        model = self.string(t, "model", where)
        model_path = self.string(t, "model_path", where)
        if kind == "openai":
            if base_url is None:
                self.fail(
                    f'{where}.base_url is missing: e.g. base_url = "https://api.deepseek.com".'
                )
            assert base_url is not None
            if not re.match(r"^https?://[^/\s]+", base_url):
                self.fail(
                    f"{where}.base_url = {base_url!r} must start with http:// or "
                    "https:// and name a host."
                )
            if model is None:
                self.fail(f'{where}.model is missing: e.g. model = "deepseek-v4-flash".')
        elif model_path is None:
            what = "a .gguf file" if kind == "llama_cpp" else "an mlx-lm model folder"
            self.fail(f"{where}.model_path is missing: the path of {what}.")
        api_key_env = self.string(t, "api_key_env", where)
        if api_key_env is not None and not _ENV_NAME.match(api_key_env):
            self.fail(
                f"{where}.api_key_env = {api_key_env!r} must be an environment variable "
                'name, like "DEEPSEEK_API_KEY" (the key itself goes in that variable).'
            )
        profile = self.string(t, "profile", where)
        if profile is not None and profile not in profiles:
            self.fail(
                f"{where}.profile = {profile!r} is not a known profile "
                f'({", ".join(sorted(profiles))}); add [profiles."{profile}"] to define '
                "it."
            )
        flavour = self.choice(t, "flavour", where, FLAVOURS)
        for key in ("context", "n_threads", "max_tries"):
            self.integer(t, key, where)
        n_ctx = self.integer(t, "n_ctx", where)
        for key in ("connect_timeout", "read_timeout", "kv_budget_gb"):
            self.number(t, key, where)
        timeout = self.number(t, "timeout", where)
        if "needs_key" in t:
            self.boolean(t, "needs_key", where, default=False)
        if "extra_body" in t:
            self.table(t, "extra_body", where)
        if timeout is not None:
            table.setdefault("read_timeout", timeout)
        if kind == "mlx" and n_ctx is not None:
            table.setdefault("context", n_ctx)
        if model_path is not None:
            table["model_path"] = str(Path(model_path).expanduser())
        return BackendConfig(
            name=name,
            kind=kind,
            table=table,
            base_url=base_url,
            model=model,
            api_key_env=api_key_env,
            model_path=table.get("model_path"),
            profile=profile,
            flavour=flavour,
            n_ctx=n_ctx,
            timeout=timeout,
        )

    def cascade(
        self, t: Mapping[str, Any], backends: Mapping[str, BackendConfig], demo: bool
    ) -> CascadeConfig:
        self.known_keys(t, _CASCADE, "cascade")
        names = ", ".join(backends)

        def backend_name(key: str) -> str | None:
            value = self.string(t, key, "cascade")
            if value is not None and value not in backends:
                self.fail(
                    f"cascade.{key} = {value!r} names no backend; configured: {names}. "
                    f"Add [backends.{value}] or fix cascade.{key}."
                )
            return value

        draft = backend_name("draft")
        if draft is None:
            if len(backends) == 1:
                draft = next(iter(backends))
            elif "flash" in backends:
                draft = "flash"
            else:
                self.fail(
                    f"cascade.draft is missing: set draft = the backend that answers "
                    f"(one of {names})."
                )
        review = backend_name("review")
        if review is None and "review" not in t and "pro" in backends and draft != "pro":
            review = "pro"
        local = backend_name("local")
        escalate_on = t.get("escalate_on", list(ESCALATE_ON))
        if not isinstance(escalate_on, list) or any(e not in ESCALATE_ON for e in escalate_on):
            self.fail(
                f"cascade.escalate_on = {escalate_on!r} must be a list of {', '.join(ESCALATE_ON)}."
            )
        rules = []
        raw_rules = t.get("rules", [])
        if not isinstance(raw_rules, list):
            self.fail('cascade.rules must be a list like [{ over_tokens = 200000, use = "pro" }].')
        for i, rule in enumerate(raw_rules):
            where = f"cascade.rules[{i}]"
            if not isinstance(rule, Mapping):
                self.fail(f'{where} must be a table like {{ over_tokens = 200000, use = "pro" }}.')
            self.known_keys(rule, ("over_tokens", "use"), where)
            over = self.integer(rule, "over_tokens", where)
            use = self.string(rule, "use", where)
            if over is None or use is None:
                self.fail(f"{where} needs both over_tokens and use.")
            assert over is not None and use is not None
            if use not in backends:
                self.fail(f"{where}.use = {use!r} names no backend; configured: {names}.")
            rules.append(Rule(over_tokens=over, use=use))
        max_esc = self.integer(t, "max_escalations", "cascade", minimum=0)
        escalate = self.boolean(t, "escalate_on_failure", "cascade", default=review is not None)
        assert draft is not None
        return CascadeConfig(
            draft=draft,
            review=review,
            local=local,
            auto_review=self.boolean(t, "auto_review", "cascade", default=False),
            escalate_on_failure=escalate and not demo,
            escalate_on=frozenset(escalate_on),
            max_escalations=1 if max_esc is None else max_esc,
            max_tries=self.integer(t, "max_tries", "cascade") or 5,
            prime_cache=self.boolean(t, "prime_cache", "cascade", default=True),
            rules=tuple(sorted(rules, key=lambda r: r.over_tokens)),
        )

    def session(self, t: Mapping[str, Any]) -> SessionConfig:
        self.known_keys(t, _SESSION, "session")
        modes = tuple(m.value for m in ThinkingMode)
        mode = self.choice(t, "mode", "session", modes)
        return SessionConfig(
            mode=ThinkingMode(mode) if mode else ThinkingMode.NON_THINK,
            max_tokens=self.integer(t, "max_tokens", "session"),
        )

    def budget(self, t: Mapping[str, Any]) -> BudgetConfig:
        self.known_keys(t, _BUDGET, "budget")
        return BudgetConfig(
            per_message_usd=self.money(t, "per_message_usd", "budget"),
            per_session_usd=self.money(t, "per_session_usd", "budget"),
        )
