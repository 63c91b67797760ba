"""Benchmark: the fast V4 counter against ``tokenizers``, and a second ingest of a tree.

Builds (once, cached in the temp folder under a version key) a real tree: every
``.py`` file of this interpreter's standard library (site-packages left out)
and a generated 200-page PDF. Then, in one run:

* counting speed on the same texts (each file's text, the PDF's extracted
  text): ``deepseek_v4().count_batch`` (the fast path) against the HF
  ``tokenizers`` ``encode_batch`` of the same ``tokenizer.json`` without its
  added tokens (the reference), alternating, medians of ``--runs``;
  HF's fastest call, ``encode_batch_fast`` (no offsets), is a second baseline;
* ``mismatched_files``: files whose counts differ between the two (must be 0);
* ``tokenizer_ready_s``: in a fresh process, modules imported, the time to
  build the counter and have the first exact count of a short text
  (``deepseek_v4().count``; the token store already made: it is made once per
  install), against ``hf_load_s``, HF's ``Tokenizer.from_file`` of the same
  ``tokenizer.json`` in a fresh process, ``tokenizers`` imported; alternated,
  medians; ``tokenizer_ready_ratio`` is their ratio (target <= 0.25). The
  ``*_with_imports_*`` figures time both from the first import instead.
  ``tokenizer_full_s``: the counter until its full encoder (all 128k tokens,
  what a large text needs) is made; ``store_build_s``: making the store (once);
* ``warm_ratio``: wall time of ``lectern ingest --json TREE`` run again on the
  unchanged tree over the first run's, with a fresh ``LECTERN_HOME`` per pair
  (fresh processes timed end to end), median over ``--runs`` pairs.

Prints one JSON object. Run: ``.venv/bin/python tests/bench/counting.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VERSION = "v1"  # bump when the generated tree changes
PDF_PAGES = 200
SPEEDUP_TARGET = 3.5
WARM_TARGET = 0.2
READY_TARGET = 0.25

READY = """
import sys, time
start = time.perf_counter()
from app.core.tokens import deepseek_v4
imported = time.perf_counter()
counter = deepseek_v4()
counter.count("Lectern counts this.")
ready = time.perf_counter()
assert counter.fast is not None and counter.origin == "stored", counter.origin
counter.fast.prepare()
full = time.perf_counter()
print(ready - imported, ready - start, full - imported, "tokenizers" in sys.modules)
"""

HF_LOAD = """
import sys, time
start = time.perf_counter()
from tokenizers import Tokenizer
imported = time.perf_counter()
Tokenizer.from_file(sys.argv[1])
done = time.perf_counter()
print(done - imported, done - start)
"""


def stdlib_files() -> list[Path]:
    """This interpreter's standard library ``.py`` files, without site-packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        out.extend(Path(folder, f) for f in sorted(files) if f.endswith(".py"))
    return out


def build_tree() -> Path:
    """The benchmark tree, generated on first use and cached."""
    base = Path(tempfile.gettempdir()) / f"lectern-bench-counting-{VERSION}"
    tree = base / "tree"
    done = base / "complete"
    if done.exists():
        return tree
    shutil.rmtree(base, ignore_errors=True)
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in stdlib_files():
        target = tree / "stdlib" / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    from tests.fixtures.docs import make_big_pdf

    make_big_pdf(tree / "book.pdf", PDF_PAGES, 30, seed=3)
    done.write_text("ok\n")
    return tree


def texts_of(tree: Path) -> list[str]:
    """The text of every file of the tree: source files as UTF-8, the PDF's pages joined."""
    from app.core.ingest import paged

    texts = []
    for path in sorted(tree.rglob("*")):
        if path.suffix == ".py":
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue  # a test file in a legacy encoding
        elif path.suffix == ".pdf":
            texts.append("".join(paged.extract_all(str(path), "pdf")))
    return texts


