"""Bench: counting a reopened session's prompt, with stored counts vs tokenizing.

Builds a ~1M-token corpus, reads it into a session in a real SQLite store, then
reopens the store as a new session object would and renders the first prompt
with a fresh V4 renderer twice in the same run: from the per-document counts
stored in SQLite (what Lectern does) and, as the baseline, by tokenizing the
corpus again. Both must give the same prompt tokens. Prints JSON.

    .venv/bin/python tests/bench/reopen_count.py [--tokens 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.ask.planner import conversation_turns
from app.core.ingest.pipeline import ingest
from app.core.prompt import system_prompt
from app.core.prompt.deepseek_v4 import v4_renderer
from app.core.session import Session
from app.core.session.store import Store
from app.core.tokens import deepseek_v4
from backends.base import ThinkingMode
from tests.fixtures.lectern_env import write_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LECTERN_HOME"] = str(work / "home")
        write_corpus(work / "corpus", args.tokens, files=40)
        store = Store()
        Session.open(store, "bench").add_ingested(ingest([work / "corpus"]))
        store.close()

        deepseek_v4()  # the tokenizer's load is not what is measured
        store = Store()
        started = time.perf_counter()
        conv = Session.open(store, "bench", create=False).conversation()
        corpus, turns = conversation_turns(conv, "What changed between the versions?")
        load_s = time.perf_counter() - started
        stored, tokenized = [], []
        counts = set()
        for _ in range(args.runs):
            for text, out in ((corpus, stored), (str(corpus), tokenized)):
                renderer = v4_renderer()  # fresh: no memo from the previous render
                t = time.perf_counter()
                prompt = renderer.render(system_prompt(), text, list(turns), ThinkingMode.HIGH)
                out.append(time.perf_counter() - t)
                counts.add(prompt.prompt_tokens)
        store.close()
    result = {
        "corpus_tokens": getattr(corpus, "tokens", None),
        "prompt_tokens": sorted(counts),
        "same_count": len(counts) == 1,
        "session_load_s": round(load_s, 3),
        "render_stored_counts_s": round(statistics.median(stored), 4),
        "render_tokenizing_s": round(statistics.median(tokenized), 4),
        "speedup": round(statistics.median(tokenized) / statistics.median(stored), 1),
        "samples": {
            "stored_counts_s": [round(x, 4) for x in stored],
            "tokenizing_s": [round(x, 4) for x in tokenized],
        },
    }
    print(json.dumps(result, indent=2))
    return 0 if result["same_count"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
