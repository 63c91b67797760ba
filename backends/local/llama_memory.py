"""What a GGUF takes in memory in llama.cpp, as llama.cpp itself computes it.

llama.cpp allocates everything a context needs when the context is made: the KV
cache (and DeepSeek V4's compressed caches and compressor states) for all of
``n_ctx``, an output buffer, and a compute buffer sized for the worst graph of an
``n_ubatch``-token batch (all of its logits included, and, without flash attention,
each layer's ``heads x n_ubatch x keys`` scores). Its memory-fit pass (model
``no_alloc``, no mmap) loads only the metadata and simulates those allocations,
logging the same sizes as a real load; ``footprint`` runs it (about 0.3-0.8 s, no
weights read) and parses the log, so the plan is llama.cpp's own figure for this
file, this build and these settings. Weights are the files' sizes (mmapped, and
wired whole on a Mac's GPU). Not in the pass: the CPU backend's work buffer,
allocated while a batch is computed (scratch for converting operands; about 13 MB
for the tiny test model at 9K tokens, growing with the context), which only layers
run on the CPU need.

``capture`` collects llama.cpp's log lines of the calling thread while a block runs
(a real load too: ``LlamaEngine`` records what was allocated); lines of other
threads, and of this one outside the block, go on to llama-cpp-python's logger.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_MIB = 1 << 20
_LOG_ERROR = 3  # GGML_LOG_LEVEL_ERROR
_KV = re.compile(r"llama_(?:kv_cache|memory_recurrent): size =\s*([\d.]+) MiB \(")
_STATE = re.compile(r" ratio = \d+, state = .* size =\s*([\d.]+) MiB")
_COMPUTE = re.compile(r"compute buffer size =\s*([\d.]+) MiB")
_OUTPUT = re.compile(r"output buffer size =\s*([\d.]+) MiB")
_BUFFER = re.compile(r" buffer size =\s*([\d.]+) MiB")
_TOKENS = re.compile(r"tokenizer\.ggml\.tokens\s+arr\[str,(\d+)\]")
_MERGES = re.compile(r"tokenizer\.ggml\.merges\s+arr\[str,(\d+)\]")
_TOKEN_BYTES, _MERGE_BYTES = 160, 150
# Lectern reads the logits of one token per batch (a prefill chunk's last, or the one
# being sampled); llama.cpp otherwise reserves a whole batch of logits in the compute
# buffer (n_batch x n_vocab x 4 bytes: 253 MiB for V4's vocabulary at 512).
OUTPUTS_PER_BATCH = 1

_lock = threading.Lock()  # one memory-fit pass at a time
_local = threading.local()
_installed: list[Any] = []  # keeps the ctypes callback alive
_cache: dict[tuple[Any, ...], LlamaFootprint | None] = {}


@dataclass(frozen=True, slots=True)
class ContextSettings:
    """The settings of a llama.cpp context that decide its memory."""

    n_ctx: int
    n_batch: int
    n_gpu_layers: int
    flash_attn: bool
    type_k: int | None = None
    type_v: int | None = None
    swa_full: bool = False
    n_outputs_max: int = OUTPUTS_PER_BATCH


@dataclass(frozen=True, slots=True)
class LlamaFootprint:
    kv_bytes: int  # KV cache, compressed caches and compressor / recurrent states
    compute_bytes: int  # compute buffers (every backend) and the output buffer
    buffers: tuple[int, ...] = ()  # each buffer llama.cpp logged (a real load's are real)
    vocab_bytes: int = 0  # the vocabulary in host memory (see ``vocab_bytes``)

    @classmethod
    def from_log(cls, text: str) -> LlamaFootprint | None:
        """The figures of one context's creation log (None: it logged no compute buffer)."""

        def total(pattern: re.Pattern[str]) -> int:
            return int(sum(float(m) for m in pattern.findall(text)) * _MIB)

        if not _COMPUTE.search(text):
            return None
        return cls(
            kv_bytes=total(_KV) + total(_STATE),
            compute_bytes=total(_COMPUTE) + total(_OUTPUT),
            buffers=tuple(int(float(m) * _MIB) for m in _BUFFER.findall(text)),
            vocab_bytes=vocab_bytes(text),
        )


