"""Will this model and corpus fit? A memory plan made before anything is loaded.

``plan_for_model`` adds up what the engine will allocate, per engine:

- **MLX** (a model folder; ``backends.local.mlx_memory``): the weights as stored in
  the ``*.safetensors`` files; the KV state of ``tokens`` tokens from
  ``config.json`` (per architecture, as mlx-vlm's / mlx-lm's caches keep it), twice:
  Lectern keeps the saved corpus state in memory while a copy of it answers; and the
  activations of one prefill chunk at the context's end (attention scores and the
  indexers' scores grow with chunk x context).
- **llama.cpp** (a GGUF, every shard; ``backends.local.llama_memory``): the files'
  sizes, and the KV cache, compute and output buffers that llama.cpp's own
  memory-fit pass reports for this context (``n_ctx``, batch, flash attention, KV
  types, GPU layers): llama.cpp allocates all of them when the context is made;
  plus its vocabulary in host memory.

That is set against what this machine can give a model: its RAM, and on macOS the
GPU wired limit (``sysctl iogpu.wired_limit_mb``; 0 means macOS's default, about 3/4
of RAM). ``MemoryPlan.message`` is the sentence the quote, first-run card and
Settings show ("this corpus needs N GB, this Mac has M") with what to change, and a
load that does not fit is refused with it instead of being killed for memory.

An MLX engine that has read a corpus knows its real KV figure (its saved state's
bytes per token) and passes it as ``kv_bytes_per_token``.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backends.local.mlx_memory import kv_from_config, mlx_footprint

__all__ = [
    "MemoryPlan",
    "available_memory",
    "kv_from_config",
    "plan_for_model",
    "refuse_if_too_big",
    "weight_files",
]

_GIB = 1 << 30
_MAC_DEFAULT_WIRED_SHARE = 0.75
_SHARD_RE = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
# Without llama-cpp-python to ask: a 256K-entry vocabulary's logits for a 512-token
# batch (what llama.cpp reserves for outputs) and an f16 dense KV of this size.
_GGUF_COMPUTE_GUESS = 512 * 262144 * 4


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    weights_bytes: int
    kv_bytes_per_token: int
    kv_fixed_bytes: int  # the part that does not grow with the context (windows, states)
    tokens: int  # the context the KV is for (llama.cpp: its n_ctx, allocated at load)
    kv_copies: int  # MLX: 2, the saved corpus state stays in memory while a copy answers
    compute_bytes: int  # activations (MLX) or compute and output buffers (llama.cpp)
    engine_bytes: int  # the engine's own tables (llama.cpp's vocabulary)
    available_bytes: int
    limit: str  # what sets available_bytes: "RAM" or "the GPU wired limit"
    machine: str  # "this Mac" or "this computer"
    source: str  # where KV and compute come from: config, measured, llama.cpp, estimate

    @property
    def kv_bytes(self) -> int:
        return self.kv_bytes_per_token * self.tokens + self.kv_fixed_bytes

    @property
    def needed_bytes(self) -> int:
        kv = self.kv_copies * self.kv_bytes
        return self.weights_bytes + kv + self.compute_bytes + self.engine_bytes

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.available_bytes

    def to_json(self) -> dict[str, Any]:
        """The ``memory`` object of ``lectern backends --check --json``."""
        out = asdict(self)
        out["kv_bytes"] = self.kv_bytes
        out["needed_bytes"] = self.needed_bytes
        out["fits"] = self.fits
        return out

    def message(self, subject: str | None = None) -> str:
        """What the window and CLI say: the figures, and what to change when it does not
        fit. ``subject`` names what needs the memory (default: the context)."""
        need, have = self.needed_bytes / _GIB, self.available_bytes / _GIB
        subject = subject or f"A {self.tokens:,}-token context"
        head = (
            f"{subject} needs {need:.1f} GB with this model "
            f"({self.weights_bytes / _GIB:.1f} GB of weights), {self.machine} has {have:.1f} GB"
            f" ({self.limit})."
        )
        if self.fits:
            return head
        advice = [
            "choose a smaller quantisation of the model",
            "use fewer documents in the session",
        ]
        if self.limit == "the GPU wired limit":
            advice.insert(
                1,
                "raise the GPU wired limit (sudo sysctl iogpu.wired_limit_mb=<MB>, "
                "leaving ~8 GB for macOS)",
            )
        return f"{head} It does not fit: {'; '.join(advice)}."


def weight_files(path: Path) -> list[Path]:
    """The files that hold a model's weights (MLX folder or GGUF, all shards)."""
    if path.is_dir():
        return sorted(path.glob("*.safetensors"))
    match = _SHARD_RE.match(path.name)
    if match is None:
        return [path] if path.is_file() else []
    count, stem = int(match["count"]), match["stem"]
    shards = [path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    return [s for s in shards if s.is_file()]


def available_memory() -> tuple[int, str, str]:
    """(bytes a model may use, what limits it, what to call the machine)."""
    total = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    if platform.system() != "Darwin":
        return total, "RAM", "this computer"
    wired = 0
    try:
        out = subprocess.run(
            ["sysctl", "-n", "iogpu.wired_limit_mb"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        wired = int(out.stdout.strip() or 0) << 20
    except (OSError, ValueError, subprocess.SubprocessError):
        wired = 0
    limit = wired if wired > 0 else int(total * _MAC_DEFAULT_WIRED_SHARE)
    return min(limit, total), "the GPU wired limit", "this Mac"


def plan_for_model(
    path: Path,
    *,
    tokens: int,
    kv_bytes_per_token: int | None = None,
    available: tuple[int, str, str] | None = None,
    chunk: int = 512,
    llama: Any = None,
) -> MemoryPlan:
    """The plan for ``tokens`` tokens of context with the model at ``path``.

    ``chunk``: the MLX prefill chunk (``prefill_step``). ``llama``: the
    ``llama_memory.ContextSettings`` of a GGUF's context (default: ``tokens`` of
    context, 512-token batches, this build's GPU offload, f16 KV); its ``n_ctx`` is
    the plan's ``tokens``."""
    files = weight_files(path)
    weights = sum(f.stat().st_size for f in files)
    have, limit, machine = available or available_memory()
    env = os.environ.get("LECTERN_MEMORY_AVAILABLE_BYTES")  # tests and what-if quotes
    if env:
        have = int(env)
    common: dict[str, Any] = {"available_bytes": have, "limit": limit, "machine": machine}
    if path.is_dir():
        fp = mlx_footprint(path, tokens=tokens, chunk=chunk)
        measured = kv_bytes_per_token is not None
        return MemoryPlan(
            weights_bytes=fp.weights_bytes,
            kv_bytes_per_token=fp.kv_bytes_per_token
            if kv_bytes_per_token is None
            else kv_bytes_per_token,
            kv_fixed_bytes=0 if measured else fp.kv_fixed_bytes,  # a measured figure has it
            tokens=tokens,
            kv_copies=2,
            compute_bytes=fp.compute_bytes,
            engine_bytes=0,
            source="measured" if measured else "config",
            **common,
        )
    return _gguf_plan(path, files, weights, tokens, llama, common)


def _gguf_plan(  # noqa: PLR0917 (the parts plan_for_model has already worked out)
    path: Path,
    files: list[Path],
    weights: int,
    tokens: int,
    llama: Any,
    common: dict[str, Any],
) -> MemoryPlan:
    from backends.local import llama_memory

    settings = llama if llama is not None else llama_memory.default_settings(tokens)
    n_ctx = max(1, settings.n_ctx)
    found = llama_memory.footprint(files[0], settings) if files else None
    if found is not None:
        per = found.kv_bytes // n_ctx
        return MemoryPlan(
            weights_bytes=weights,
            kv_bytes_per_token=per,
            kv_fixed_bytes=found.kv_bytes - per * n_ctx,
            tokens=n_ctx,
            kv_copies=1,
            compute_bytes=found.compute_bytes,
            engine_bytes=found.vocab_bytes,
            source="llama.cpp",
            **common,
        )
    return MemoryPlan(
        weights_bytes=weights,
        kv_bytes_per_token=max(1024, int(weights / 2.0e6)),  # f16 KV of a dense model this size
        kv_fixed_bytes=0,
        tokens=n_ctx,
        kv_copies=1,
        compute_bytes=_GGUF_COMPUTE_GUESS,
        engine_bytes=0,
        source="estimate",
        **common,
    )


def refuse_if_too_big(path: Path, *, tokens: int = 0, llama: Any = None, chunk: int = 512) -> None:
    """Refuse, before loading, a model that will not fit (never an OOM kill): MLX with
    its weights and one chunk's activations, llama.cpp with the context it allocates."""
    from backends.base import LocalEngineError

    plan = plan_for_model(path, tokens=tokens, llama=llama, chunk=chunk)
    if not plan.fits:
        raise LocalEngineError(plan.message())
