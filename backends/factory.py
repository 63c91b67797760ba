"""Build backends from the validated ``[backends.NAME]`` settings.

The settings are ``backends.settings`` objects, validated once when the config
was loaded (``app.core.config``): this module trusts them. Each has a kind:

* ``openai``: ``base_url``, ``model``, ``api_key_env`` (absent: the OS keyring
  entry of this backend's name), ``flavour``, ``extra_body``, timeouts;
* ``llama_cpp``: ``model_path`` (a .gguf), ``n_ctx`` (unset: the allocation follows the
  session up to the window), ``n_threads``, GPU offload, flash attention, KV types;
* ``mlx``: ``model_path`` (an mlx-lm model folder), ``context``.

Every backend may name a ``profile`` (prices, tokenizer family, window; default:
the ``model`` id when a profile has it), a ``context`` override, and, for the
in-process kinds, ``kv_budget_gb`` (disk budget of saved prefix states in
``<data dir>/kv``). Backends are built lazily, only when the router picks
them, so an unused API backend never loads a key and an unused GGUF never
loads a model.

Retries: none here. The cascade's ``Call`` retries (``backends.retry.RetryPolicy``)
so every attempt is recorded as a call.
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
from backends.router import BackendSpec
from backends.settings import (
    GGML_CACHE_TYPES,
    BackendSettings,
    LlamaCppSettings,
    MlxSettings,
    OpenAISettings,
)

DEFAULT_LOCAL_CTX = 32768


@dataclass(frozen=True)
class ResolvedBackend:
    spec: BackendSpec
    profile: Profile
    settings: BackendSettings

    @property
    def table(self) -> Mapping[str, Any]:
        """The keys that are set, as a plain mapping (read ``settings`` in new code)."""
        return {key: value for key, value in self.settings if value is not None}


def resolve(
    name: str, settings: BackendSettings, profiles: Mapping[str, Profile]
) -> ResolvedBackend:
    """The router's view of one backend, with its profile and window."""
    profile = find_profile(name, settings, profiles)
    context = profile.context
    missing = None
    if isinstance(settings, LlamaCppSettings):
        # the window is the model's; the allocation follows the session (grow_to)
        context = settings.n_ctx or profile.context
    elif isinstance(settings, MlxSettings):
        context = settings.n_ctx or profile.context
    if settings.context is not None:
        context = settings.context
    if not isinstance(settings, OpenAISettings):
        missing = _missing_model(settings.kind, settings.model_path)
    spec = BackendSpec(
        name=name,
        kind=settings.kind,
        profile=profile.id,
        tier=profile.tier,
        context=context,
        base_url=settings.base_url if isinstance(settings, OpenAISettings) else None,
        unavailable=missing,
    )
    return ResolvedBackend(spec, profile, settings)


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


def find_profile(name: str, settings: BackendSettings, profiles: Mapping[str, Profile]) -> Profile:
    """The backend's profile: the one it names (``ValueError`` if unknown), else its
    ``model`` id's, else a profile of its own with an unknown price (never $0 on an API)."""
    pid = settings.profile
    if pid is not None:
        if pid not in profiles:
            raise ValueError(
                f"backends.{name}.profile = {pid!r} is not a known profile "
                f'({", ".join(sorted(profiles))}); add [profiles."{pid}"] to define it.'
            )
        return profiles[pid]
    model = settings.model if isinstance(settings, OpenAISettings) else None
    if model is not None and model in profiles:
        return profiles[model]
    if settings.in_process:
        raw = {"family": "gguf" if settings.kind == "llama_cpp" else "generic", "tier": "local"}
    else:
        raw = {"family": "generic", "tier": "flash"}
    return profile_from_mapping(str(model or name), raw)


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
        backends: Mapping[str, BackendSettings],
        profiles: Mapping[str, Profile],
        *,
        data_dir: Path,
    ) -> None:
        self.resolved = {name: resolve(name, b, profiles) for name, b in backends.items()}
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
        settings = r.settings
        if isinstance(settings, OpenAISettings):
            from backends.remote.openai_compat import OpenAIBackend

            return OpenAIBackend(r.spec.name, settings, user_id=install_user_id(self.data_dir))
        from backends.local.kv_store import KVStore

        store = KVStore(self.data_dir / "kv", int(settings.kv_budget_gb * (1 << 30)))
        path = Path(str(settings.model_path)).expanduser()
        if isinstance(settings, LlamaCppSettings):
            from backends.local.llama_cpp import LlamaCppBackend

            return LlamaCppBackend(
                path,
                n_ctx=settings.n_ctx or min(r.spec.context, DEFAULT_LOCAL_CTX),
                grow_to=None if settings.n_ctx else r.spec.context,
                n_threads=settings.n_threads,
                n_gpu_layers=settings.n_gpu_layers,
                flash_attn=settings.flash_attn,
                type_k=None
                if settings.cache_type_k is None
                else GGML_CACHE_TYPES[settings.cache_type_k],
                type_v=None
                if settings.cache_type_v is None
                else GGML_CACHE_TYPES[settings.cache_type_v],
                store=store,
                renderer_version=renderer_version or "lectern",
            )
        from backends.local.mlx_local import MlxBackend

        return MlxBackend(
            path,
            store=store,
            context_window=settings.context or settings.n_ctx,
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
