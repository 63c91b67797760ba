"""Benchmark: the local engines on tiny real architectures, through Lectern vs the engine.

Per engine and architecture (MLX through mlx-vlm: random-weight ``deepseek_v4``
and ``deepseek_v41`` with Engram, built by ``tests.fixtures.tiny_v4``;
llama.cpp in process: a random-weight ``deepseek4`` GGUF written by
``tests.fixtures.tiny_deepseek4_gguf``), each in its own process:

  prefill_overhead_ratio  Lectern's prefill time over the engine's own API on the
                          same ids and chunk size (model(chunk, cache) + eval for
                          mlx-vlm, ``Llama.eval`` for llama.cpp); target <= 1.1.
                          Both are wall-clock times of the whole call (for Lectern,
                          ``prepare_prefix`` without a store: its engine thread,
                          chunked read, checks and in-memory corpus state, no file),
                          in ``--rounds`` back-to-back pairs whose order alternates;
                          the figure is the median of the pairs' ratios, so a
                          shared machine's drift (30% here within a minute) falls
                          on both sides of each pair;
  restore_speedup         time to first token cold (corpus evaluated and saved)
                          over restored (a new backend on the same store); >= 10;
  memory_plan_error       |plan.needed_bytes - measured| / measured, the plan made
                          before loading (``plan_for_model``) for the corpus and
                          question; target <= 0.2. measured = MLX's allocator peak
                          (``mx.get_peak_memory``: weights, caches, activations) over
                          the cold and restored questions; for llama.cpp the
                          process's peak RSS over the same two questions minus its
                          RSS after a first load and close, with the model file's
                          mapping locked resident once loaded (``mlock``), as a
                          Mac's GPU wires it: without that Linux counts only the
                          pages of the weights touched so far (of the embeddings,
                          the rows of the tokens seen), which the plan, counting
                          the files, never claimed. Everything else counts as
                          touched, including memory the engine freed that the
                          allocator keeps (glibc's default thresholds, as users
                          run it).

The baseline (the engine's own API) is measured in the same run. Prints one
JSON object.

    PYTHONPATH=$PWD .venv/bin/python tests/bench/local_engines.py [--rounds 7] [--tokens 8000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGETS = {"prefill_overhead_ratio": 1.1, "restore_speedup": 10.0, "memory_plan_error": 0.2}
CASES = ("mlx-vlm:deepseek_v4", "mlx-vlm:deepseek_v41", "llama.cpp:deepseek4")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _lock_weights(model: Path) -> bool:
    """Make the mapping of the model file resident (``mlock``), as a Mac's GPU wires
    it; False if this process may not lock memory."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    ok = True
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5 and fields[5] == str(model):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ok = libc.mlock(lo, hi - lo) == 0 and ok
    return ok


