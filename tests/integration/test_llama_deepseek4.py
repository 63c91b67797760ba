"""llama.cpp in process with a random-weight GGUF of the ``deepseek4`` architecture
(DeepSeek V4), written by the test: load, V4 token ids counted with the GGUF's own
vocabulary, prefill with progress, streaming, Stop, the corpus state saved and
restored after reopening, and the memory plan against the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Cancelled, Event, LocalEngineError, Request, TextDelta, Usage
from backends.local.llama_cpp import LlamaCppBackend
from backends.local.memory_plan import plan_for_model
from tests.fixtures.local_backend import corpus_request, make_store, stop_after
from tests.integration.backend_contract import collect, text_of

pytestmark = pytest.mark.llama

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

CORPUS = "".join(f"Clause {i}: the fee for lot {i} is {7 * i} euros.\n" for i in range(25))


@pytest.fixture(scope="module")
def deepseek4_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.tiny_deepseek4_gguf import build_tiny_deepseek4_gguf

    return build_tiny_deepseek4_gguf(tmp_path_factory.mktemp("ds4") / "tiny-deepseek4.gguf")


@pytest.fixture()
def backend(deepseek4_gguf: Path, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    b = LlamaCppBackend(deepseek4_gguf, n_ctx=2048, n_batch=64, store=make_store(tmp_path))
    yield b
    b.close()


def v4_prompt(question: str) -> tuple[list[int], int]:
    """Lectern's V4 layout: BOS corpus <User> question <Assistant></think>."""
    from app.core.tokens import deepseek_v4

    tc = deepseek_v4()
    prefix = [tc.special_id("<｜begin▁of▁sentence｜>"), *tc.encode(CORPUS)]
    tail = [
        tc.special_id("<｜User｜>"),
        *tc.encode(question),
        tc.special_id("<｜Assistant｜>"),
        tc.special_id("</think>"),
    ]
    return prefix + tail, len(prefix)


def ask(ids: list[int], prefix: int, max_tokens: int = 8) -> Request:
    return corpus_request(ids, prefix, model="ds4", max_tokens=max_tokens)


def usage_of(events: list[Event]) -> Usage:
    (usage,) = [e for e in events if isinstance(e, Usage)]
    return usage


def test_deepseek4_gguf_counts_with_its_own_vocabulary_like_the_v4_renderer(
    backend: LlamaCppBackend,
) -> None:
    from app.core.tokens import deepseek_v4

    backend.load()
    assert backend.architecture == "deepseek4"
    text = "Clause 12: the fee is 84 euros — payable in 30 days (see §4.2)."
    assert backend.tokenize(text) == deepseek_v4().encode(text)
    assert backend.bos_token_id == deepseek_v4().special_id("<｜begin▁of▁sentence｜>")


def test_deepseek4_prefill_stream_save_and_restore(deepseek4_gguf: Path, tmp_path: Path) -> None:
    ids, prefix = v4_prompt("What is the fee for lot 4?")
    seen: list[int] = []
    store_dir = tmp_path / "kv"
    first = LlamaCppBackend(
        deepseek4_gguf,
        n_ctx=2048,
        n_batch=64,
        store=make_store(store_dir),
        prefill_progress=lambda done, total: seen.append(done),
    )
    with first:
        events, err = collect(first, ask(ids, prefix))
        assert err is None, err
        assert first.last_stats is not None and first.last_stats.source == "cold"
        assert first.last_stats.saved_state is not None
    assert len(seen) >= prefix // 64 and seen == sorted(seen)
    answer = text_of(events)
    assert usage_of(events).cache_miss == len(ids)

    with LlamaCppBackend(deepseek4_gguf, n_ctx=2048, n_batch=64, store=make_store(store_dir)) as b:
        again, err = collect(b, ask(ids, prefix))  # a new Llama: only the file carries it
        assert err is None, err
        assert b.last_stats is not None and b.last_stats.source == "restored"
        assert usage_of(again).cache_hit == prefix
        assert text_of(again) == answer  # greedy: the restored state answers identically


def test_deepseek4_stop_between_tokens(backend: LlamaCppBackend) -> None:
    ids, prefix = v4_prompt("Tell me everything.")
    req = ask(ids, prefix, max_tokens=200)
    got: list[Event] = []
    with pytest.raises(Cancelled):
        for event in backend.stream(req):
            got.append(event)
            if sum(isinstance(e, TextDelta) for e in got) == 2:
                req.cancel.cancel()
    assert 2 <= usage_of(got).completion < 200


