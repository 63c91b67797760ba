"""``lectern ask / quote / sessions / export`` end to end, in subprocesses.

Against: the DeepSeek fixture server (flash + pro profiles), the demo gemma
model in process (no config at all), and llama-cpp-python's own
OpenAI-compatible server on loopback. Every figure the CLI prints is checked
against the server's own usage reports and the config's prices.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import (
    FLASH_PRICE,
    PRO_PRICE,
    expected_cost,
    fixture_config,
    money,
    run_cli,
)

CONTRACT = """# Master Services Agreement
The Supplier shall indemnify the Buyer against third-party claims.
Liability is capped at five times the annual fees.
This agreement is governed by the laws of Ireland.
"""
ANSWER = 'The cap is five times the annual fees [contract.md:L3 "capped at five times"].'


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


@pytest.fixture
def env(tmp_path: Path, server: DeepSeekServer) -> dict[str, Path]:
    server.reset()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contract.md").write_text(CONTRACT)
    return {
        "docs": docs,
        "home": tmp_path / "home",
        "config": fixture_config(tmp_path / "config.toml", server.base_url),
    }


def ask(env: dict[str, Path], *args: str, timeout: float = 120) -> tuple[int, str, str]:
    proc = run_cli(["ask", *args], home=env["home"], config=env["config"], timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def cost_of_requests(server: DeepSeekServer, start: int = 0) -> Decimal:
    total = Decimal(0)
    for r in server.chat_requests[start:]:
        if r.usage:
            price = PRO_PRICE if r.body["model"] == "deepseek-v4-pro" else FLASH_PRICE
            total += expected_cost(r.usage, price)
    return total


def test_ask_streams_the_answer_and_ends_with_the_meter_line(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    server.enqueue_reply(ANSWER)
    code, out, err = ask(env, str(env["docs"]), "-q", "What is the cap?", "--session", "c")
    assert code == 0, err
    assert ANSWER in out
    assert "Citations: 1 of 1 valid" in out
    (usage,) = server.usages
    cost = expected_cost(usage, FLASH_PRICE)
    meter = (
        f"Tokens: {usage['prompt_tokens']:,} sent ({usage['prompt_cache_hit_tokens']:,} cache "
        f"hit), {usage['completion_tokens']:,} received. Cost: {money(cost)} message, "
        f"{money(cost)} session. Pro: 0% of spend."
    )
    assert out.strip().splitlines()[-1] == meter
    assert "Session: c (non-think)" in err and "Read 1 new" in err


def test_json_output_has_exact_usage_cost_and_citations(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    server.enqueue_reply('Governed by French law [contract.md:L4 "laws of France"].')
    code, out, err = ask(env, str(env["docs"]), "-q", "Which law?", "--json")
    assert code == 0, err
    data = json.loads(out)
    (usage,) = server.usages
    assert data["backend"] == "flash" and data["model"] == "deepseek-v4-flash"
    assert data["usage"] == {
        "prompt": usage["prompt_tokens"],
        "cache_hit": usage["prompt_cache_hit_tokens"],
        "cache_miss": usage["prompt_cache_miss_tokens"],
        "completion": usage["completion_tokens"],
        "reasoning": 0,
        "estimated": False,
    }
    cost = expected_cost(usage, FLASH_PRICE)
    assert Decimal(str(data["cost_usd"])) == cost == Decimal(str(data["session_cost_usd"]))
    # The place exists but the quote is not there: marked invalid, not escalated.
    (cit,) = data["citations"]
    assert cit["valid"] is False and cit["place_exists"] is True
    assert "not found" in cit["reason"]
    assert data["escalated"] is False and server.request_count == 1
    assert set(data) >= {
        "answer",
        "reasoning",
        "backend",
        "model",
        "usage",
        "cost_usd",
        "session_cost_usd",
        "citations",
    }


def test_invalid_citations_are_marked_in_the_transcript(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    server.enqueue_reply('Irish law [contract.md:L4 "laws of France"].')
    code, out, err = ask(env, str(env["docs"]), "-q", "Which law?")
    assert code == 0, err
    assert 'Citations: 0 of 1 valid; INVALID: [contract.md:L4 "laws of France"]' in out


def test_review_json_counts_every_call_in_cost_usd(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    server.enqueue_reply(ANSWER)
    server.enqueue_reply("VERDICT: correct\n\n" + ANSWER)
    code, out, err = ask(env, str(env["docs"]), "-q", "What is the cap?", "--review", "--json")
    assert code == 0, err
    data = json.loads(out)
    draft_usage, review_usage, priming_usage = server.usages  # the review primes Pro's cache
    assert data["answer"] == ANSWER and data["backend"] == "flash"
    assert data["usage"]["prompt"] == draft_usage["prompt_tokens"]  # the answering request
    assert data["review"]["verdict"] == "correct"
    assert data["review"]["backend"] == "pro" and data["review"]["corrected"] == ANSWER
    total = expected_cost(draft_usage, FLASH_PRICE) + expected_cost(review_usage, PRO_PRICE)
    total += expected_cost(priming_usage, PRO_PRICE)
    assert Decimal(str(data["cost_usd"])) == total
    assert Decimal(str(data["session_cost_usd"])) == total
    assert [c["valid"] for c in data["citations"]] == [True]
    # The review's priming request runs beside the review: either may be logged first.
    purposes = [c["purpose"] for c in data["calls"]]
    assert purposes[0] == "draft" and sorted(purposes[1:]) == ["priming", "review"]


def test_asking_again_reads_only_new_or_changed_files(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    docs = env["docs"]
    (docs / "annex.md").write_text("# Annex\nService credits of 5%.\n")
    server.enqueue_reply(ANSWER)
    code, _, err = ask(env, str(docs), "-q", "Cap?", "--session", "s")
    assert code == 0 and "Read 2 new" in err
    server.enqueue_reply(ANSWER)
    code, _, err = ask(env, str(docs), "-q", "Cap again?", "--session", "s")
    assert code == 0 and "All 2 files are unchanged" in err
    time.sleep(0.01)
    (docs / "annex.md").write_text("# Annex\nService credits of 10%.\n")
    (docs / "notes.md").write_text("# Notes\nRenewal is yearly.\n")
    server.enqueue_reply(ANSWER)
    code, _, err = ask(env, str(docs), "-q", "Credits?", "--session", "s")
    assert code == 0, err
    assert "Read 1 new, 1 changed and re-read" in err
    # The new files ride in the third question's message, after the history.
    last = server.chat_requests[-1].body["messages"]
    assert "Service credits of 5%" in last[0]["content"]  # the prefix is untouched
    assert "<documents added>" in last[-1]["content"]
    assert "Service credits of 10%" in last[-1]["content"]
    assert "Renewal is yearly" in last[-1]["content"]
    hits = [u["prompt_cache_hit_tokens"] for u in server.usages]
    assert hits[1] > 0 and hits[2] >= hits[1]  # the appended documents kept the cache


def test_budget_cap_refuses_without_yes_and_runs_with_it(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    args = (str(env["docs"]), "-q", "Cap?", "--session", "b", "--budget-message", "0.000001")
    code, _, err = ask(env, *args)
    assert code == 3
    assert "per-message cap of" in err and "not a terminal" in err
    assert server.request_count == 0
    server.enqueue_reply(ANSWER)
    code, out, err = ask(env, *args, "--yes")
    assert code == 0 and ANSWER in out, err


def test_changing_mode_is_an_explicit_quoted_action(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    server.enqueue_reply(ANSWER)
    assert ask(env, str(env["docs"]), "-q", "Cap?", "--session", "m")[0] == 0
    code, _, err = ask(env, "-q", "Cap?", "--session", "m", "--mode", "high")
    assert code == 3
    assert "non-think mode; switching to high" in err and "tokens are read again" in err
    assert server.request_count == 1
    server.enqueue_reply(ANSWER, reasoning="Check line 3.")
    code, out, err = ask(env, "-q", "Cap?", "--session", "m", "--mode", "high", "--yes")
    assert code == 0, err
    assert server.last_body["reasoning_effort"] == "high"
    assert "Check line 3." in out


def test_a_mode_switch_is_not_made_when_its_question_is_then_refused(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    """In a terminal: "y" to the switch, then "n" to the budget cap. Nothing was sent,
    so the session is left as it was (both switches stay in the log)."""
    import pty
    import select
    import subprocess
    import sys

    from app.core.session import Session
    from app.core.session.store import Store
    from backends.base import ThinkingMode
    from tests.fixtures.lectern_env import REPO, cli_env

    server.enqueue_reply(ANSWER)
    assert ask(env, str(env["docs"]), "-q", "Cap?", "--session", "m")[0] == 0
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ask", "-q", "Cap?", "--session", "m",
         "--mode", "high", "--budget-message", "0.000001"],
        cwd=REPO, env=cli_env(env["home"], env["config"]),
        stdin=slave, stdout=subprocess.PIPE, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    os.write(master, b"y\nn\n")  # the terminal holds both lines until input() reads them
    shown = b""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                shown += os.read(master, 4096)
            except OSError:
                break
    proc.wait(timeout=30)
    os.close(master)
    assert proc.stdout is not None
    proc.stdout.close()
    text = shown.decode(errors="replace")
    assert proc.returncode == 3, text
    assert "Switch? [y/N]" in text and "per-message cap of" in text
    assert "The session stays in non-think mode." in text
    assert server.request_count == 1  # only the first question went out
    store = Store(env["home"] / "lectern.db")
    try:
        session = Session.open(store, "m", create=False)
        assert session.mode is ThinkingMode.NON_THINK
        # The switch is made with the question, in one transaction: a question that is
        # refused before sending leaves no switch (and no undo) in the log.
        assert session.events(["mode_changed"]) == []
        assert len(session.turns()) == 1
    finally:
        store.close()


def test_backend_errors_exit_non_zero_and_keep_the_question(
    env: dict[str, Path], server: DeepSeekServer
) -> None:
    server.enqueue_error(401)
    server.enqueue_error(401)  # the escalation to Pro is refused too
    code, _, err = ask(env, str(env["docs"]), "-q", "Cap?", "--session", "e")
    assert code == 1
    assert "rejected the API key" in err
    assert "saved in session 'e'" in err
    proc = run_cli(["export", "e", "--format", "json"], home=env["home"], config=env["config"])
    turns = json.loads(proc.stdout)["turns"]
    assert turns[0]["question"] == "Cap?"
    assert [a["status"] for a in turns[0]["answers"]] == ["failed", "failed"]


def test_sessions_export_and_quote(env: dict[str, Path], server: DeepSeekServer) -> None:
    server.enqueue_reply(ANSWER)
    assert ask(env, str(env["docs"]), "-q", "Cap?", "--session", "x")[0] == 0
    listed = run_cli(["sessions", "--json"], home=env["home"], config=env["config"])
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "x" and row["documents"] == 1 and row["questions"] == 1
    assert Decimal(row["spend_usd"]) == cost_of_requests(server)

    out_file = env["home"] / "x.md"
    exported = run_cli(
        ["export", "x", "--format", "md", "-o", str(out_file)],
        home=env["home"],
        config=env["config"],
    )
    assert exported.returncode == 0, exported.stderr
    md = out_file.read_text()
    assert "| 1 | docs/contract.md | markdown |" in md and ANSWER in md
    assert "deepseek-v4-flash · via flash · non-think" in md

    before = server.request_count
    quoted = run_cli(
        ["quote", str(env["docs"]), "-q", "Another?", "--session", "x"],
        home=env["home"],
        config=env["config"],
    )
    assert quoted.returncode == 0, quoted.stderr
    assert "flash (deepseek-v4-flash)" in quoted.stdout and "pro (deepseek-v4-pro)" in quoted.stdout
    assert server.request_count == before  # a quote sends nothing
    again = run_cli(["sessions", "--json"], home=env["home"], config=env["config"])
    assert json.loads(again.stdout)[0]["questions"] == 1  # and writes nothing


@pytest.mark.llama
@pytest.mark.slow
def test_no_config_answers_with_the_demo_model(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The meeting is on Tuesday at noon.\n")
    runs = []
    for question in ("When is the meeting?", "Where is it?"):
        proc = run_cli(
            ["ask", str(docs), "-q", question, "--session", "d", "--max-tokens", "24", "--json"],
            home=tmp_path / "home",
            config=None,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        assert "Demo mode" in proc.stderr and "not DeepSeek" in proc.stderr
        runs.append(json.loads(proc.stdout))
    first, second = runs
    assert first["backend"] == "demo" and "gemma-3-270m" in first["model"]
    assert first["answer"].strip()
    assert first["usage"]["prompt"] > 20 and 0 < first["usage"]["completion"] <= 24
    assert first["cost_usd"] == 0 and first["usage"]["cache_hit"] == 0
    # A new process restored the saved corpus prefix: only the new turn was evaluated.
    assert second["usage"]["cache_hit"] > 0
    assert second["usage"]["cache_miss"] < second["usage"]["prompt"] - first["usage"]["prompt"] + 24


@pytest.mark.llama
@pytest.mark.slow
def test_local_openai_compatible_server(tmp_path: Path) -> None:
    from tests.fixtures.llama_server import LlamaServer

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The meeting is on Tuesday at noon.\n")
    with LlamaServer() as srv:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[backends.lan]\nkind = "openai"\nbase_url = "{srv.base_url}"\n'
            f'model = "{srv.model}"\ncontext = {srv.n_ctx}\n\n[cascade]\ndraft = "lan"\n'
        )
        proc = run_cli(
            [
                "ask",
                str(docs),
                "-q",
                "When is the meeting?",
                "--max-tokens",
                "24",
                "--json",
                "--offline",
            ],
            home=tmp_path / "home",
            config=config,
            timeout=600,
            env={"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **os.environ},
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["backend"] == "lan" and data["answer"].strip()
    assert data["usage"]["prompt"] > 20 and data["usage"]["completion"] > 0
    assert data["cost_usd"] == 0  # a local model: no API price


@pytest.mark.mlx
@pytest.mark.slow
def test_mlx_in_process_restores_the_corpus_prefix(tmp_path: Path) -> None:
    from tests.fixtures.tiny_mlx import build_tiny_mlx

    model = build_tiny_mlx(tmp_path / "model")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The cap is forty pounds.\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.mac]\nkind = "mlx"\nmodel_path = "{model.path}"\n'
        'profile = "deepseek-v4-flash-gguf"\ncontext = 65536\n\n[cascade]\ndraft = "mac"\n'
    )
    runs = []
    for question in ("What is the cap?", "And again?"):
        proc = run_cli(
            ["ask", str(docs), "-q", question, "--session", "m", "--max-tokens", "12", "--json"],
            home=tmp_path / "home",
            config=config,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    first, second = runs
    assert first["backend"] == "mac" and first["answer"].strip()
    assert first["usage"]["cache_hit"] == 0 and first["cost_usd"] == 0
    # The second process evaluated only what follows the saved corpus prefix.
    assert second["usage"]["cache_hit"] > 0
    assert second["usage"]["cache_miss"] < first["usage"]["prompt"] // 4
