"""MLX in process (mlx[cpu]) with a tiny random-weight DeepSeek V4.1 model built by
the test: streaming, reasoning, usage, cancellation, errors, and saved corpus
prefix states (token counts prove what was reused).

The model (``tests.fixtures.tiny_mlx``) is random apart from planted scripts:
after ``<think>`` it reasons ``REASONING``, closes with ``</think>`` and answers
``ANSWER`` then EOS; after ``[<think>, "Still"]`` it reasons ``SPLIT_REASONING``,
spells ``</think>`` in three plain tokens and answers ``SPLIT_ANSWER``. Any
other context (such as a prompt ending with ``<｜Assistant｜>``) makes it write
random text until max_tokens.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import cast

import pytest

from backends.base import (
    BadRequest,
    Cancelled,
    ContextTooLong,
    Event,
    Finished,
    LocalEngineError,
    Message,
    ReasoningDelta,
    Request,
    TextDelta,
    ThinkingMode,
    Usage,
)
from backends.local.mlx_local import MlxBackend
from tests.fixtures.local_backend import make_store, run_python, source_of
from tests.fixtures.tiny_mlx import (
    ANSWER,
    REASONING,
    SPLIT_ANSWER,
    SPLIT_REASONING,
    TinyModel,
    build_tiny_mlx,
)
from tests.integration.backend_contract import BackendContract, collect, reasoning_of, text_of

pytestmark = pytest.mark.mlx

pytest.importorskip("mlx_lm")

CORPUS = "".join(f"Section {i}: the cap for item {i} is {3 * i} pounds.\n" for i in range(60))
OTHER_CORPUS = "".join(
    f"Clause {i}: deliveries to depot {i} leave at {i % 12} am.\n" for i in range(60)
)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_mlx(tmp_path_factory.mktemp("tiny-v41") / "tiny-v41")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_mlx(tmp_path_factory.mktemp("tiny-llama") / "tiny-llama", arch="llama")


@pytest.fixture(scope="module")
def plain(tiny: TinyModel) -> Iterator[MlxBackend]:
    """A backend without a state store (prefix states live in memory only)."""
    backend = MlxBackend(tiny.path)
    yield backend
    backend.close()


def request(
    ids: list[int], prefix: int = 0, *, max_tokens: int = 40, temperature: float = 0.0
) -> Request:
    return Request(
        messages=(),
        model="tiny",
        prompt_ids=tuple(ids),
        prefix_tokens=prefix,
        max_tokens=max_tokens,
        temperature=temperature,
    )


def open_prompt(tiny: TinyModel, corpus: str, question: str) -> tuple[list[int], int]:
    """The V4 layout without the think marker: no script follows, so the model
    writes random text (practically never EOS) until max_tokens."""
    prefix = [tiny.bos, *tiny.encode(corpus)]
    return [*prefix, tiny.user, *tiny.encode(question), tiny.assistant], len(prefix)


def usage_of(events: list[Event]) -> Usage:
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 1, events
    return usages[0]


def finish_of(events: list[Event]) -> str:
    assert isinstance(events[-1], Finished), events
    return events[-1].reason


# --- streaming and usage ------------------------------------------------------------


def test_thinking_prompt_streams_reasoning_then_answer_with_exact_usage(
    plain: MlxBackend, tiny: TinyModel
) -> None:
    ids, _ = tiny.prompt(CORPUS, "What is the cap for item 7?", thinking=True)
    events, err = collect(plain, request(ids))
    assert err is None, err
    assert reasoning_of(events) == REASONING
    assert text_of(events) == ANSWER
    assert finish_of(events) == "stop"
    kinds = [type(e) for e in events if isinstance(e, ReasoningDelta | TextDelta)]
    assert kinds.index(TextDelta) == kinds.count(ReasoningDelta)  # reasoning first
    reasoning_tokens = len(tiny.encode(REASONING)) + 1  # + </think>
    assert usage_of(events) == Usage(
        prompt=len(ids),
        cache_hit=0,
        cache_miss=len(ids),
        completion=reasoning_tokens + len(tiny.encode(ANSWER)),  # EOS is not counted
        reasoning=reasoning_tokens,
    )


def test_non_thinking_prompt_streams_only_the_answer(plain: MlxBackend, tiny: TinyModel) -> None:
    ids, _ = tiny.prompt(CORPUS, "What is the cap for item 7?", thinking=False)
    events, err = collect(plain, request(ids))
    assert err is None, err
    assert not [e for e in events if isinstance(e, ReasoningDelta)]
    assert text_of(events) == ANSWER
    assert usage_of(events) == Usage(len(ids), 0, len(ids), len(tiny.encode(ANSWER)), 0)
    assert finish_of(events) == "stop"


def test_close_tag_spelled_across_tokens_in_a_prompt_ending_inside_thinking(
    plain: MlxBackend, tiny: TinyModel
) -> None:
    ids, _ = tiny.prompt(CORPUS, "Which item is heaviest?", thinking=True)
    ids.append(tiny.split_start)  # the prompt ends inside thinking, after a word
    events, err = collect(plain, request(ids, temperature=1.0))
    assert err is None, err
    assert reasoning_of(events) == SPLIT_REASONING
    assert text_of(events) == SPLIT_ANSWER
    assert "think" not in "".join(e.text for e in events if isinstance(e, TextDelta))
    usage = usage_of(events)
    close_tag = len(tiny.encode("</think>"))
    assert usage.reasoning == len(tiny.encode(SPLIT_REASONING)) + close_tag
    assert usage.completion == usage.reasoning + len(tiny.encode(SPLIT_ANSWER))


def test_max_tokens_finishes_with_length(plain: MlxBackend, tiny: TinyModel) -> None:
    ids, _ = open_prompt(tiny, CORPUS, "Tell me everything.")
    events, err = collect(plain, request(ids, max_tokens=5))
    assert err is None, err
    assert finish_of(events) == "length"
    assert text_of(events)
    assert usage_of(events) == Usage(len(ids), 0, len(ids), 5, 0)


def test_messages_only_request_is_rendered_in_the_deepseek_layout(plain: MlxBackend) -> None:
    req = Request(
        messages=(Message("system", "Be brief."), Message("user", "What is the cap?")),
        model="tiny",
        mode=ThinkingMode.HIGH,
        temperature=0.0,
    )
    events, err = collect(plain, req)
    assert err is None, err
    assert (reasoning_of(events), text_of(events)) == (REASONING, ANSWER)


def test_bad_prefix_tokens_is_a_bad_request(plain: MlxBackend, tiny: TinyModel) -> None:
    ids, _ = tiny.prompt(CORPUS, "Q?", thinking=False)
    events, err = collect(plain, request(ids, prefix=len(ids) + 1))
    assert isinstance(err, BadRequest)
    assert "prefix_tokens" in err.message
    assert events == []


def test_context_overflow_is_refused_before_evaluating(tiny: TinyModel) -> None:
    with MlxBackend(tiny.path, context_window=300) as small:
        assert small.context_window == 300
        ids, prefix = open_prompt(tiny, CORPUS[:400], "Q?")
        assert 100 < len(ids) < 250
        events, err = collect(small, request(ids, prefix, max_tokens=300 - len(ids) + 1))
        assert isinstance(err, ContextTooLong)
        assert "300" in err.message and "max_tokens" in err.message
        assert events == [] and small.last_stats is None
        events, err = collect(small, request(ids, prefix, max_tokens=300 - len(ids)))
        assert err is None, err


def test_tokenize_and_detokenize(plain: MlxBackend, tiny: TinyModel) -> None:
    text = "A document that mentions <think> and <｜User｜> literally."
    plain_ids = plain.tokenize(text)
    assert plain_ids == tiny.encode(text)  # special spellings stay text
    assert tiny.think not in plain_ids
    assert tiny.think in plain.tokenize(text, special=True)
    assert plain.tokenize("x", add_bos=True)[0] == tiny.bos
    assert plain.detokenize(plain_ids) == text
    assert plain.detokenize([tiny.think, *tiny.encode("hi")], special=True) == "<think>hi"
    assert (plain.bos_token_id, plain.eos_token_id) == (tiny.bos, tiny.eos)
    assert plain.architecture == "deepseek_v41"
    assert plain.chat_template() is None  # the V4 tokenizer ships none: Lectern renders


def test_tokenizer_and_keys_do_not_wait_for_a_running_answer(
    plain: MlxBackend, tiny: TinyModel
) -> None:
    ids, prefix = open_prompt(tiny, CORPUS, "Ramble on.")
    req = request(ids, max_tokens=5000)
    stream = plain.stream(req)
    events: list[Event] = [next(e for e in stream if isinstance(e, TextDelta))]  # busy now
    assert plain.tokenize("cap") == tiny.encode("cap")
    assert plain.prefix_key(ids[:prefix]) is not None
    req.cancel.cancel()
    with pytest.raises(Cancelled):  # still running: the calls above did not wait for it
        events.extend(stream)


# --- cancellation -------------------------------------------------------------------------


def test_cancel_mid_generation_keeps_exactly_what_was_streamed(
    plain: MlxBackend, tiny: TinyModel
) -> None:
    ids, _ = open_prompt(tiny, CORPUS, "Ramble on.")
    full, err = collect(plain, request(ids, max_tokens=40))
    assert err is None and finish_of(full) == "length"
    req = request(ids, max_tokens=40)
    events: list[Event] = []
    with pytest.raises(Cancelled) as raised:
        for event in plain.stream(req):
            events.append(event)
            if sum(isinstance(e, TextDelta) for e in events) == 3:
                req.cancel.cancel()
    assert "kept" in raised.value.message
    kept = text_of(events)
    assert kept and text_of(full).startswith(kept)  # the same greedy text, cut short
    usage = usage_of(events)
    assert 3 <= usage.completion < 40
    assert usage.cache_miss == len(ids)
    assert not any(isinstance(e, Finished) for e in events)


def test_cancel_before_start_evaluates_and_saves_nothing(tiny: TinyModel, tmp_path: Path) -> None:
    store = make_store(tmp_path / "states")
    with MlxBackend(tiny.path, store=store) as backend:
        ids, prefix = tiny.prompt(CORPUS, "Q?", thinking=False)
        req = request(ids, prefix)
        req.cancel.cancel()
        events, err = collect(backend, req)
        assert isinstance(err, Cancelled)
        assert events == []
        assert store.entries() == []
        assert backend.last_stats is None


def test_abandoned_stream_stops_and_the_next_question_works(
    plain: MlxBackend, tiny: TinyModel
) -> None:
    def generated() -> int:  # white-box: the engine's running count of sampled tokens
        return plain._engine().call(lambda engine: engine.generated_total)

    ids, _ = open_prompt(tiny, CORPUS, "Ramble on.")
    before = generated()
    stream = cast(Generator[Event, None, None], plain.stream(request(ids, max_tokens=500)))
    first = next(e for e in stream if isinstance(e, TextDelta))
    assert first.text
    stream.close()  # the caller walks away: the engine must stop early
    answer_ids, _ = tiny.prompt(CORPUS, "Q?", thinking=False)
    events, err = collect(plain, request(answer_ids))
    assert err is None and text_of(events) == ANSWER
    abandoned = generated() - before - usage_of(events).completion
    assert 1 <= abandoned < 500


# --- saved prefix states ----------------------------------------------------------------


def test_second_question_evaluates_only_its_suffix(tiny: TinyModel, tmp_path: Path) -> None:
    store = make_store(tmp_path / "states")
    with MlxBackend(tiny.path, store=store) as backend:
        ids1, prefix = tiny.prompt(CORPUS, "What is the cap for item 3?", thinking=True)
        events, err = collect(backend, request(ids1, prefix))
        assert err is None and text_of(events) == ANSWER
        assert usage_of(events).cache_hit == 0 and usage_of(events).cache_miss == len(ids1)
        stats = backend.last_stats
        assert stats is not None and stats.source == "cold"
        assert stats.saved_state is not None and stats.saved_state.is_file()

        ids2, prefix2 = tiny.prompt(CORPUS, "And for item 40, please?", thinking=True)
        assert prefix2 == prefix and ids2[:prefix] == ids1[:prefix]
        events, err = collect(backend, request(ids2, prefix))
        assert err is None
        assert (reasoning_of(events), text_of(events)) == (REASONING, ANSWER)
        usage = usage_of(events)
        assert usage.cache_hit == prefix
        assert usage.cache_miss == len(ids2) - prefix  # only the suffix was evaluated
        assert source_of(backend) == "memory"


def test_new_backend_restores_the_saved_state_and_evaluates_only_the_suffix(
    tiny: TinyModel, tmp_path: Path
) -> None:
    store_dir = tmp_path / "states"
    ids1, prefix = tiny.prompt(CORPUS, "What is the cap for item 3?", thinking=False)
    with MlxBackend(tiny.path, store=make_store(store_dir)) as first:
        _, err = collect(first, request(ids1, prefix))
        assert err is None and source_of(first) == "cold"
    ids2, _ = tiny.prompt(CORPUS, "Is item 9 heavier?", thinking=False)
    with MlxBackend(tiny.path, store=make_store(store_dir)) as second:
        events, err = collect(second, request(ids2, prefix))
        assert err is None and text_of(events) == ANSWER
        assert source_of(second) == "restored"
        usage = usage_of(events)
        assert (usage.cache_hit, usage.cache_miss) == (prefix, len(ids2) - prefix)


def test_a_new_process_restores_the_state(tiny: TinyModel, tmp_path: Path) -> None:
    store_dir = tmp_path / "states"
    ids, prefix = open_prompt(tiny, CORPUS, "Summarise the caps.")
    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        cold, err = collect(backend, request(ids, prefix, max_tokens=12))
        assert err is None
    script = """