def test_deepseek4_memory_plan_is_what_llama_cpp_allocates(deepseek4_gguf: Path) -> None:
    """The plan made before loading (llama.cpp's memory-fit pass) is, buffer for
    buffer, what the real load then allocates; the weights are the file."""
    from backends.local.llama_engine import context_settings

    with LlamaCppBackend(deepseek4_gguf, n_ctx=4096, n_batch=128) as b:
        b.load()
        allocated = b._engine().call(lambda engine: engine.allocated)
        plan = plan_for_model(deepseek4_gguf, tokens=4096, llama=context_settings(b._config))
    assert plan.source == "llama.cpp" and plan.tokens == 4096 and plan.kv_copies == 1
    assert allocated is not None
    assert plan.kv_bytes == allocated.kv_bytes
    assert plan.compute_bytes == allocated.compute_bytes
    size = deepseek4_gguf.stat().st_size
    assert plan.weights_bytes == size
    assert plan.engine_bytes > 30 << 20  # V4's 129K-token vocabulary and its merges


def test_deepseek4_at_flash_size_plan_from_llama_cpp(tmp_path: Path) -> None:
    """V4 Flash's own shape (43 layers, 64 heads of 512, 4-bit experts), written as a
    GGUF whose weights are a sparse hole: llama.cpp's memory-fit pass reads no
    weights, so this is its plan for the real model, as docs/local-models.md quotes."""
    from backends.local.llama_memory import ContextSettings
    from tests.fixtures.tiny_deepseek4_gguf import build_shaped_deepseek4_gguf

    path = build_shaped_deepseek4_gguf(tmp_path / "flash-shape.gguf")
    mac = (512 << 30, "the GPU wired limit", "this Mac")

    def plan(n_ctx: int, flash: bool) -> Any:
        settings = ContextSettings(n_ctx=n_ctx, n_batch=512, n_gpu_layers=0, flash_attn=flash)
        return plan_for_model(path, tokens=n_ctx, llama=settings, available=mac)

    million = plan(1 << 20, True)
    assert million.source == "llama.cpp"
    assert 150e9 < million.weights_bytes < 175e9
    assert 6.5e9 < million.kv_bytes < 7.2e9  # the compressed caches: ~6.6 KB a token
    assert million.compute_bytes < 2.5e9  # with flash attention (a Mac's default)
    assert plan(1 << 20, False).compute_bytes > 30e9  # without: every layer's scores
    tenth = plan(102400, True)
    assert 0.09 < tenth.kv_bytes / million.kv_bytes < 0.12


def test_deepseek4_load_that_would_not_fit_is_refused(
    deepseek4_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before anything is allocated, with the memory sentence, never an OOM."""
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(100 << 20))
    b = LlamaCppBackend(deepseek4_gguf, n_ctx=4096, n_batch=128)
    with b, pytest.raises(LocalEngineError) as refused:
        b.load()
    message = str(refused.value)
    assert "does not fit" in message and "fewer documents" in message
    assert "smaller quantisation" in message


def test_deepseek4_stopped_corpus_read_resumes_from_its_last_checkpoint(
    deepseek4_gguf: Path, tmp_path: Path
) -> None:
    """A long read keeps checkpoints (llama.cpp's sequence state at every 64 tokens
    here); stopped (or crashed, or closed), a new backend resumes at the last one, and
    answers as an unbroken read does."""
    ids, prefix = v4_prompt("What is the fee for lot 6?")

    def backend(store: Any, **kw: Any) -> LlamaCppBackend:
        return LlamaCppBackend(
            deepseek4_gguf, n_ctx=2048, n_batch=32, store=store, checkpoint_tokens=64, **kw
        )

    with backend(make_store(tmp_path / "unbroken")) as plain:
        reference, err = collect(plain, ask(ids, prefix))
    assert err is None, err

    store = make_store(tmp_path / "kv")
    req = ask(ids, prefix)
    with backend(store, prefill_progress=stop_after(req, 200)) as b:
        _, err = collect(b, req)
        assert isinstance(err, Cancelled), err
    assert sorted(e.tokens for e in store.entries()) == [64, 128, 192]

    with backend(store) as b:  # a new process would do the same: only the files carry over
        events, err = collect(b, ask(ids, prefix))
        assert err is None, err
        stats = b.last_stats
        assert stats is not None and stats.source == "cold" and stats.reused == 192
        assert usage_of(events).cache_miss == len(ids) - 192
    assert text_of(events) == text_of(reference)
    assert [e.tokens for e in store.entries()] == [prefix]  # checkpoints dropped
