"""The ``[backends.NAME]`` tables of the config, declared once: kinds, flavours, keys.

Every key a backend table accepts is a field here, with its type, default and
description (the README's configuration table says the same in prose). The
user's config (``app.core.config``) composes these models into the whole
document and validates it once, at load; ``backends.factory`` and the backends
consume the validated objects and validate nothing again.

Each field type carries the phrase that tells the user what a valid value is
(``must(...)``): a wrong value fails with that phrase only, never with a
pydantic dump, and ``app.core.config`` turns it into ``backends.flash.read_timeout
= -1 must be a positive number.`` ``missing`` and ``shown_default`` in a field's
extra say what to write when a required key is absent and what the default
means in words.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError, PydanticUndefined

Kind = Literal["openai", "llama_cpp", "mlx"]
KINDS: tuple[Kind, ...] = get_args(Kind)
IN_PROCESS_KINDS: tuple[Kind, ...] = ("llama_cpp", "mlx")
Flavour = Literal["deepseek", "vllm", "generic"]
FLAVOURS: tuple[Flavour, ...] = get_args(Flavour)

SETTING_ERROR = "setting"  # the error type of a value that breaks its field's rule


def must(phrase: str) -> WrapValidator:
    """Fail any invalid value of the field with ``phrase`` (e.g. "must be true or false")."""

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(SETTING_ERROR, phrase) from None

    return WrapValidator(wrap)


def one_of(values: tuple[str, ...]) -> WrapValidator:
    return must(f"is not one of {', '.join(values)}")


def setting(
    default: Any = PydanticUndefined,
    description: str = "",
    *,
    shown_default: str | None = None,
    missing: str | None = None,
    alias_of: str | None = None,
    factory: Any = None,
) -> Any:
    """A field: ``missing`` is the fix when a required key is absent; ``shown_default``
    the default in words; ``alias_of`` names the key this one is another name for;
    ``factory`` makes a fresh mutable default."""
    extra: dict[str, Any] = {}
    for key, value in (("shown_default", shown_default), ("missing", missing)):
        if value is not None:
            extra[key] = value
    if alias_of is not None:
        extra["alias_of"] = alias_of
    if factory is not None:
        return Field(default_factory=factory, description=description, json_schema_extra=extra)
    return Field(default, description=description, json_schema_extra=extra or None)


# --- value types, each with the phrase a wrong value gets ----------------------------

Flag = Annotated[bool, Field(strict=True), must("must be true or false")]
Count = Annotated[int, Field(strict=True, ge=1), must("must be a whole number >= 1")]
Count0 = Annotated[int, Field(strict=True, ge=0), must("must be a whole number >= 0")]
Positive = Annotated[float, Field(strict=True, gt=0), must("must be a positive number")]
Text = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1),
    must("must be a non-empty string"),
]
Url = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, pattern=r"^https?://[^/\s]+"),
    must("must start with http:// or https:// and name a host"),
]
EnvName = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
    must(
        'must be an environment variable name, like "DEEPSEEK_API_KEY" (the key itself '
        "goes in that variable)"
    ),
]
Layers = Annotated[int, Field(strict=True, ge=-1), must("must be a whole number >= -1")]
# llama.cpp KV cache types and their ggml type numbers.
GGML_CACHE_TYPES = {
    "f32": 0,
    "f16": 1,
    "bf16": 30,
    "q8_0": 8,
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 6,
    "q5_1": 7,
}
CACHE_TYPES = tuple(GGML_CACHE_TYPES)
CacheType = Annotated[
    str,
    Field(strict=True, pattern="^(" + "|".join(CACHE_TYPES) + ")$"),
    must("must be one of " + ", ".join(CACHE_TYPES)),
]
Table = Annotated[dict[str, Any], Field(strict=True), must("must be a table of request fields")]


def _expand(value: str | os.PathLike[str]) -> str | os.PathLike[str]:
    # A path object (the demo model, assembled on first use) is kept as it is.
    return str(Path(value).expanduser()) if isinstance(value, str) else value


ModelPath = Annotated[
    Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
    | os.PathLike[str],
    must("must be a non-empty string: the path of the model"),
    AfterValidator(_expand),
]


# --- the tables --------------------------------------------------------------------------


class _Backend(BaseModel):
    """What every backend table may say."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    kind: Kind = setting(
        description="`openai` (DeepSeek API, vLLM, Ollama, LM Studio, llama.cpp server, "
        "mlx_lm.server, gateways), `llama_cpp` or `mlx` (in process)",
        missing=f"set kind = one of {', '.join(KINDS)}",
    )
    profile: Text | None = setting(
        None,
        "prices, tokenizer family and window from `resources/models.toml`",
        shown_default="the `model` id if it is a known profile",
    )
    context: Count | None = setting(
        None, "window override, in tokens", shown_default="the profile's window"
    )

    @property
    def in_process(self) -> bool:
        """True for engines that run inside Lectern (llama.cpp, MLX)."""
        return self.kind in IN_PROCESS_KINDS