def _peak_bytes() -> int:
    """Peak RSS since the last ``_reset_peak`` (Linux: VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    """Start the peak RSS again from the current RSS (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _corpus_text(tokens: int) -> str:
    from tests.fixtures.llama_corpus import corpus_text

    return corpus_text(max(1, tokens // 65))


def _ttft(backend: Any, ids: list[int], prefix: int) -> tuple[float, Any]:
    from backends.base import ReasoningDelta, Request, TextDelta

    request = Request(
        messages=(),
        model="bench",
        prompt_ids=tuple(ids),
        prefix_tokens=prefix,
        max_tokens=4,
        temperature=0.0,
    )
    began = time.perf_counter()
    first = None
    for event in backend.stream(request):
        if first is None and isinstance(event, TextDelta | ReasoningDelta):
            first = time.perf_counter() - began
    assert first is not None, "no token was streamed"
    return first, backend.last_stats


def _mlx_child(arch: str, tokens: int, work: Path, rounds: int) -> dict[str, Any]:
    import mlx.core as mx
    import mlx_vlm  # noqa: F401  (imported before the baseline RSS)

    from backends.local.kv_store import KVStore
    from backends.local.memory_plan import plan_for_model
    from backends.local.mlx_local import MlxBackend
    from tests.fixtures.tiny_v4 import build_tiny_v4

    model = build_tiny_v4(work / arch, arch=arch)
    with MlxBackend(model.path) as warm:  # imports and one-time setup are not the model's
        warm.load()
    mx.clear_cache()
    mx.reset_peak_memory()  # MLX's allocator peak: weights, caches and activations
    step = 256
    ids, prefix = model.prompt(_corpus_text(tokens), "Which clause applies?", thinking=False)
    with MlxBackend(model.path, store=KVStore(work / "kv-cold", 1 << 32)) as backend:
        backend.load()
        cold, stats = _ttft(backend, ids, prefix)
        assert stats.source == "cold"
    with MlxBackend(model.path, store=KVStore(work / "kv-cold", 1 << 32)) as backend:
        backend.load()
        restored, stats = _ttft(backend, ids, prefix)
        assert stats.source == "restored", stats.source
    measured = int(mx.get_peak_memory())
    # the engine's own API on the same ids and chunks against Lectern's whole
    # prepare_prefix without a store (its chunked read and the corpus state it keeps in
    # memory, but no file written), alternated
    from mlx_vlm.utils import load

    loaded: Any = load(str(model.path))
    engine = loaded[0]
    corpus = ids[:prefix]

    def engine_run() -> float:
        cache = engine.make_cache()
        began = time.perf_counter()
        for start in range(0, len(corpus), step):
            engine(mx.array(corpus[start : start + step])[None], cache=cache)
            mx.eval([a for c in cache for a in _leaves(c.state)])
        return time.perf_counter() - began

    def lectern_run() -> float:  # a new backend: its in-memory corpus state would answer
        with MlxBackend(model.path, prefill_step=step) as lectern:
            lectern.load()
            began = time.perf_counter()
            report = lectern.prepare_prefix(ids, prefix)
            seconds = time.perf_counter() - began
            assert report.source == "evaluated" and report.evaluated == prefix, report
            return seconds

    prefill = _paired(engine_run, lectern_run, rounds)
    # the plan before loading: weights, twice the corpus state (the saved one stays in
    # memory while a copy answers) and one chunk's activations (Lectern's default, 512)
    plan = plan_for_model(model.path, tokens=len(ids) + 4, chunk=512)
    return {
        "prefill_tokens": prefix,
        **_prefill_figures(prefix, prefill),
        "ttft_cold_s": round(cold, 4),
        "ttft_restored_s": round(restored, 4),
        "restore_speedup": round(cold / restored, 1),
        "memory_plan_bytes": plan.needed_bytes,
        "memory_plan_source": plan.source,
        "measured_bytes": measured,
        "memory_plan_error": round(abs(plan.needed_bytes - measured) / measured, 3),
    }


def _paired(
    engine_run: Callable[[], float], lectern_run: Callable[[], float], rounds: int
) -> list[tuple[float, float]]:
    """(engine, Lectern) prefill seconds of ``rounds`` adjacent pairs, after one untimed
    run of each; the order alternates, so drift in the machine's load falls on both."""
    engine_run(), lectern_run()
    pairs = []
    for i in range(rounds):
        if i % 2:
            lectern_s = lectern_run()
            engine_s = engine_run()
        else:
            engine_s = engine_run()
            lectern_s = lectern_run()
        pairs.append((engine_s, lectern_s))
    return pairs


def _prefill_figures(tokens: int, pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """The median of the pairs' ratios (each pair ran back to back), and each side's median."""
    ratios = [lectern / engine for engine, lectern in pairs]
    engine_s = statistics.median(e for e, _ in pairs)
    lectern_s = statistics.median(x for _, x in pairs)
    return {
        "lectern_prefill_tps": round(tokens / lectern_s, 1),
        "engine_prefill_tps": round(tokens / engine_s, 1),
        "prefill_overhead_ratio": round(statistics.median(ratios), 3),
        "prefill_ratios": [round(r, 3) for r in ratios],
    }


def _leaves(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [a for v in value for a in _leaves(v)]
    return [value]


def _baseline(llama_cpp: Any, path: Path, n_ctx: int, n_batch: int) -> Any:
    """llama-cpp-python's own ``Llama`` with the context ``LlamaCppBackend`` makes."""
    return llama_cpp.Llama(
        str(path),
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_ubatch=n_batch,
        n_gpu_layers=0,
        flash_attn=False,
        swa_full=False,  # as LlamaCppBackend makes it (the library's default is a full cache)
        verbose=False,
    )


def _llama_child(tokens: int, work: Path, rounds: int) -> dict[str, Any]:
    import llama_cpp

    from app.core.tokens import deepseek_v4
    from backends.local.kv_store import KVStore
    from backends.local.llama_cpp import LlamaCppBackend
    from backends.local.llama_engine import context_settings, outputs_per_batch
    from backends.local.memory_plan import plan_for_model
    from tests.fixtures.tiny_deepseek4_gguf import build_tiny_deepseek4_gguf

    path = build_tiny_deepseek4_gguf(work / "tiny-deepseek4.gguf")
    tc = deepseek_v4()
    corpus = [tc.special_id("<｜begin▁of▁sentence｜>"), *tc.encode(_corpus_text(tokens))]
    question = [
        tc.special_id("<｜User｜>"),
        *tc.encode("Which clause applies?"),
        tc.special_id("<｜Assistant｜>"),
        tc.special_id("</think>"),
    ]
    ids = corpus + question
    n_ctx, n_batch = -(-(len(ids) + 64) // 1024) * 1024, 512

    def backend(store: str | None) -> LlamaCppBackend:
        kv = KVStore(work / store, 1 << 32) if store else None
        return LlamaCppBackend(path, n_ctx=n_ctx, n_batch=n_batch, store=kv)

    with backend("warm") as warm:  # one-time setup (imports, BLAS and sqlite buffers,
        warm.load()  # the allocator's arenas) is not the model's: a short question first
        _ttft(warm, [*corpus[:600], *question], 600)
    base_rss = _rss_bytes()
    _reset_peak()
    locked = True
    with backend("b") as b:
        b.load()
        locked = _lock_weights(path) and locked
        cold, stats = _ttft(b, ids, len(corpus))
        assert stats.source == "cold"
    with backend("b") as b:
        b.load()
        locked = _lock_weights(path) and locked
        restored, stats = _ttft(b, ids, len(corpus))
        assert stats.source == "restored", stats.source
    measured = _peak_bytes() - base_rss
    # the engine's own API on the same ids and context settings against Lectern's whole
    # prepare_prefix without a store (no file written), alternated; each on a new context
    n_outputs_max = context_settings(b._config).n_outputs_max

    def engine_eval() -> float:
        with outputs_per_batch(n_outputs_max):
            llm = _baseline(llama_cpp, path, n_ctx, n_batch)
        try:
            began = time.perf_counter()
            llm.eval(corpus)
            return time.perf_counter() - began
        finally:
            llm.close()

    def engine_run() -> float:
        # On a thread of its own that ends after the run, as Lectern's engine thread
        # does: this llama.cpp uses OpenMP, whose pool made by a main-thread run would
        # outlive it, and with more OpenMP threads than cores libgomp throttles its
        # spin-waits, which slowed the other side's engine thread by 5-8% here.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(engine_eval).result()

    def lectern_run() -> float:
        with backend(None) as lectern:
            lectern.load()
            began = time.perf_counter()
            report = lectern.prepare_prefix(ids, len(corpus))
            seconds = time.perf_counter() - began
            assert report.source == "evaluated" and report.evaluated == len(corpus), report
            return seconds

    prefill = _paired(engine_run, lectern_run, rounds)
    # llama.cpp allocates the KV and compute buffers for all of n_ctx at load
    plan = plan_for_model(path, tokens=n_ctx, llama=context_settings(b._config))
    return {
        "prefill_tokens": len(corpus),
        **_prefill_figures(len(corpus), prefill),
        "ttft_cold_s": round(cold, 4),
        "ttft_restored_s": round(restored, 4),
        "restore_speedup": round(cold / restored, 1),
        "memory_plan_bytes": plan.needed_bytes,
        "memory_plan_source": plan.source,
        "measured_bytes": measured,
        "measured_pages": "weights locked" if locked else "touched only (mlock refused)",
        "memory_plan_error": round(abs(plan.needed_bytes - measured) / measured, 3),
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} rounds: at least 1 is needed for a median")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=8000, help="MLX corpus size in tokens")
    parser.add_argument("--gguf-tokens", type=int, default=8000, help="llama.cpp corpus size")
    parser.add_argument(
        "--rounds", type=_positive, default=7, help="alternated prefill pairs per case (median)"
    )
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = Path(args.work)
        engine, arch = args.child.split(":")
        result = (
            _llama_child(args.gguf_tokens, work, args.rounds)
            if engine == "llama.cpp"
            else _mlx_child(arch, args.tokens, work, args.rounds)
        )
        print(json.dumps(result))
        return 0
    results: dict[str, Any] = {}
    for case in CASES:
        with tempfile.TemporaryDirectory() as work:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    case,
                    "--work",
                    work,
                    "--tokens",
                    str(args.tokens),
                    "--gguf-tokens",
                    str(args.gguf_tokens),
                    "--rounds",
                    str(args.rounds),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            results[case] = {"error": proc.stderr.strip().splitlines()[-1:]}
            continue
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
    keys = TARGETS
    summary = {
        "prefill_overhead_ratio": max(
            r.get("prefill_overhead_ratio", 99) for r in results.values()
        ),
        "restore_speedup": min(r.get("restore_speedup", 0) for r in results.values()),
        "memory_plan_error": max(r.get("memory_plan_error", 99) for r in results.values()),
    }
    met = {
        "prefill_overhead_ratio": summary["prefill_overhead_ratio"]
        <= keys["prefill_overhead_ratio"],
        "restore_speedup": summary["restore_speedup"] >= keys["restore_speedup"],
        "memory_plan_error": summary["memory_plan_error"] <= keys["memory_plan_error"],
    }
    print(json.dumps({**summary, "targets": TARGETS, "met": met, "cases": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
