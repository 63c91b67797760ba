"""The config file drives ``lectern ask``: issue 4's sample as it is, and every section.

``lectern`` runs in a subprocess with ``LECTERN_CONFIG`` pointing at a file the
test wrote; API backends point at the DeepSeek fixture server on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.deepseek_script import TEST_KEY
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import (
    FLASH_PRICE,
    SAMPLE_FLASH_PRICE,
    expected_cost,
    fixture_config,
    issue_sample_config,
    run_cli,
)

CONTRACT = "# Agreement\nLiability is capped at five times the annual fees.\n"
ANSWER = 'Five times the annual fees [contract.md:L2 "capped at five times"].'
SAMPLE_LOCAL_MODEL = Path("/models/DeepSeek-V4-Flash-Q4.gguf")


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


@pytest.fixture
def docs(tmp_path: Path, server: DeepSeekServer) -> Path:
    server.reset()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "contract.md").write_text(CONTRACT, encoding="utf-8")
    return folder


@pytest.mark.skipif(SAMPLE_LOCAL_MODEL.exists(), reason="the sample's local model exists here")
def test_the_issue_sample_answers_and_reviews(
    tmp_path: Path, server: DeepSeekServer, docs: Path
) -> None:
    config = issue_sample_config(tmp_path / "config.toml", base_url=server.base_url)
    server.enqueue_reply(ANSWER)
    server.enqueue_reply("VERDICT: correct\n\n" + ANSWER)
    proc = run_cli(
        ["ask", str(docs), "-q", "What is the cap?", "--review", "--json"],
        home=tmp_path / "home",
        config=config,
        env={"DEEPSEEK_API_KEY": TEST_KEY},  # the sample's api_key_env
    )
    assert proc.returncode == 0, proc.stderr
    # The sample's local model is not on this machine: skipped, and the user is told.
    assert (
        "local backend 'local' skipped: its model file /models/DeepSeek-V4-Flash-Q4.gguf "
        "does not exist" in proc.stderr
    )
    data = json.loads(proc.stdout)
    assert (data["backend"], data["model"], data["answer"]) == (
        "flash",
        "deepseek-v4-flash",
        ANSWER,
    )
    assert [r.body["model"] for r in server.chat_requests] == [
        "deepseek-v4-flash",
        "deepseek-v4-pro",
    ]
    assert all(r.headers["authorization"] == f"Bearer {TEST_KEY}" for r in server.chat_requests)
    # The draft is charged at the sample's [profiles."deepseek-v4-flash"] prices.
    draft_usage = server.usages[0]
    (draft_call,) = [c for c in data["calls"] if c["purpose"] == "draft"]
    assert Decimal(str(draft_call["cost_usd"])) == expected_cost(draft_usage, SAMPLE_FLASH_PRICE)
    assert data["review"]["backend"] == "pro" and data["review"]["verdict"] == "correct"


def test_session_cascade_and_ingest_sections_reach_lectern_ask(
    tmp_path: Path, server: DeepSeekServer, docs: Path
) -> None:
    (docs / "big.txt").write_text("word " * 60_000, encoding="utf-8")  # 300 KB
    config = fixture_config(
        tmp_path / "config.toml",
        server.base_url,
        cascade={"auto_review": True, "prime_cache": False},
        extra='[session]\nmode = "high"\nmax_tokens = 333\n\n[ingest]\nmax_file_mb = 0.1\n',
    )
    server.enqueue_reply(ANSWER, reasoning="Line 2 has the cap.")
    server.enqueue_reply("VERDICT: correct\n\n" + ANSWER, reasoning="Checked.")
    proc = run_cli(
        ["ask", str(docs), "-q", "What is the cap?", "--json"],
        home=tmp_path / "home",
        config=config,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    # [ingest] max_file_mb: the 300 KB text file is over the 0.1 MB limit and skipped.
    (skipped,) = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert skipped.startswith("  skipped docs/big.txt:") and "size limit" in skipped
    assert "Read 1 new" in proc.stderr
    # [session] mode and max_tokens: the session and every request.
    assert data["mode"] == "high"
    bodies = server.bodies
    assert [b["model"] for b in bodies] == ["deepseek-v4-flash", "deepseek-v4-pro"]
    assert [(b["reasoning_effort"], b["max_tokens"]) for b in bodies] == [("high", 333)] * 2
    # [cascade] auto_review without --review; prime_cache = false: no priming request.
    assert [c["purpose"] for c in data["calls"]] == ["draft", "review"]
    assert data["review"]["verdict"] == "correct"
    assert Decimal(str(data["calls"][0]["cost_usd"])) == expected_cost(
        server.usages[0], FLASH_PRICE
    )


def test_an_invalid_config_names_the_key_and_sends_nothing(
    tmp_path: Path, server: DeepSeekServer, docs: Path
) -> None:
    config = issue_sample_config(
        tmp_path / "config.toml", base_url=server.base_url, extra="\n[session]\nmode = 'thinking'\n"
    )
    proc = run_cli(["ask", str(docs), "-q", "Cap?"], home=tmp_path / "home", config=config)
    assert proc.returncode == 2
    assert (
        "lectern: config.toml: session.mode = 'thinking' is not one of non-think, high, max."
        in proc.stderr
    )
    assert server.request_count == 0