def lectern_command() -> list[str]:
    script = Path(sys.executable).with_name("lectern")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def timed_ingest(tree: Path, home: Path) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "LECTERN_HOME": str(home)}
    start = time.perf_counter()
    out = subprocess.run(
        [*lectern_command(), "ingest", "--json", str(tree)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, json.loads(out.stdout)


def python(code: str, *args: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


def measure_ready(runs: int) -> dict[str, Any]:
    """Fresh processes, alternated: Lectern's counter ready vs HF's tokenizer loaded."""
    from app.core import token_store
    from app.core.tokens import TokenCounter, deepseek_v4_tokenizer_path

    path = str(deepseek_v4_tokenizer_path())
    with tempfile.TemporaryDirectory(prefix="lectern-bench-store-") as tmp:
        start = time.perf_counter()
        built = TokenCounter(Path(path), "deepseek-v4", store_dir=Path(tmp))
        store_build = time.perf_counter() - start
        assert built.origin == "built and stored", built.origin
    deepseek_v4_store = token_store.default_dir()
    python(READY.replace('origin == "stored"', 'origin != ""'))  # make the real store
    ready: list[float] = []
    ready_imports: list[float] = []
    full: list[float] = []
    hf: list[float] = []
    hf_imports: list[float] = []
    loaded_hf = False
    for _ in range(runs):
        r, ri, f, has_hf = python(READY)
        ready.append(float(r))
        ready_imports.append(float(ri))
        full.append(float(f))
        loaded_hf |= has_hf == "True"
        h, hi = python(HF_LOAD, path)
        hf.append(float(h))
        hf_imports.append(float(hi))
    med = statistics.median
    return {
        "tokenizer_ready_s": round(med(ready), 4),
        "hf_load_s": round(med(hf), 4),
        "tokenizer_ready_ratio": round(med(ready) / med(hf), 3),
        "tokenizer_ready_with_imports_s": round(med(ready_imports), 4),
        "hf_load_with_import_s": round(med(hf_imports), 4),
        "tokenizer_ready_with_imports_ratio": round(med(ready_imports) / med(hf_imports), 3),
        "tokenizer_full_s": round(med(full), 4),
        "ready_loaded_tokenizers": loaded_hf,
        "store_build_s": round(store_build, 3),
        "store_dir": str(deepseek_v4_store),
        "ready_samples": {
            "tokenizer_ready_s": [round(x, 4) for x in ready],
            "tokenizer_ready_with_imports_s": [round(x, 4) for x in ready_imports],
            "tokenizer_full_s": [round(x, 4) for x in full],
            "hf_load_s": [round(x, 4) for x in hf],
            "hf_load_with_import_s": [round(x, 4) for x in hf_imports],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (medians reported)")
    args = parser.parse_args()

    from app.core.tokens import deepseek_v4

    tree = build_tree()
    texts = texts_of(tree)
    load_before = os.getloadavg()
    counter = deepseek_v4()
    reference = counter._plain  # the same tokenizer.json, added tokens removed

    ready = measure_ready(max(args.runs, 5))
    counter_seconds: list[float] = []
    hf_seconds: list[float] = []
    hf_fast_seconds: list[float] = []
    hf_counts: list[int] = []
    fast_counts: list[int] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        encodings = reference.encode_batch(texts, add_special_tokens=False)
        hf_seconds.append(time.perf_counter() - start)
        hf_counts = [len(e.ids) for e in encodings]
        del encodings
        start = time.perf_counter()
        fast_encodings = reference.encode_batch_fast(texts, add_special_tokens=False)
        hf_fast_seconds.append(time.perf_counter() - start)
        assert [len(e.ids) for e in fast_encodings] == hf_counts
        del fast_encodings
        start = time.perf_counter()
        fast_counts = counter.count_batch(texts)
        counter_seconds.append(time.perf_counter() - start)
    tokens = sum(hf_counts)
    mismatched = sum(a != b for a, b in zip(hf_counts, fast_counts, strict=True))

    cold: list[float] = []
    warm: list[float] = []
    same_counts = True
    with tempfile.TemporaryDirectory(prefix="lectern-bench-home-") as homes:
        for run in range(args.runs):
            home = Path(homes, str(run))
            first_seconds, first = timed_ingest(tree, home)
            second_seconds, second = timed_ingest(tree, home)
            cold.append(first_seconds)
            warm.append(second_seconds)
            same_counts &= first["documents"] == second["documents"]
            same_counts &= first["total_tokens"] == second["total_tokens"]

    counter_rate = tokens / statistics.median(counter_seconds)
    hf_rate = tokens / statistics.median(hf_seconds)
    hf_fast_rate = tokens / statistics.median(hf_fast_seconds)
    speedup = counter_rate / hf_rate
    warm_ratio = statistics.median(warm) / statistics.median(cold)
    print(
        json.dumps(
            {
                "tokens": tokens,
                "files": len(texts),
                "counter_tokens_per_s": round(counter_rate),
                "hf_encode_batch_tokens_per_s": round(hf_rate),
                "hf_encode_batch_fast_tokens_per_s": round(hf_fast_rate),
                "counter_speedup": round(speedup, 2),
                "counter_speedup_vs_encode_batch_fast": round(counter_rate / hf_fast_rate, 2),
                **{k: v for k, v in ready.items() if k != "ready_samples"},
                "mismatched_files": mismatched,
                "fast_path": counter.fast is not None,
                "warm_ratio": round(warm_ratio, 3),
                "warm_same_counts": same_counts,
                "ingest_documents": len(first["documents"]),
                "ingest_cold_seconds": round(statistics.median(cold), 3),
                "ingest_warm_seconds": round(statistics.median(warm), 3),
                "targets_met": speedup >= SPEEDUP_TARGET
                and mismatched == 0
                and ready["tokenizer_ready_ratio"] <= READY_TARGET
                and warm_ratio <= WARM_TARGET
                and same_counts,
                "samples": {
                    "counter_seconds": [round(s, 3) for s in counter_seconds],
                    "hf_encode_batch_seconds": [round(s, 3) for s in hf_seconds],
                    "hf_encode_batch_fast_seconds": [round(s, 3) for s in hf_fast_seconds],
                    **ready["ready_samples"],
                    "ingest_cold_seconds": [round(s, 3) for s in cold],
                    "ingest_warm_seconds": [round(s, 3) for s in warm],
                },
                "cpus": os.cpu_count(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
