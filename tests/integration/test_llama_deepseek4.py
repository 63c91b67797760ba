"""llama.cpp in process with a random-weight GGUF of the ``deepseek4`` architecture
(DeepSeek V4), written by the test: load, V4 token ids counted with the GGUF's own
vocabulary, prefill with progress, streaming, Stop, the corpus state saved and
restored after reopening, and the memory plan against the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import Cancelled, Event, Request, TextDelta, Usage
from backends.local.llama_cpp import LlamaCppBackend
from backends.local.memory_plan import plan_for_model
from tests.fixtures.local_backend import make_store
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
    return Request(
        messages=(),
        model="ds4",
        prompt_ids=tuple(ids),
        prefix_tokens=prefix,
        max_tokens=max_tokens,
        temperature=0.0,
    )


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


def test_deepseek4_memory_plan_is_within_ten_percent_of_the_file(deepseek4_gguf: Path) -> None:
    plan = plan_for_model(deepseek4_gguf, tokens=2048)
    size = deepseek4_gguf.stat().st_size
    assert abs(plan.weights_bytes - size) <= 0.1 * size
    assert plan.needed_bytes > plan.weights_bytes