import json, sys
from backends.base import Request, TextDelta, Usage
from backends.local.kv_store import KVStore
from backends.local.mlx_local import MlxBackend
ids, prefix = json.loads(sys.argv[1])
with MlxBackend(sys.argv[2], store=KVStore(sys.argv[3], 1 << 30)) as b:
    events = list(b.stream(Request(messages=(), model="tiny", prompt_ids=tuple(ids),
                                   prefix_tokens=prefix, max_tokens=12, temperature=0.0)))
    u = next(e for e in events if isinstance(e, Usage))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    print(json.dumps([u.cache_hit, u.cache_miss, b.last_stats.source, text]))
"""
    # run_python also fails on an MLX abort at interpreter exit
    hit, miss, source, text = run_python(
        script, json.dumps([ids, prefix]), str(tiny.path), str(store_dir)
    )
    assert (hit, miss, source) == (prefix, len(ids) - prefix, "restored")
    assert text == text_of(cold)


def test_restored_state_answers_exactly_like_a_cold_prefill(
    tiny: TinyModel, tmp_path: Path
) -> None:
    store_dir = tmp_path / "states"
    ids, prefix = open_prompt(tiny, CORPUS, "Summarise the caps.")
    with MlxBackend(tiny.path, store=make_store(store_dir)) as cold_backend:
        cold, err = collect(cold_backend, request(ids, prefix, max_tokens=24))
        assert err is None and source_of(cold_backend) == "cold"
    with MlxBackend(tiny.path, store=make_store(store_dir)) as warm_backend:
        warm, err = collect(warm_backend, request(ids, prefix, max_tokens=24))
        assert err is None and source_of(warm_backend) == "restored"
        # The random model's text depends on the corpus, so equality means something:
        other, _ = open_prompt(tiny, OTHER_CORPUS, "Summarise the caps.")
        different, err = collect(warm_backend, request(other, prefix, max_tokens=24))
        assert err is None
    assert text_of(warm) == text_of(cold) and len(text_of(cold)) > 10
    assert text_of(different) != text_of(cold)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_state_file_is_detected_and_rebuilt(
    tiny: TinyModel, tmp_path: Path, damage: str
) -> None:
    store_dir = tmp_path / "states"
    ids, prefix = tiny.prompt(CORPUS, "Q?", thinking=False)
    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        _, err = collect(backend, request(ids, prefix))
        assert err is None
        key = backend.prefix_key(ids[:prefix])
    assert key is not None
    state = make_store(store_dir).lookup(key)
    assert state is not None
    data = bytearray(state.path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray()
    state.path.write_bytes(bytes(data))

    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        events, err = collect(backend, request(ids, prefix))
        assert err is None and text_of(events) == ANSWER
        assert source_of(backend) == "cold"  # the damaged state was not trusted
        assert usage_of(events).cache_hit == 0
    rebuilt = make_store(store_dir).lookup(key)
    assert rebuilt is not None and rebuilt.path.read_bytes() != bytes(data)
    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        events, err = collect(backend, request(ids, prefix))
        assert err is None and source_of(backend) == "restored"


def test_state_saved_under_another_key_is_rejected_and_rebuilt(
    tiny: TinyModel, tmp_path: Path
) -> None:
    """A file whose checksum is fine but which holds another prefix's state
    (of the same length, so only the key can tell them apart)."""
    store_dir = tmp_path / "states"
    ids_a, prefix_a = tiny.prompt(CORPUS, "Q?", thinking=False)
    ids_b, prefix_b = tiny.prompt(
        CORPUS.replace("is 21 pounds", "is 24 pounds"), "Q?", thinking=False
    )
    assert prefix_a == prefix_b and ids_a != ids_b
    store = make_store(store_dir)
    with MlxBackend(tiny.path, store=store) as backend:
        _, err = collect(backend, request(ids_a, prefix_a))
        assert err is None
        key_a = backend.prefix_key(ids_a[:prefix_a])
        key_b = backend.prefix_key(ids_b[:prefix_b])
    assert key_a is not None and key_b is not None and key_a != key_b
    state_a = store.lookup(key_a)
    assert state_a is not None
    forged = store.temp_path(key_b)
    forged.write_bytes(state_a.path.read_bytes())
    store.commit(key_b, forged, prefix_b)  # indexed under B with a matching sha256
    assert store.lookup(key_b) is not None

    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        events, err = collect(backend, request(ids_b, prefix_b))
        assert err is None and text_of(events) == ANSWER
        assert source_of(backend) == "cold"
        assert usage_of(events).cache_hit == 0
    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        _, err = collect(backend, request(ids_b, prefix_b))
        assert err is None and source_of(backend) == "restored"


def test_states_are_keyed_by_thinking_mode(plain: MlxBackend, tiny: TinyModel) -> None:
    prefix_ids = [tiny.bos, *tiny.encode(CORPUS)]
    keys = {plain.prefix_key(prefix_ids, mode) for mode in ThinkingMode}
    assert None not in keys and len(keys) == len(ThinkingMode)


def test_prepare_prefix_warms_the_corpus_without_asking(tiny: TinyModel, tmp_path: Path) -> None:
    store_dir = tmp_path / "states"
    ids, prefix = tiny.prompt(CORPUS, "Q?", thinking=True)
    seen: list[tuple[int, int]] = []
    with MlxBackend(tiny.path, store=make_store(store_dir), prefill_step=128) as backend:
        report = backend.prepare_prefix(
            ids, prefix, mode=ThinkingMode.HIGH, progress=lambda d, t: seen.append((d, t))
        )
        assert (report.source, report.evaluated, report.prefix_tokens) == (
            "evaluated",
            prefix,
            prefix,
        )
        assert report.state_path is not None and report.state_path.is_file()
        assert report.state_bytes == report.state_path.stat().st_size
        assert seen[-1] == (prefix, prefix) and len(seen) >= prefix // 128
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        measured = backend.measured_prefill_tps
        assert measured is not None and measured > 0

        req = Request(
            messages=(),
            model="tiny",
            mode=ThinkingMode.HIGH,
            prompt_ids=tuple(ids),
            prefix_tokens=prefix,
            temperature=0.0,
        )
        events, err = collect(backend, req)
        assert err is None and text_of(events) == ANSWER
        assert usage_of(events).cache_hit == prefix and source_of(backend) == "memory"

    with MlxBackend(tiny.path, store=make_store(store_dir)) as backend:
        assert backend.measured_prefill_tps is not None  # recorded in the store
        report = backend.prepare_prefix(ids, prefix, mode=ThinkingMode.HIGH)
        assert (report.source, report.evaluated) == ("stored", 0)
        events, err = collect(backend, req)
        assert err is None and usage_of(events).cache_miss == len(ids) - prefix


def test_prepare_prefix_can_be_cancelled(tiny: TinyModel, tmp_path: Path) -> None:
    store = make_store(tmp_path / "states")
    ids, prefix = tiny.prompt(CORPUS, "Q?", thinking=False)
    with MlxBackend(tiny.path, store=store, prefill_step=64) as backend:
        from backends.base import CancelToken

        token = CancelToken()

        def progress(done: int, total: int) -> None:
            if done >= 128:
                token.cancel()

        with pytest.raises(Cancelled):
            backend.prepare_prefix(ids, prefix, cancel=token, progress=progress)
        assert store.entries() == []
        _, err = collect(backend, request(ids, prefix))
        assert err is None and source_of(backend) == "cold"


def test_plain_kv_cache_models_save_and_restore_too(tiny_llama: TinyModel, tmp_path: Path) -> None:
    store_dir = tmp_path / "states"
    ids, prefix = open_prompt(tiny_llama, CORPUS, "Summarise the caps.")
    with MlxBackend(tiny_llama.path, store=make_store(store_dir)) as backend:
        cold, err = collect(backend, request(ids, prefix, max_tokens=16))
        assert err is None and source_of(backend) == "cold"
        again, err = collect(backend, request(ids, prefix, max_tokens=16))
        assert err is None and source_of(backend) == "memory"
    with MlxBackend(tiny_llama.path, store=make_store(store_dir)) as backend:
        warm, err = collect(backend, request(ids, prefix, max_tokens=16))
        assert err is None and source_of(backend) == "restored"
        assert usage_of(warm).cache_miss == len(ids) - prefix
    assert text_of(cold) == text_of(again) == text_of(warm)


# --- loading and closing -------------------------------------------------------------------


def test_missing_model_folder(tmp_path: Path) -> None:
    backend = MlxBackend(tmp_path / "nowhere")
    with pytest.raises(LocalEngineError) as raised:
        backend.load()
    assert "No MLX model folder" in raised.value.message


def test_folder_without_weights(tmp_path: Path, tiny: TinyModel) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny.path / "config.json").read_bytes())
    with pytest.raises(LocalEngineError) as raised:
        MlxBackend(folder).load()
    assert "model*.safetensors" in raised.value.message


def test_unreadable_weights_fail_with_a_clear_message(tmp_path: Path, tiny: TinyModel) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny.path / name).read_bytes())
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    backend = MlxBackend(folder)
    with pytest.raises(LocalEngineError) as raised:
        backend.load()
    assert "Could not load the MLX model" in raised.value.message
    backend.close()


def test_close_frees_the_engine_thread_and_use_reloads(tiny: TinyModel) -> None:
    def engine_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == f"mlx {tiny.path.name}"}

    before = engine_threads()  # other backends' engines (module fixtures)
    backend = MlxBackend(tiny.path)
    backend.load()
    assert len(engine_threads() - before) == 1
    backend.close()
    backend.close()  # idempotent
    assert engine_threads() == before
    ids, _ = tiny.prompt(CORPUS, "Q?", thinking=False)
    events, err = collect(backend, request(ids))
    assert err is None and text_of(events) == ANSWER
    backend.close()
    assert engine_threads() == before


# --- the shared contract --------------------------------------------------------------------


class TestMlxContract(BackendContract):
    """The contract suite. Its prompts end with the assistant tag but no think
    marker, so no script follows and the tiny model writes random text up to
    max_tokens: long enough to cancel."""

    mode = ThinkingMode.NON_THINK
    expects_reasoning = False

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, tiny: TinyModel) -> Iterator[MlxBackend]:
        backend = MlxBackend(tiny.path)
        yield backend
        backend.close()

    def make_request(
        self, backend: object, question: str, max_tokens: int, mode: ThinkingMode
    ) -> Request:
        from app.core.tokens import deepseek_v4

        tc = deepseek_v4()
        prefix = [tc.special_id("<｜begin▁of▁sentence｜>"), *tc.encode(CORPUS)]
        ids = [
            *prefix,
            tc.special_id("<｜User｜>"),
            *tc.encode(question),
            tc.special_id("<｜Assistant｜>"),
        ]
        return Request(
            messages=(Message("user", question),),
            model="tiny",
            mode=mode,
            max_tokens=max_tokens,
            prompt_ids=tuple(ids),
            prefix_tokens=len(prefix),
        )
