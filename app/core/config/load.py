"""Reading ``config.toml``: parse, validate once, resolve what spans sections.

``load_config`` is the one reader. A missing default file means the demo; a
file that was asked for and is missing is an error. ``parse_config`` validates
a parsed document: secrets are refused first (before anything could echo
them), then every key is checked against the schema, then the names that must
exist are checked and the cascade's defaults filled in (the draft is the only
backend or ``flash``, the review backend ``pro``; no escalation without a
review backend or in the demo). Every message starts with the file's name and
names the key and the fix.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from app.core.config.demo import DEMO_BACKEND, demo_backend
from app.core.config.messages import ConfigError, first_error
from app.core.config.model import Config
from app.core.config.paths import config_path, data_dir
from app.core.config.schema import CascadeSection, Document, refuse_secrets
from backends.factory import find_profile
from backends.profiles import Profile, ProfileError, load_profiles
from backends.settings import BackendSettings

Fail = Callable[[str], NoReturn]


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config (``path``, else ``config_path()``).

    A missing default file gives the demo config; a missing file that was
    asked for (``path`` or ``LECTERN_CONFIG``) is an error.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("LECTERN_CONFIG"))
    target = Path(path) if path is not None else config_path(env)
    if not target.exists():
        if explicit:
            source = "LECTERN_CONFIG points to" if path is None else "The config file"
            raise ConfigError(
                f"{source} {target}, which does not exist: create it (see the README's "
                "config section) or point to the right file.",
                target,
            )
        return demo_config(env)
    return parse_config(read_toml(target), path=target, env=env)


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML document, unvalidated (for an editor that changes a few keys)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc}); fix the syntax.", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc}.", path) from exc


def demo_config(env: Mapping[str, str] | None = None, path: Path | None = None) -> Config:
    """The config used when there is no config file: the demo model, no review backend."""
    return parse_config({}, path=path, env=env)


def parse_config(
    raw: Mapping[str, Any], *, path: Path | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed TOML document into a ``Config`` (``path`` names it in messages)."""
    file = path.name if path is not None else "config.toml"

    def fail(message: str) -> NoReturn:
        raise ConfigError(f"{file}: {message}", path)

    refuse_secrets(raw, "", fail)
    try:
        doc = Document.model_validate(raw)
    except ValidationError as exc:
        fail(first_error(exc.errors(), Document))
    try:
        profiles = load_profiles(overrides=doc.profile_overrides())
    except ProfileError as exc:
        fail(str(exc))
    backends: dict[str, BackendSettings] = dict(doc.backends)
    _check_profiles(backends, profiles, fail)
    demo = not backends
    if demo:
        backends = {DEMO_BACKEND: demo_backend()}
    cascade = _resolve_cascade(doc.cascade, backends, demo, fail)
    settings = doc.model_copy(update={"backends": backends, "cascade": cascade})
    return Config(path=path, data_dir=data_dir(env), settings=settings, demo=demo)


def _check_profiles(
    backends: Mapping[str, BackendSettings], profiles: Mapping[str, Profile], fail: Fail
) -> None:
    for name, backend in backends.items():
        try:
            find_profile(name, backend, profiles)
        except ValueError as exc:
            fail(str(exc))


def _resolve_cascade(
    c: CascadeSection, backends: Mapping[str, BackendSettings], demo: bool, fail: Fail
) -> CascadeSection:
    names = ", ".join(backends)

    def named(key: str, value: str | None) -> str | None:
        if value is not None and value not in backends:
            fail(
                f"cascade.{key} = {value!r} names no backend; configured: {names}. "
                f"Add [backends.{value}] or fix cascade.{key}."
            )
        return value

    draft = named("draft", c.draft)
    if draft is None:
        if len(backends) == 1:
            draft = next(iter(backends))
        elif "flash" in backends:
            draft = "flash"
        else:
            fail(
                f"cascade.draft is missing: set draft = the backend that answers (one of {names})."
            )
    review = named("review", c.review)
    if review is None and "review" not in c.model_fields_set and "pro" in backends:
        review = None if draft == "pro" else "pro"
    named("local", c.local)
    for i, rule in enumerate(c.rules):
        if rule.use not in backends:
            fail(f"cascade.rules[{i}].use = {rule.use!r} names no backend; configured: {names}.")
    return c.model_copy(
        update={
            "draft": draft,
            "review": review,
            "escalate_on_failure": c.escalate_on_failure and review is not None and not demo,
            "rules": tuple(sorted(c.rules, key=lambda r: r.over_tokens)),
        }
    )


def example_config() -> str:
    """A complete example config (``resources/config.example.toml``) for docs and tests."""
    from app.core.resources import resource

    return resource("config.example.toml").read_text(encoding="utf-8")
