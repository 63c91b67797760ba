"""Bench: DeepSeek cache hit ratio per question over a 10-question session.

Runs the cache scenario (``tests/fixtures/cache_scenario.py``: ~200K-token
corpus, fixture server with all three cache rules and intervals off) in
non-thinking and thinking mode, plus the baseline in the same run: thinking
mode without the priming request. Prints JSON: per mode, the hit ratio of
each question, the number of requests, and the session cost against the cost
computed from the server's usage.

    .venv/bin/python tests/bench/cache_scenario.py [--tokens 200000] [--questions 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from needs import require

require("cache_scenario.py", deepseek_recipe="the DeepSeek fixture server")

from tests.fixtures.cache_scenario import run_scenario  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    out: dict[str, object] = {"corpus_tokens_target": args.tokens}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = [("non-think", True), ("high", True), ("high", False)]
        for mode, prime in runs:
            started = time.monotonic()
            r = run_scenario(
                mode, work, corpus_tokens=args.tokens, questions=args.questions, prime=prime
            )
            qs = r["questions"]
            key = mode if prime else f"{mode} (baseline: no priming)"
            out["corpus_tokens"] = r["corpus_tokens"]
            out[key] = {
                "hit_ratio": [q["hit_ratio"] for q in qs],
                "min_hit_ratio_from_q2": min(q["hit_ratio"] for q in qs[1:]),
                "requests": [q["requests"] for q in qs],
                "session_cost_usd": r["session_cost_usd"],
                "session_cost_from_server_usage_usd": r["session_expected_usd"],
                "seconds": round(time.monotonic() - started, 1),
            }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