def vocab_bytes(text: str) -> int:
    """llama.cpp's vocabulary in host memory, from a load log's token and merge counts
    (each token's text, attributes, lookup entry and piece cache; each BPE merge's
    rank entry): about 160 and 150 bytes, measured by loading ``vocab_only`` a
    262,144-token SPM vocabulary (gemma 3, 42.9 MB) and DeepSeek V4's 129,280 tokens
    with 127,741 merges (40.3 MB)."""
    tokens = _TOKENS.search(text)
    merges = _MERGES.search(text)
    return (int(tokens[1]) if tokens else 0) * _TOKEN_BYTES + (
        int(merges[1]) if merges else 0
    ) * _MERGE_BYTES


def _install() -> None:
    """Route llama.cpp's log through ``_forward`` (once per process)."""
    if _installed:
        return
    import llama_cpp
    from llama_cpp import _logger

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines = getattr(_local, "lines", None)
        if lines is None:
            _logger.llama_log_callback(level, text, user_data)
            return
        lines.append(text.decode("utf-8", "replace"))
        if level == _LOG_ERROR:  # the rest of a captured log is data, not news
            log.info("llama.cpp: %s", lines[-1].rstrip())

    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
    _installed.append(forward)


@contextlib.contextmanager
def capture() -> Iterator[list[str]]:
    """The llama.cpp log lines this thread produces inside the block."""
    _install()
    previous = getattr(_local, "lines", None)
    lines: list[str] = []
    _local.lines = lines
    try:
        yield lines
    finally:
        _local.lines = previous


def _key(path: Path, settings: ContextSettings) -> tuple[Any, ...]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, settings)


def footprint(path: Path, settings: ContextSettings) -> LlamaFootprint | None:
    """llama.cpp's own KV and compute figures for ``path`` under ``settings``, from its
    memory-fit pass (cached per file and settings); None when llama-cpp-python is not
    installed or the pass fails (the caller then estimates)."""
    try:
        key = _key(path, settings)
    except OSError:
        return None
    if key in _cache:
        return _cache[key]
    try:
        import llama_cpp
    except ImportError:
        return None
    with _lock:
        if key in _cache:
            return _cache[key]
        found = _dry_run(llama_cpp, path, settings)
        _cache[key] = found
        return found


def _dry_run(llama_cpp: Any, path: Path, settings: ContextSettings) -> LlamaFootprint | None:
    model = ctx = None
    with capture() as lines:
        try:
            mp = llama_cpp.llama_model_default_params()
            mp.no_alloc = True  # metadata only: allocations are simulated
            mp.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE  # the fit pass maps nothing
            mp.n_gpu_layers = settings.n_gpu_layers
            model = llama_cpp.llama_model_load_from_file(str(path).encode(), mp)
            if not model:
                return None
            cp = llama_cpp.llama_context_default_params()
            cp.n_ctx = settings.n_ctx
            cp.n_batch = min(settings.n_ctx, settings.n_batch)
            cp.n_ubatch = cp.n_batch
            cp.swa_full = settings.swa_full
            cp.n_outputs_max = settings.n_outputs_max
            cp.flash_attn_type = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
                if settings.flash_attn
                else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
            if settings.type_k is not None:
                cp.type_k = settings.type_k
            if settings.type_v is not None:
                cp.type_v = settings.type_v
            ctx = llama_cpp.llama_init_from_model(model, cp)
            if not ctx:
                return None
        except Exception as exc:  # a failed pass only costs the estimate
            log.warning("llama.cpp's memory-fit pass failed for %s (%s)", path, exc)
            return None
        finally:
            if ctx:
                llama_cpp.llama_free(ctx)
            if model:
                llama_cpp.llama_model_free(model)
    return LlamaFootprint.from_log("".join(lines))


def offload_layers(requested: int | None) -> int:
    """Layers to offload: as asked, else every layer when this build offloads (Metal,
    CUDA...), else 0 (also when llama-cpp-python is not installed). -1 means all."""
    if requested is not None:
        return requested
    try:
        import llama_cpp
    except ImportError:
        return 0
    return -1 if llama_cpp.llama_supports_gpu_offload() else 0


def default_settings(
    n_ctx: int,
    *,
    n_batch: int = 512,
    n_gpu_layers: int | None = None,
    flash_attn: bool | None = None,
    type_k: int | None = None,
    type_v: int | None = None,
    swa_full: bool = False,
) -> ContextSettings:
    """The context ``LlamaEngine`` makes for these settings (flash attention follows GPU
    offload unless set)."""
    layers = offload_layers(n_gpu_layers)
    return ContextSettings(
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_gpu_layers=layers,
        flash_attn=layers != 0 if flash_attn is None else flash_attn,
        type_k=type_k,
        type_v=type_v,
        swa_full=swa_full,
    )
