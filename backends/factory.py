"""Build backends from the config's ``[backends.NAME]`` tables.

Each table has a ``kind``:

* ``openai``: ``base_url``, ``model``, ``api_key_env`` (absent: the OS keyring
  entry of this backend's name), ``flavour``, ``extra_body``, timeouts;
* ``llama_cpp``: ``model_path`` (a .gguf), ``n_ctx``, ``n_threads``;
* ``mlx``: ``model_path`` (an mlx-lm model folder), ``context``.

Every table may name a ``profile`` (prices, tokenizer family, window; default:
the ``model`` id when a profile has it), a ``context`` override, and, for the
in-process kinds, ``kv_budget_gb`` (disk budget of saved prefix states in
``<data dir>/kv``). Backends are built lazily, only when the router picks
them, so an unused API backend never loads a key and an unused GGUF never
loads a model.

Retries: API backends are built with a single try; the cascade retries
(``backends.retry.RetryPolicy``) so every attempt is recorded as a call.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.base import Backend
from backends.profiles import Profile, profile_from_mapping
from backends.router import IN_PROCESS_KINDS, KINDS, BackendSpec

DEFAULT_KV_BUDGET_GB = 8.0
DEFAULT_LOCAL_CTX = 32768


class ConfigError(ValueError):
    """A backend table is malformed; the message names the key and the fix."""


@dataclass(frozen=True)
class ResolvedBackend:
    spec: BackendSpec
    profile: Profile
    table: Mapping[str, Any]


def resolve(
    name: str, table: Mapping[str, Any], profiles: Mapping[str, Profile]
) -> ResolvedBackend:
    """Validate one ``[backends.NAME]`` table and find its profile."""
    where = f"backends.{name}"
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}.")
    if kind == "openai" and not table.get("base_url"):
        raise ConfigError(f"{where}.base_url is missing (e.g. https://api.deepseek.com).")
    if kind in IN_PROCESS_KINDS and not table.get("model_path"):
        raise ConfigError(f"{where}.model_path is missing: the model file or folder to load.")
    profile = _profile(name, kind, table, profiles)
    context = profile.context
    if kind == "llama_cpp":
        context = int(table.get("n_ctx", min(profile.context, DEFAULT_LOCAL_CTX)))
    if "context" in table:
        context = int(table["context"])
    if context <= 0:
        raise ConfigError(f"{where}: the context must be a positive number of tokens.")
    missing = None
    if kind in IN_PROCESS_KINDS:
        missing = _missing_model(str(kind), table["model_path"])
    spec = BackendSpec(
        name=name,
        kind=str(kind),
        profile=profile.id,
        tier=profile.tier,
        context=context,
        base_url=str(table["base_url"]) if kind == "openai" else None,
        unavailable=missing,
    )
    return ResolvedBackend(spec, profile, table)


def _missing_model(kind: str, value: Any) -> str | None:
    """Why the model of an in-process backend cannot load here, or None.

    Only plain paths are checked: a path object that resolves itself on first
    use (the demo model, assembled from its package) is left alone, so routing
    never pays for it."""
    if not isinstance(value, str | Path):
        return None
    path = Path(value).expanduser()
    if path.exists():
        return None
    what = "model file" if kind == "llama_cpp" else "model folder"
    return f"its {what} {path} does not exist"


def _profile(
    name: str, kind: str, table: Mapping[str, Any], profiles: Mapping[str, Profile]
) -> Profile:
    pid = table.get("profile")
    if pid is not None:
        if pid not in profiles:
            raise ConfigError(
                f"backends.{name}.profile = {pid!r} is not a known profile "
                f'({", ".join(sorted(profiles))}); add [profiles."{pid}"] to the config.'
            )
        return profiles[str(pid)]
    model = table.get("model")
    if isinstance(model, str) and model in profiles:
        return profiles[model]
    # An unknown model: its own profile with an unknown price (never $0 on an API).
    if kind in IN_PROCESS_KINDS:
        raw = {"family": "gguf" if kind == "llama_cpp" else "generic", "tier": "local"}
    else:
        raw = {"family": "generic", "tier": "flash"}
    pid = str(model or name)
    return profile_from_mapping(pid, raw)


def install_user_id(data_dir: Path) -> str:
    """A constant id per install, sent as DeepSeek's ``user_id`` (one cache owner)."""
    path = data_dir / "install_id"
    try:
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value
    except OSError:
        pass
    value = f"lectern-{uuid.uuid4().hex}"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="ascii")
    return value


