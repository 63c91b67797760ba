"""DeepSeek V4 and V4.1 (Engram) in MLX through mlx-vlm, on ``mlx[cpu]``.

Random-weight checkpoints of the real architectures are built by the test
(``tests.fixtures.tiny_v4``) and run through ``MlxBackend``: the backend picks
mlx-vlm by ``model_type``, reads the corpus in chunks with progress, streams,
stops, saves the corpus state and restores it (in memory, and from the store
after reopening). Greedy decoding makes the proof exact: an answer continued
from a restored state must equal the one computed from scratch, token for token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import Cancelled, Event, LocalEngineError, Request, TextDelta, Usage
from backends.local.memory_plan import plan_for_model
from backends.local.mlx_local import MlxBackend
from backends.local.mlx_vlm_engine import MlxVlmEngine
from tests.fixtures.local_backend import corpus_request, make_store, stop_after
from tests.fixtures.tiny_v4 import V4_ARCHES, TinyV4, build_tiny_v4
from tests.integration.backend_contract import collect, text_of

pytestmark = pytest.mark.mlx

pytest.importorskip("mlx_vlm")

CORPUS = "".join(f"Clause {i}: the fee for lot {i} is {7 * i} euros.\n" for i in range(25))


@pytest.fixture(scope="module", params=V4_ARCHES)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TinyV4:
    arch = str(request.param)
    return build_tiny_v4(tmp_path_factory.mktemp(arch) / arch, arch=arch)


@pytest.fixture()
def backend(tiny: TinyV4, tmp_path: Path) -> Iterator[MlxBackend]:
    b = MlxBackend(tiny.path, store=make_store(tmp_path / "kv"), prefill_step=64)
    yield b
    b.close()


def ask(ids: list[int], prefix: int, max_tokens: int = 12) -> Request:
    return corpus_request(ids, prefix, model="tiny", max_tokens=max_tokens)


def usage_of(events: list[Event]) -> Usage:
    (usage,) = [e for e in events if isinstance(e, Usage)]
    return usage


def test_v4_checkpoints_load_on_mlx_vlm(backend: MlxBackend, tiny: TinyV4) -> None:
    assert backend.engine_type is MlxVlmEngine
    backend.load()
    assert backend.architecture == tiny.arch
    assert backend.context_window == tiny.context
    assert backend.eos_token_id == tiny.eos
    # Lectern's V4 tokenizer and the checkpoint's agree on ids
    assert backend.tokenize("Clause 3: the fee") == tiny.encode("Clause 3: the fee")


def test_corpus_state_is_saved_then_restored_exactly(
    backend: MlxBackend, tiny: TinyV4, tmp_path: Path
) -> None:
    ids, prefix = tiny.prompt(CORPUS, "What is the fee for lot 4?", thinking=False)
    seen: list[tuple[int, int]] = []
    cold = MlxBackend(tiny.path, prefill_step=64, prefill_progress=lambda d, t: seen.append((d, t)))
    with cold:
        reference, err = collect(cold, ask(ids, 0))  # no prefix: evaluated from scratch
    assert err is None, err
    assert seen and seen[-1] == (len(ids) - 1, len(ids)) and len(seen) >= len(ids) // 64
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    first, err = collect(backend, ask(ids, prefix))
    assert err is None, err
    stats = backend.last_stats
    assert stats is not None and stats.source == "cold" and stats.saved_state is not None
    assert text_of(first) == text_of(reference) != ""
    assert usage_of(first).cache_hit == 0

    second, err = collect(backend, ask(ids, prefix))  # from the snapshot in memory
    assert err is None, err
    stats = backend.last_stats
    assert stats is not None and stats.source == "memory" and stats.reused == prefix
    assert usage_of(second).cache_hit == prefix
    assert text_of(second) == text_of(reference)

    backend.close()  # reopen: the state comes from the store's file
    third, err = collect(backend, ask(ids, prefix))
    assert err is None, err
    stats = backend.last_stats
    assert stats is not None and stats.source == "restored" and stats.reused == prefix
    assert usage_of(third).cache_miss == len(ids) - prefix
    assert text_of(third) == text_of(reference)

    other, _ = tiny.prompt(CORPUS, "And lot 9?", thinking=True)
    fourth, err = collect(backend, ask(other, prefix))
    assert usage_of(fourth).cache_hit == prefix  # another question, same corpus
    assert err is None, err
    stats = backend.last_stats
    assert stats is not None and stats.source == "memory" and stats.reused == prefix


def test_stop_between_prefill_chunks_and_between_tokens(tiny: TinyV4, tmp_path: Path) -> None:
    ids, prefix = tiny.prompt(CORPUS, "Q?", thinking=False)
    store = make_store(tmp_path / "kv")
    req = ask(ids, prefix)
    seen: list[int] = []

    def on_progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 64:
            req.cancel.cancel()  # the engine checks before the next chunk

    with MlxBackend(tiny.path, store=store, prefill_step=64, prefill_progress=on_progress) as b:
        events, err = collect(b, req)
        assert isinstance(err, Cancelled), err
        assert not any(isinstance(e, TextDelta) for e in events)
        assert seen == [64] and b.last_stats is None
        assert store.entries() == []  # a stopped corpus read saves nothing

        b._prefill_progress = None
        req = ask(ids, prefix, max_tokens=200)
        got: list[Event] = []
        with pytest.raises(Cancelled):
            for event in b.stream(req):
                got.append(event)
                if sum(isinstance(e, TextDelta) for e in got) == 2:
                    req.cancel.cancel()
        assert 2 <= usage_of(got).completion < 200


def test_memory_plan_is_within_ten_percent_of_the_files(tiny: TinyV4) -> None:
    plan = plan_for_model(tiny.path, tokens=4096)
    files = sum(p.stat().st_size for p in tiny.path.glob("*.safetensors"))
    assert abs(plan.weights_bytes - files) <= 0.1 * files
    assert plan.kv_bytes_per_token > 0 and plan.compute_bytes > 0
    assert plan.needed_bytes > plan.weights_bytes + 2 * 4096 * plan.kv_bytes_per_token


def test_a_load_that_would_not_fit_is_refused(
    tiny: TinyV4, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before the weights are read, with the memory sentence; and a question
    whose corpus would not fit is refused before it is read."""
    files = sum(p.stat().st_size for p in tiny.path.glob("*.safetensors"))
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(files // 2))
    with MlxBackend(tiny.path) as b, pytest.raises(LocalEngineError) as refused:
        b.load()
    assert "does not fit" in str(refused.value) and "smaller quantisation" in str(refused.value)

    ids, prefix = tiny.prompt(CORPUS, "What is the fee for lot 3?", thinking=False)
    enough = plan_for_model(tiny.path, tokens=0).needed_bytes  # the weights and a chunk
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(enough + 1))
    with MlxBackend(tiny.path) as b:
        b.load()
        _, err = collect(b, ask(ids, prefix, max_tokens=60000))
    assert isinstance(err, LocalEngineError) and "fewer documents" in err.message


