"""A 10-question session on a ~200K-token corpus keeps DeepSeek's cache hitting.

Against the fixture server (all three cache rules, fixed intervals off), in
non-thinking and in thinking mode: from the second question on, >= 99% of the
prompt tokens are cache hits; the priming request thinking mode needs is on
the meter; and every figure on the meter equals the cost computed here from
the server's own usage reports and the config's prices. The per-question hit
ratios are printed and written to ``cache_scenario.json`` in the test's tmp dir.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.cache_scenario import run_scenario
from tests.fixtures.lectern_env import FLASH_PRICE, expected_cost

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache-scenario")


@pytest.mark.parametrize("mode", ["non-think", "high"])
def test_cache_scenario(mode: str, work: Path) -> None:
    result = run_scenario(mode, work)
    figures = [(q["question"], q["hit_ratio"]) for q in result["questions"]]
    print(f"\n{mode}: corpus {result['corpus_tokens']:,} tokens; hit ratio per question {figures}")
    out = work / "cache_scenario.json"
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved[mode] = {k: v for k, v in result.items() if k != "server_usages"}
    out.write_text(json.dumps(saved, indent=2))

    # ~200K tokens of text; corpus_tokens is what it costs in the prompt (anchors included).
    assert 190_000 <= result["corpus_tokens"] <= 240_000
    questions = result["questions"]
    assert len(questions) == 10
    assert questions[0]["cache_hit"] == 0  # the first read of a corpus always misses
    for q in questions[1:]:
        assert q["hit_ratio"] >= 0.99, q

    # Priming: only thinking mode needs it, only with the first question.
    primed = [q["question"] for q in questions if q["priming"]]
    assert primed == ([1] if mode == "high" else [])
    assert [q["requests"] for q in questions] == [2 if primed else 1] + [1] * 9

    # Every question's cost (priming included) equals usage x price computed here.
    for q in questions:
        assert Decimal(q["cost_usd"]) == Decimal(q["expected_cost_usd"])
        assert q["meter"].split(". Cost: ")[1].startswith(q["expected_meter_cost"][6:])
    usages = result["server_usages"]
    assert len(usages) == sum(q["requests"] for q in questions)
    total = sum((expected_cost(u, FLASH_PRICE) for u in usages), Decimal(0))
    assert Decimal(result["session_cost_usd"]) == total == Decimal(result["session_expected_usd"])
    if primed:
        # The priming request's tokens are in the first question's meter line.
        first = questions[0]
        sent = int(first["meter"].split(" sent")[0].split()[-1].replace(",", ""))
        assert sent == usages[0]["prompt_tokens"] + usages[1]["prompt_tokens"]