class BackendPool:
    """The configured backends, built on first use and closed together."""

    def __init__(
        self,
        tables: Mapping[str, Mapping[str, Any]],
        profiles: Mapping[str, Profile],
        *,
        data_dir: Path,
    ) -> None:
        self.resolved = {name: resolve(name, t, profiles) for name, t in tables.items()}
        self.data_dir = data_dir
        self._built: dict[str, Backend] = {}
        self._lock = threading.Lock()

    @property
    def specs(self) -> list[BackendSpec]:
        return [r.spec for r in self.resolved.values()]

    def profile(self, name: str) -> Profile:
        return self.resolved[name].profile

    def get(self, name: str, *, renderer_version: str = "") -> Backend:
        with self._lock:
            backend = self._built.get(name)
            if backend is None:
                backend = self._build(self.resolved[name], renderer_version)
                self._built[name] = backend
            return backend

    def built(self, name: str) -> Backend | None:
        with self._lock:
            return self._built.get(name)

    def close(self) -> None:
        with self._lock:
            backends, self._built = list(self._built.values()), {}
        for backend in backends:
            backend.close()

    def _build(self, r: ResolvedBackend, renderer_version: str) -> Backend:
        t = r.table
        if r.spec.kind == "openai":
            from backends.remote.openai_compat import OpenAIBackend, OpenAIConfig
            from backends.retry import RetryPolicy

            try:
                config = OpenAIConfig.from_mapping(
                    r.spec.name, t, user_id=install_user_id(self.data_dir)
                )
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            return OpenAIBackend(config, retry=RetryPolicy(max_tries=1))
        budget = int(float(t.get("kv_budget_gb", DEFAULT_KV_BUDGET_GB)) * (1 << 30))
        from backends.local.kv_store import KVStore

        store = KVStore(self.data_dir / "kv", budget)
        path = Path(str(t["model_path"])).expanduser()
        if r.spec.kind == "llama_cpp":
            from backends.local.llama_cpp import LlamaCppBackend

            return LlamaCppBackend(
                path,
                n_ctx=r.spec.context,
                n_threads=t.get("n_threads"),
                store=store,
                renderer_version=renderer_version or "lectern",
            )
        from backends.local.mlx_local import MlxBackend

        return MlxBackend(
            path,
            store=store,
            context_window=int(t["context"]) if "context" in t else None,
            renderer_version=renderer_version or "lectern",
        )


class EngineTokenizerAdapter:
    """The ``app.core.prompt.EngineTokenizer`` of a loaded in-process backend."""

    def __init__(self, backend: Any, architecture: str | None = None) -> None:
        self._backend = backend
        self._architecture = architecture

    def tokenize(self, text: str, special: bool) -> list[int]:
        return list(self._backend.tokenize(text, special))

    def chat_template(self) -> str | None:
        template = self._backend.chat_template()
        return str(template) if template else None

    @property
    def bos_token(self) -> str:
        return self._spell(self._backend.bos_token_id)

    @property
    def eos_token(self) -> str:
        return self._spell(self._backend.eos_token_id)

    @property
    def architecture(self) -> str | None:
        if self._architecture is None:
            self._architecture = getattr(self._backend, "architecture", None) or ""
        return self._architecture or None

    def _spell(self, token: int | None) -> str:
        if token is None or token < 0:
            return ""
        return str(self._backend.detokenize([token], special=True))
