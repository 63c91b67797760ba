"""Benchmark: ``lectern ingest`` of a ~1M-token corpus against the raw baseline.

Builds (once, cached in the temp folder under a version key) a corpus of a
1,500-page PDF of varied prose and a source tree of a few thousand files.
Then, alternating, in fresh processes timed end to end (interpreter start,
imports, tokenizer load, everything):

* ``lectern ingest --json <corpus>`` as a user would run it the first time
  (a fresh ``LECTERN_HOME`` each run, so no count comes from the count cache);
* the baseline: the floor a minimal exact counter pays. The same files
  extracted in parallel (the PDF's pages by ranges of 64 in worker processes,
  as many as Lectern uses: one per CPU but one, at most four, while the main
  process reads the source files), then counted with
  the fast counter (``deepseek_v4().count_batch``, its token store made), with
  none of Lectern's other work (walking, ignore rules, detection, the corpus
  block, the count cache, the JSON report);
* ``one_file_s``: ``lectern ingest --json`` of one new 6-byte text file (a
  fresh ``LECTERN_HOME``), beside ``baseline_one_file_s`` (the baseline on that
  file) and ``hf_load_process_s`` (a process that only loads V4's
  ``tokenizer.json`` with HF ``tokenizers``); ``one_file_ratio`` is
  ``one_file_s / hf_load_process_s`` (target <= 1).

Prints one JSON object: tokens (exact tokens of the corpus block),
text_tokens (of the documents' texts, what the baseline counts too), medians
of ``seconds`` and ``baseline_seconds``, ``tokens_per_second`` (text tokens
over seconds), ``overhead_ratio`` (seconds / baseline_seconds), CPU seconds of
both (steadier than wall time when other work shares the machine) and every
sample; ``overhead_ratio`` target <= 1.15. Run:
``.venv/bin/python tests/bench/ingest.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VERSION = "v2"  # bump when the generated corpus changes
PAGES = 1500
LINES_PER_PAGE = 30
FILES = 2600
OVERHEAD_TARGET = 1.15

BASELINE = r"""
import os, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

RANGE = 64

def pages(args):
    import pymupdf
    path, start = args
    with pymupdf.open(path) as doc:
        return [doc[i].get_text() for i in range(start, min(start + RANGE, doc.page_count))]

def main():
    pdf, tree = sys.argv[1:3]
    texts = []
    futures = []
    pool = None
    if pdf != "-":
        import pymupdf
        with pymupdf.open(pdf) as doc:
            count = doc.page_count
        # Lectern's own choice (pool.default_workers): a core is left for counting.
        pool = ProcessPoolExecutor(min(4, max(1, (os.cpu_count() or 2) - 1)))
        futures = [pool.submit(pages, (pdf, s)) for s in range(0, count, RANGE)]
    if os.path.isdir(tree):
        for folder, dirs, files in os.walk(tree):
            dirs.sort()
            for name in sorted(files):
                texts.append(Path(folder, name).read_text(encoding="utf-8"))
    else:
        texts.append(Path(tree).read_text(encoding="utf-8"))
    from app.core.tokens import deepseek_v4
    counter = deepseek_v4()
    total = sum(counter.count_batch(texts))
    for f in futures:
        total += sum(counter.count_batch(f.result()))
    if pool is not None:
        pool.shutdown()
    print(total)

if __name__ == "__main__":
    main()
