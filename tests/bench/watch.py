"""Benchmark: one watcher poll of a 3,000-file tree, and noticing a save-by-rename.

Builds a tree of 3,000 source files (30 folders of 100) in the run, then times a
``Watcher.poll`` (a full stat snapshot and diff) against the baseline of a bare
``os.walk`` that lists the same tree without stat, and how long after an
editor's save-by-rename the watcher's thread reports it (poll 0.5 s, debounce
0.4 s: the expected latency is about one second).

Prints one JSON object: ``files``, ``poll_ms`` (median), ``baseline_walk_ms``
(median), ``notice_seconds``. Run: ``PYTHONPATH=$PWD .venv/bin/python tests/bench/watch.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.core.workspace.watch import Changes, Watcher  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lectern-bench-watch-") as tmp:
        root = Path(tmp)
        for d in range(30):
            (root / f"pkg{d}").mkdir()
            for f in range(100):
                (root / f"pkg{d}" / f"m{f}.py").write_text(f"x = {f}\n")
        watcher = Watcher()
        watcher.watch([str(root)])
        polls, walks = [], []
        for _ in range(15):
            start = time.perf_counter()
            watcher.poll()
            polls.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            sum(len(files) for _, _, files in os.walk(root))
            walks.append((time.perf_counter() - start) * 1000)
        seen = threading.Event()

        def noticed(_c: Changes) -> None:
            seen.set()

        live = Watcher(noticed)
        live.watch([str(root)])
        live.start()
        target = root / "pkg7" / "m42.py"
        tmp_file = target.with_name(".m42.py.swp")
        tmp_file.write_text("x = 'edited'\n")
        start = time.perf_counter()
        os.replace(tmp_file, target)
        seen.wait(10)
        notice = time.perf_counter() - start
        live.stop()
    print(
        json.dumps(
            {
                "files": 3000,
                "poll_ms": round(statistics.median(polls), 2),
                "baseline_walk_ms": round(statistics.median(walks), 2),
                "notice_seconds": round(notice, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
