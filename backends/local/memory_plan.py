"""Will this model and corpus fit? A memory plan made before anything is loaded.

``plan_for_model`` adds up the weights (the checkpoint's files: ``*.safetensors``
of an MLX folder, every shard of a GGUF), the KV cache (bytes per token from
``config.json``, times the tokens the session needs, plus the fixed
sliding-window part) and a runtime allowance, and sets that against what this
machine can give a model: its RAM, and on macOS the GPU wired limit
(``sysctl iogpu.wired_limit_mb``; 0 means macOS's default, about 3/4 of RAM).
``MemoryPlan.message`` is the sentence the quote, first-run card and Settings
show ("this corpus needs N GB, this Mac has M") with what to change, and a
load that does not fit is refused with it instead of being killed for memory.

KV figures from a config are estimates; an engine that has read a corpus knows
the real figure (its saved state's bytes per token) and passes it as
``kv_bytes_per_token``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import struct
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_GIB = 1 << 30
_RUNTIME_BYTES = 256 << 20  # engine buffers and activations when the chunk is not known
_ENGINE_BYTES = 64 << 20  # engine buffers besides a chunk's activations
_RUNTIME_SHARE = 0.02  # plus this share of the weights (dequantisation scratch, graphs)
_MAC_DEFAULT_WIRED_SHARE = 0.75
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U32": 4}
_SHARD_RE = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    weights_bytes: int
    kv_bytes_per_token: int
    kv_fixed_bytes: int  # the sliding-window part, the same at any length
    tokens: int
    runtime_bytes: int
    available_bytes: int
    limit: str  # what sets available_bytes: "RAM" or "the GPU wired limit"
    machine: str  # "this Mac" or "this computer"

    @property
    def needed_bytes(self) -> int:
        kv = self.kv_bytes_per_token * self.tokens + self.kv_fixed_bytes
        return self.weights_bytes + kv + self.runtime_bytes

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.available_bytes

    def to_json(self) -> dict[str, Any]:
        """The ``memory`` object of ``lectern backends --check --json``."""
        out = asdict(self)
        out["needed_bytes"] = self.needed_bytes
        out["fits"] = self.fits
        return out

    def message(self) -> str:
        """What the window and CLI say: the figures, and what to change when it does not fit."""
        need, have = self.needed_bytes / _GIB, self.available_bytes / _GIB
        head = (
            f"This corpus ({self.tokens:,} tokens) needs {need:.1f} GB with this model "
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


def _safetensors_dtype_bytes(files: list[Path]) -> int:
    """Bytes per element of the model's floating weights (its activation/KV dtype)."""
    for f in files:
        try:
            with f.open("rb") as handle:
                (size,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(min(size, 64 << 20)))
        except (OSError, ValueError, struct.error):
            continue
        for name, info in header.items():
            if name != "__metadata__" and info.get("dtype") in ("F32", "F16", "BF16"):
                return _DTYPE_BYTES[str(info["dtype"])]
    return 2


def kv_from_config(config: dict[str, Any], elem: int) -> tuple[int, int]:
    """(bytes per token, fixed bytes) of the KV cache an MLX config describes."""
    kind = str(config.get("model_type") or "")
    layers = int(config.get("num_hidden_layers") or 0)
    head_dim = int(config.get("head_dim") or 0)
    window = int(config.get("sliding_window") or 0)
    if kind in ("deepseek_v4", "deepseek_v41"):
        index_dim = int(config.get("index_head_dim") or 0)
        ratios = [int(r) for r in (config.get("compress_ratios") or [])][:layers]
        fixed = layers * window * head_dim * elem
        if kind == "deepseek_v4":
            per = sum(head_dim / r + (index_dim / r if r == 4 else 0) for r in ratios if r)
            return max(1, round(per * elem)), fixed
        # V4.1: the compressed KV and the indexer keys live on the KV source layers,
        # each compressed by its layer's ratio; the Engram history is one int64 a token.
        # (Checked on a tiny checkpoint: the per-chunk candidate hand-off comes on top,
        # which the engine's measured figure includes after the first prefill.)
        sources = [int(i) for i in config.get("kv_source_layer_ids") or []]
        per = sum(
            (head_dim + index_dim) / ratios[i] for i in sources if i < len(ratios) and ratios[i]
        )
        engram = 8 if config.get("engram_layer_ids") else 0
        return max(1, round(per * elem) + engram), fixed
    kv_heads = int(config.get("num_key_value_heads") or config.get("num_attention_heads") or 1)
    if not head_dim:
        heads = int(config.get("num_attention_heads") or 1)
        head_dim = int(config.get("hidden_size") or 0) // heads
    return max(1, 2 * layers * kv_heads * head_dim * elem), 0


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
    chunk: int | None = None,
) -> MemoryPlan:
    """The plan for ``tokens`` tokens of context with the model at ``path``.

    ``chunk``: the MLX prefill chunk, for the activations of one chunk (the logits
    of a chunk are never computed: the engine evaluates only the caches)."""
    files = weight_files(path)
    weights = sum(f.stat().st_size for f in files)
    runtime = _RUNTIME_BYTES
    per, fixed = 0, 0
    if path.is_dir() and (path / "config.json").is_file():
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        per, fixed = kv_from_config(config, _safetensors_dtype_bytes(files))
        hidden = int(config.get("hidden_size") or 0) * max(1, int(config.get("hc_mult") or 1))
        if chunk and hidden:
            # a chunk's hidden states and their intermediates (float32, ~16 live copies)
            runtime = _ENGINE_BYTES + chunk * hidden * 4 * 16
    elif files:
        per = _gguf_kv_estimate(weights)
    if kv_bytes_per_token is not None:
        per = kv_bytes_per_token
    have, limit, machine = available or available_memory()
    env = os.environ.get("LECTERN_MEMORY_AVAILABLE_BYTES")  # tests and what-if quotes
    if env:
        have = int(env)
    return MemoryPlan(
        weights_bytes=weights,
        kv_bytes_per_token=per,
        kv_fixed_bytes=fixed,
        tokens=tokens,
        runtime_bytes=runtime + int(weights * _RUNTIME_SHARE),
        available_bytes=have,
        limit=limit,
        machine=machine,
    )


def refuse_if_too_big(path: Path) -> None:
    """Refuse, before loading, a model whose weights alone do not fit (never an OOM kill)."""
    from backends.base import LocalEngineError

    plan = plan_for_model(path, tokens=0)
    if not plan.fits:
        raise LocalEngineError(plan.message())


def _gguf_kv_estimate(weights: int) -> int:
    """A GGUF's KV bytes per token before it is loaded: a conservative rule of thumb
    (f16 KV of a dense model of this size); the loaded engine corrects it."""
    return max(1024, int(weights / 2.0e6))