"""

HF_LOAD = """
import sys
from tokenizers import Tokenizer
Tokenizer.from_file(sys.argv[1])
"""


def build_corpus() -> Path:
    """The benchmark corpus, generated on first use and cached."""
    base = Path(tempfile.gettempdir()) / f"lectern-bench-ingest-{VERSION}"
    corpus = base / "corpus"
    done = base / "complete"
    if done.exists():
        return corpus
    shutil.rmtree(base, ignore_errors=True)
    corpus.mkdir(parents=True)
    from tests.fixtures.docs import make_big_pdf, make_code_tree

    make_big_pdf(corpus / "book.pdf", PAGES, LINES_PER_PAGE, seed=1)
    make_code_tree(corpus / "src", FILES, seed=2, functions=(1, 3))
    done.write_text("ok\n")
    return corpus


def lectern_command() -> list[str]:
    script = Path(sys.executable).with_name("lectern")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def timed(cmd: list[str], home: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the process and every descendant it waited for), stdout.

    ``home``: the ``LECTERN_HOME`` to run with (a fresh one: nothing cached).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["LECTERN_HOME"] = str(home)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (medians reported)")
    args = parser.parse_args()

    from app.core.tokens import deepseek_v4_tokenizer_path

    corpus = build_corpus()
    ingest_cmd = [*lectern_command(), "ingest", "--json", str(corpus)]
    script = Path(tempfile.mkdtemp(prefix="lectern-bench-baseline-")) / "baseline.py"
    script.write_text(BASELINE, encoding="utf-8")
    baseline_cmd = [sys.executable, str(script), str(corpus / "book.pdf"), str(corpus / "src")]
    one = script.parent / "one.txt"
    one.write_text("hello\n", encoding="utf-8")
    one_cmd = [*lectern_command(), "ingest", "--json", str(one)]
    baseline_one_cmd = [sys.executable, str(script), "-", str(one)]
    hf_cmd = [sys.executable, "-c", HF_LOAD, str(deepseek_v4_tokenizer_path())]

    seconds: list[float] = []
    baseline_seconds: list[float] = []
    cpu: list[float] = []
    baseline_cpu: list[float] = []
    one_file: list[float] = []
    baseline_one: list[float] = []
    hf_only: list[float] = []
    report: dict[str, Any] = {}
    baseline_tokens = 0
    load_before = os.getloadavg()
    homes = Path(tempfile.mkdtemp(prefix="lectern-bench-home-"))
    timed(ingest_cmd, homes / "warm-up")  # warm the page cache (and make the token store)
    timed(baseline_cmd)
    for run in range(args.runs):
        elapsed, used, stdout = timed(ingest_cmd, homes / str(run))
        seconds.append(elapsed)
        cpu.append(used)
        report = json.loads(stdout)
        elapsed, used, stdout = timed(baseline_cmd)
        baseline_seconds.append(elapsed)
        baseline_cpu.append(used)
        baseline_tokens = int(stdout.strip())
        one_file.append(timed(one_cmd, homes / f"one-{run}")[0])
        hf_only.append(timed(hf_cmd)[0])
        baseline_one.append(timed(baseline_one_cmd)[0])
    shutil.rmtree(homes, ignore_errors=True)
    shutil.rmtree(script.parent, ignore_errors=True)

    docs = report["documents"]
    text_tokens = sum(int(d["tokens"]) for d in docs)
    median = statistics.median(seconds)
    baseline = statistics.median(baseline_seconds)
    print(
        json.dumps(
            {
                "tokens": report["total_tokens"],
                "text_tokens": text_tokens,
                "baseline_tokens": baseline_tokens,  # the same texts, counted by the baseline
                "documents": len(docs),
                "problems": len(report["problems"]),
                "seconds": round(median, 3),
                "tokens_per_second": round(text_tokens / median),
                "block_tokens_per_second": round(int(report["total_tokens"]) / median),
                "baseline_seconds": round(baseline, 3),
                "overhead_ratio": round(median / baseline, 3),
                "one_file_s": round(statistics.median(one_file), 3),
                "baseline_one_file_s": round(statistics.median(baseline_one), 3),
                "hf_load_process_s": round(statistics.median(hf_only), 3),
                "one_file_ratio": round(
                    statistics.median(one_file) / statistics.median(hf_only), 3
                ),
                "targets_met": median / baseline <= OVERHEAD_TARGET
                and statistics.median(one_file) <= statistics.median(hf_only),
                # CPU time is steadier than wall time on a shared machine.
                "cpu_seconds": round(statistics.median(cpu), 3),
                "baseline_cpu_seconds": round(statistics.median(baseline_cpu), 3),
                "samples": {
                    "seconds": [round(s, 3) for s in seconds],
                    "baseline_seconds": [round(s, 3) for s in baseline_seconds],
                    "cpu_seconds": [round(s, 3) for s in cpu],
                    "baseline_cpu_seconds": [round(s, 3) for s in baseline_cpu],
                    "one_file_s": [round(s, 3) for s in one_file],
                    "baseline_one_file_s": [round(s, 3) for s in baseline_one],
                    "hf_load_process_s": [round(s, 3) for s in hf_only],
                },
                "cpus": os.cpu_count(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