class OpenAISettings(_Backend):
    """``kind = "openai"``: any OpenAI-compatible server."""

    kind: Literal["openai"] = "openai"
    timeout: Positive | None = setting(
        None, "another name for read_timeout", alias_of="read_timeout"
    )
    base_url: Url = setting(
        description="the server", missing='e.g. base_url = "https://api.deepseek.com"'
    )
    model: Text = setting(
        description="the server's model id", missing='e.g. model = "deepseek-v4-flash"'
    )
    api_key_env: EnvName | None = setting(
        None,
        "environment variable holding the key",
        shown_default="absent: the keyring entry named after the backend",
    )
    flavour: Annotated[Flavour, one_of(FLAVOURS)] | None = setting(
        None,
        "`deepseek`, `vllm` or `generic`: how thinking mode and cache usage travel",
        shown_default="`deepseek` for *.deepseek.com, else `generic`",
    )
    needs_key: Flag | None = setting(
        None,
        "whether requests need an API key",
        shown_default="true for DeepSeek or a non-loopback host",
    )
    connect_timeout: Positive = setting(10.0, "seconds to connect", shown_default="10 s")
    read_timeout: Positive = setting(
        120.0, "the longest silence allowed, in seconds", shown_default="120 s"
    )
    max_tries: Count | None = setting(
        None, "attempts per call", shown_default="`cascade.max_tries`"
    )
    extra_body: Table = setting(
        description="fields merged into every request body", shown_default="none", factory=dict
    )

    def model_post_init(self, context: Any, /) -> None:
        # ``timeout`` is read_timeout's other name; an explicit read_timeout wins.
        if self.timeout is not None and "read_timeout" not in self.model_fields_set:
            object.__setattr__(self, "read_timeout", self.timeout)


_MODEL_PATH = "a `.gguf` (first shard) or an mlx-lm model folder"


def _kv_budget() -> Any:
    return setting(8.0, "disk budget for saved corpus states (least recently used evicted)")


class LlamaCppSettings(_Backend):
    """``kind = "llama_cpp"``: a GGUF model in process."""

    kind: Literal["llama_cpp"] = "llama_cpp"
    model_path: ModelPath = setting(description=_MODEL_PATH, missing="the path of a .gguf file")
    n_ctx: Count | None = setting(
        None,
        "tokens allocated (set: fixed)",
        shown_default="what the session needs: min(window, 32768), grown by 4096s up to the window",
    )
    n_threads: Count | None = setting(None, "threads", shown_default="llama.cpp's")
    n_gpu_layers: Layers | None = setting(
        None,
        "layers offloaded to the GPU (Metal on a Mac); -1 = all, 0 = CPU only",
        shown_default="all when the build offloads, else 0",
    )
    flash_attn: Flag | None = setting(
        None,
        "flash attention (less KV memory at long context)",
        shown_default="on when layers are offloaded to the GPU",
    )
    cache_type_k: CacheType | None = setting(
        None, f"KV cache type of keys: {', '.join(CACHE_TYPES)}", shown_default="f16"
    )
    cache_type_v: CacheType | None = setting(
        None,
        f"KV cache type of values: {', '.join(CACHE_TYPES)} (quantised V needs flash_attn)",
        shown_default="f16",
    )
    kv_budget_gb: Positive = _kv_budget()


class MlxSettings(_Backend):
    """``kind = "mlx"``: an mlx-lm model folder in process (``n_ctx`` is ``context``'s
    other name here)."""

    kind: Literal["mlx"] = "mlx"
    model_path: ModelPath = setting(
        description=_MODEL_PATH, missing="the path of an mlx-lm model folder"
    )
    n_ctx: Count | None = setting(None, "tokens allocated", alias_of="context")
    kv_budget_gb: Positive = _kv_budget()


BackendSettings = Annotated[
    OpenAISettings | LlamaCppSettings | MlxSettings, Field(discriminator="kind")
]
