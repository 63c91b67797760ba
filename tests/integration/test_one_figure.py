"""One figure per document, everywhere: what it costs in the prompt; fit suggestions
that work. Real CLI processes, a real code tree, the DeepSeek fixture server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import TEST_KEY_ENV, fixture_config, run_cli


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def code_tree(root: Path) -> Path:
    """A repo whose line anchors add a lot to its text (short lines, many of them)."""
    repo = root / "repo"
    for folder, files in (("src", 4), ("tests", 3), ("docs", 2)):
        (repo / folder).mkdir(parents=True)
        for n in range(files):
            body = "".join(
                f"    value_{i} = compute({i}, {n})  # step {i}\n" for i in range(60 + 30 * n)
            )
            suffix = ".md" if folder == "docs" else ".py"
            name = f"test_{n}.py" if folder == "tests" else f"mod_{n}{suffix}"
            (repo / folder / name).write_text(f"def f{n}():\n{body}", encoding="utf-8")
    return repo


def cli(env: dict[str, Path], *args: str, code: int | None = 0) -> str:
    proc = run_cli(list(args), home=env["home"], config=env["config"], timeout=240)
    if code is not None:
        assert proc.returncode == code, proc.stderr
    return proc.stdout


def test_ingest_export_and_sessions_agree_and_fit_exclude_makes_the_next_quote_fit(
    tmp_path: Path, server: DeepSeekServer
) -> None:
    server.reset()
    repo = code_tree(tmp_path)
    config = tmp_path / "config.toml"
    env = {"home": tmp_path / "home", "config": fixture_config(config, server.base_url)}

    ingest: dict[str, Any] = json.loads(cli(env, "ingest", "--json", str(repo)))
    by_path = {d["path"]: d["prompt_tokens"] for d in ingest["documents"]}
    assert sum(by_path.values()) == ingest["total_tokens"]
    for d in ingest["documents"]:  # the anchors cost: the prompt figure is not the text's
        assert d["prompt_tokens"] > d["text_tokens"]

    server.enqueue_reply(answer="It computes values.")
    cli(env, "ask", str(repo), "-q", "What does f0 do?", "--session", "s")
    export = json.loads(cli(env, "export", "s", "--format", "json"))
    assert {c["path"]: c["prompt_tokens"] for c in export["corpus"]} == by_path
    assert export["corpus_tokens"] == ingest["total_tokens"]
    (listed,) = json.loads(cli(env, "sessions", "--json"))
    assert listed["prompt_tokens"] == ingest["total_tokens"]

    # A backend whose window holds the conversation and about half the corpus.
    big = json.loads(
        cli(env, "quote", "--session", "s", "-q", "And f1?", "--json", "--max-tokens", "100")
    )
    assert big["fits"] is True and big["fit"]["exclude"] == []
    window = big["prompt_tokens"] + 100 - ingest["total_tokens"] // 2
    fixture_config(
        config,
        server.base_url,
        extra=(
            "[backends.small]\n"
            'kind = "openai"\n'
            f'base_url = "{server.base_url}"\n'
            'model = "deepseek-v4-flash"\n'
            'flavour = "deepseek"\n'
            f'api_key_env = "{TEST_KEY_ENV}"\n'
            f"context = {window}\n"
        ),
    )
    args = ("quote", "--session", "s", "-q", "And f1?", "--json", "--max-tokens", "100")
    over = json.loads(cli(env, *args, "--backend", "small", code=3))
    fit = over["fit"]
    assert over["fits"] is False and fit["backend"] == "small" and fit["over"] > 0
    assert fit["exclude"] and set(fit["exclude"]) <= set(by_path)
    assert fit["larger_windows"] == ["flash", "pro"]  # they hold the whole corpus
    # The suggestion was checked on the rendered prompt: applying it fits, exactly.
    excludes = [a for s in fit["suggestions"] for a in ("--exclude", s["path"])]
    after = json.loads(cli(env, *args, "--backend", "small", *excludes))
    assert after["fits"] is True
    assert after["prompt_tokens"] == fit["prompt_tokens_after"]
    assert after["prompt_tokens"] + 100 <= window

    # From a terminal, --exclude on ask applies it to the session and the answer fits.
    server.enqueue_reply(answer="It computes more values.")
    cli(env, "ask", "--session", "s", "-q", "And f1?", "--backend", "small", "--max-tokens",
        "100", *excludes)  # fmt: skip
    export = json.loads(cli(env, "export", "s", "--format", "json"))
    excluded = {c["path"] for c in export["corpus"] if c["status"] == "excluded"}
    assert excluded == set(fit["exclude"])
    assert export["corpus_tokens"] == sum(t for p, t in by_path.items() if p not in excluded)
    (listed,) = json.loads(cli(env, "sessions", "--json"))
    assert listed["prompt_tokens"] == export["corpus_tokens"]


def test_an_exclude_that_names_nothing_is_refused_with_the_reason(
    tmp_path: Path, server: DeepSeekServer
) -> None:
    repo = code_tree(tmp_path)
    env = {
        "home": tmp_path / "home",
        "config": fixture_config(tmp_path / "c.toml", server.base_url),
    }
    proc = run_cli(
        ["quote", str(repo), "-q", "Q", "--exclude", "repo/nope/"],
        home=env["home"], config=env["config"],
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--exclude repo/nope/: no document has that path" in proc.stderr