@pytest.mark.slow
def test_lectern_ask_answers_from_a_v4_checkpoint_and_reuses_the_saved_corpus(
    tmp_path: Path,
) -> None:
    """Acceptance: ``lectern ask`` on a V4-architecture MLX checkpoint; the second
    question (a new process) starts from the corpus state the first one saved."""
    import json

    from backends.local.kv_store import KVStore
    from tests.fixtures.lectern_env import run_cli

    model = build_tiny_v4(tmp_path / "model", arch="deepseek_v4")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fees.txt").write_text(CORPUS)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.mac]\nkind = "mlx"\nmodel_path = "{model.path}"\n'
        'profile = "deepseek-v4-flash-gguf"\ncontext = 65536\n\n[cascade]\ndraft = "mac"\n'
    )
    runs = []
    for question in ("What is the fee for lot 3?", "And for lot 8?"):
        proc = run_cli(
            ["ask", str(docs), "-q", question, "--session", "v4", "--max-tokens", "8", "--json"],
            home=tmp_path / "home",
            config=config,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    first, second = runs
    assert first["backend"] == "mac" and first["answer"].strip()
    assert first["usage"]["cache_hit"] == 0
    (index,) = list((tmp_path / "home").rglob("index.sqlite3"))
    entries = KVStore(index.parent, 1 << 30).entries()
    assert len(entries) == 1  # one corpus state, saved by the first run
    assert entries[0].key.engine.startswith("mlx-vlm ")
    assert entries[0].tokens == second["usage"]["cache_hit"]  # exactly the corpus
    # the second process restored it: only the question was evaluated
    assert second["usage"]["cache_hit"] > 0
    assert second["usage"]["cache_miss"] < first["usage"]["prompt"] // 4


def test_backends_check_json_gives_the_memory_plan(tiny: TinyV4, tmp_path: Path) -> None:
    import json

    from tests.fixtures.lectern_env import run_cli

    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.mac]\nkind = "mlx"\nmodel_path = "{tiny.path}"\n'
        'profile = "deepseek-v4-flash-gguf"\ncontext = 65536\n\n[cascade]\ndraft = "mac"\n'
    )
    proc = run_cli(["backends", "--check", "--json"], home=tmp_path / "home", config=config)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["backends"]
    memory = row["memory"]
    files = sum(p.stat().st_size for p in tiny.path.glob("*.safetensors"))
    assert abs(memory["weights_bytes"] - files) <= 0.1 * files
    assert memory["kv_bytes_per_token"] > 0 and memory["available_bytes"] > 0
    assert memory["needed_bytes"] >= memory["weights_bytes"] + 65536 * memory["kv_bytes_per_token"]
    assert memory["fits"] is True and "GB" in memory["message"]
    assert memory["message"].startswith("A full 65,536-token context needs")  # no corpus here

    small = run_cli(
        ["backends", "--check", "--json"],
        home=tmp_path / "home",
        config=config,
        env={"LECTERN_MEMORY_AVAILABLE_BYTES": str(files // 2)},
    )
    (row,) = json.loads(small.stdout)["backends"]
    assert row["memory"]["fits"] is False
    assert "does not fit" in row["memory"]["message"]


def test_the_quote_says_what_the_corpus_needs_against_this_machine(tmp_path: Path) -> None:
    import json

    from tests.fixtures.lectern_env import run_cli

    model = build_tiny_v4(tmp_path / "model", arch="deepseek_v4")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fees.txt").write_text(CORPUS)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.mac]\nkind = "mlx"\nmodel_path = "{model.path}"\n'
        'profile = "deepseek-v4-flash-gguf"\ncontext = 65536\n\n[cascade]\ndraft = "mac"\n'
    )
    args = ["quote", str(docs), "-q", "What is the fee for lot 3?", "--session", "q", "--json"]
    proc = run_cli(args, home=tmp_path / "home", config=config)
    assert proc.returncode == 0, proc.stderr
    (candidate,) = json.loads(proc.stdout)["candidates"]
    memory = candidate["memory"]
    assert memory["fits"] is True
    assert "needs" in memory["message"] and "GB" in memory["message"]
    # the sentence is about what this question holds, the figure the quote shows
    holds = candidate["prompt_tokens"] + candidate["output_expected"]
    assert memory["message"].startswith(
        f"This question ({holds:,} tokens with the corpus and answer) needs"
    ), memory["message"]

    tight = run_cli(
        args, home=tmp_path / "home", config=config, env={"LECTERN_MEMORY_AVAILABLE_BYTES": "1000"}
    )
    (candidate,) = json.loads(tight.stdout)["candidates"]
    assert candidate["memory"]["fits"] is False
    assert "fewer documents" in candidate["memory"]["message"]


def test_a_stopped_corpus_read_resumes_from_its_last_checkpoint(
    tiny: TinyV4, tmp_path: Path
) -> None:
    """A long prefill keeps checkpoints; stopped (or crashed, or closed), the next
    read starts at the last one, and the answer is what an unbroken read gives."""
    ids, prefix = tiny.prompt(CORPUS, "What is the fee for lot 6?", thinking=False)
    unbroken = make_store(tmp_path / "unbroken")
    with MlxBackend(tiny.path, store=unbroken, prefill_step=32, checkpoint_tokens=64) as plain:
        reference, err = collect(plain, ask(ids, prefix))  # the same chunks, never stopped
    assert err is None, err

    store = make_store(tmp_path / "kv")
    req = ask(ids, prefix)
    with MlxBackend(
        tiny.path,
        store=store,
        prefill_step=32,
        checkpoint_tokens=64,
        prefill_progress=stop_after(req, 200),
    ) as b:
        _, err = collect(b, req)
        assert isinstance(err, Cancelled), err
    saved = sorted(e.tokens for e in store.entries())
    assert saved == [64, 128, 192]  # one checkpoint per 64 tokens read

    seen: list[int] = []
    with MlxBackend(
        tiny.path,
        store=store,
        prefill_step=32,
        checkpoint_tokens=64,
        prefill_progress=lambda done, total: seen.append(done),
    ) as b:  # a new process would do the same: only the files carry the read over
        events, err = collect(b, ask(ids, prefix))
        assert err is None, err
        stats = b.last_stats
        assert stats is not None and stats.source == "cold" and stats.reused == 192
        assert seen[0] == 192  # resumed, not started again
        assert usage_of(events).cache_miss == len(ids) - 192
    assert text_of(events) == text_of(reference)
    assert [e.tokens for e in store.entries()] == [prefix]  # checkpoints dropped
