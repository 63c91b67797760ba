"""The DeepSeek fixture server itself: wire format, tokenization, the three cache
rules, failure modes and its standalone mode. Other engineers' tests trust it."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.tokens import deepseek_v4, deepseek_v4_special
from tests.fixtures.deepseek_server import TEST_KEY, DeepSeekServer, split_pieces
from tests.fixtures.prefix_cache import PrefixCache, common_prefix, prefix_hashes

ROOT = Path(__file__).resolve().parents[2]
CORPUS = " ".join(
    f"Clause {i}: the tenant pays rent number {i * 7} on day {i % 28 + 1}." for i in range(40)
)


def post(
    srv: DeepSeekServer,
    body: dict[str, Any],
    key: str | None = TEST_KEY,
    path: str = "/chat/completions",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", path, json.dumps(body), headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def chat(
    srv: DeepSeekServer,
    messages: list[dict[str, str]],
    *,
    thinking: bool = False,
    stream: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "deepseek-v4-flash",
        "messages": messages,
        "thinking": {"type": "enabled" if thinking else "disabled"},
        "max_tokens": 200,
        "stream": stream,
        **extra,
    }
    if thinking:
        body["reasoning_effort"] = "high"
    status, _, data = post(srv, body)
    assert status == 200, data
    if stream:
        return {"raw": data.decode()}
    result: dict[str, Any] = json.loads(data)
    return result


def sse_events(raw: str) -> list[str]:
    return [block for block in raw.split("\n\n") if block]


@pytest.fixture
def srv() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as server:
        yield server


def system(corpus: str = CORPUS) -> dict[str, str]:
    return {"role": "system", "content": corpus}


# --- wire format -------------------------------------------------------------------------------


def test_thinking_stream_matches_the_documented_wire_format(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="The cap is 5.", reasoning="The user asks about")
    raw = chat(
        srv,
        [{"role": "user", "content": "cap?"}],
        thinking=True,
        stream=True,
        stream_options={"include_usage": True},
    )["raw"]
    blocks = sse_events(raw)
    assert blocks[0] == ": keep-alive"
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(b.removeprefix("data: ")) for b in blocks[1:-1]]
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "",
    }
    reasoning = "".join(
        c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks[1:-2]
    )
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-2])
    assert (reasoning, content) == ("The user asks about", "The cap is 5.")
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    u = usage["usage"]
    assert u["prompt_tokens"] == u["prompt_cache_hit_tokens"] + u["prompt_cache_miss_tokens"]
    counter = deepseek_v4()
    assert u["completion_tokens_details"]["reasoning_tokens"] == counter.count(
        "The user asks about"
    )
    assert u["completion_tokens"] == counter.count("The user asks about") + counter.count(
        "The cap is 5."
    )
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert all(
        c["object"] == "chat.completion.chunk" and c["model"] == "deepseek-v4-flash" for c in chunks
    )


def test_non_thinking_stream_has_no_reasoning_and_no_usage_unless_asked(
    srv: DeepSeekServer,
) -> None:
    raw = chat(srv, [{"role": "user", "content": "cap?"}], stream=True)["raw"]
    assert "reasoning_content" not in raw
    assert '"usage"' not in raw
    assert raw.endswith("data: [DONE]\n\n")


def test_non_streaming_reply(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="Five.", reasoning="Think.")
    result = chat(srv, [{"role": "user", "content": "cap?"}], thinking=True)
    message = result["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Five.", "reasoning_content": "Think."}
    assert result["usage"]["completion_tokens_details"]["reasoning_tokens"] == deepseek_v4().count(
        "Think."
    )


def test_default_answer_quotes_the_question_and_streams_in_pieces(srv: DeepSeekServer) -> None:
    result = chat(srv, [{"role": "user", "content": "Where is the lease?"}])
    answer = result["choices"][0]["message"]["content"]
    assert "Where is the lease?" in answer
    assert len(split_pieces(answer)) > 5 and "".join(split_pieces(answer)) == answer


def test_max_tokens_truncates_with_length(srv: DeepSeekServer) -> None:
    srv.enqueue_reply(answer="alpha beta gamma delta epsilon zeta eta theta")
    result = chat(srv, [{"role": "user", "content": "q"}], max_tokens=3)
    counter = deepseek_v4()
    ids = counter.encode("alpha beta gamma delta epsilon zeta eta theta")
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["choices"][0]["message"]["content"] == counter.decode(ids[:3])
    assert result["usage"]["completion_tokens"] == 3


def test_vllm_flavour(srv: DeepSeekServer) -> None:
    with DeepSeekServer(flavour="vllm", models=("m",)) as server:
        server.enqueue_reply(answer="A.", reasoning="R.")
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "q"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "chat_template_kwargs": {"thinking": True, "reasoning_effort": "high"},
        }
        status, _, data = post(server, body, path="/v1/chat/completions")
        assert status == 200
        raw = data.decode()
        assert '"reasoning": "R."' in raw and "reasoning_content" not in raw
        assert '"prompt_tokens_details": {"cached_tokens": 0}' in raw
        assert server.chat_requests[-1].thinking is True
        status, _, data = post(
            server, {"model": "m", "messages": [{"role": "user", "content": "q"}]}
        )
        assert server.chat_requests[-1].thinking is False  # vLLM's default
        assert "reasoning" not in json.loads(data)["choices"][0]["message"]


# --- tokenization -------------------------------------------------------------------------------


def test_prompt_tokens_follow_the_v4_format(srv: DeepSeekServer) -> None:
    """Independent of deepseek-recipe: BOS sys <User> q <Assistant> </think>."""
    counter, sp = deepseek_v4(), deepseek_v4_special()
    question = "Does <think> in a document count as text?"
    chat(srv, [system("A corpus."), {"role": "user", "content": question}])
    expected = [
        sp.bos,
        *counter.encode("A corpus."),
        sp.user,
        *counter.encode(question),
        sp.assistant,
        sp.end_think,
    ]
    assert list(srv.chat_requests[-1].prompt_ids) == expected
    assert srv.usages[-1]["prompt_tokens"] == len(expected)


def test_thinking_effort_changes_the_prefix_from_the_start(srv: DeepSeekServer) -> None:
    msgs = [system(), {"role": "user", "content": "q"}]
    chat(srv, msgs)
    chat(srv, msgs, thinking=True)
    plain, think = (r.prompt_ids for r in srv.chat_requests)
    assert plain[0] == think[0] == deepseek_v4_special().bos
    assert plain[1] != think[1]
    assert len(think) - len(plain) > 60  # the effort text


def test_v41_flash_renders_its_own_format(srv: DeepSeekServer) -> None:
    msgs = [system("A corpus."), {"role": "user", "content": "q"}]
    chat(srv, msgs, thinking=True)
    chat(srv, msgs, thinking=True, model="deepseek-flash")
    v4, v41 = (r.prompt_ids for r in srv.chat_requests)
    text = deepseek_v4().decode(v41)
    assert "Reasoning Effort: 75" in text and text.endswith("<think>")
    assert list(v4) != list(v41)


# --- cache rules -------------------------------------------------------------------------------


def usage_of(result: dict[str, Any]) -> dict[str, Any]:
    u: dict[str, Any] = result["usage"]
    return u


def test_rule1_appending_a_turn_hits_the_previous_output(srv: DeepSeekServer) -> None:
    q1 = [system(), {"role": "user", "content": "First question?"}]
    r1 = chat(srv, q1)
    a1 = r1["choices"][0]["message"]["content"]
    r2 = chat(
        srv, [*q1, {"role": "assistant", "content": a1}, {"role": "user", "content": "Second?"}]
    )
    u1, u2 = usage_of(r1), usage_of(r2)
    assert u1["prompt_cache_hit_tokens"] == 0
    # the output unit: input + answer + EOS (the next prompt renders </think> a1 EOS)
    assert u2["prompt_cache_hit_tokens"] == u1["prompt_tokens"] + u1["completion_tokens"] + 1
    assert u2["prompt_cache_miss_tokens"] == u2["prompt_tokens"] - u2["prompt_cache_hit_tokens"]


def test_rule2_a_plus_b_then_a_plus_c_misses_then_a_plus_d_hits_on_a(srv: DeepSeekServer) -> None:
    hits = []
    for q in ("B: who pays?", "C: when is it due?", "D: what is the cap?"):
        hits.append(
            usage_of(chat(srv, [system(), {"role": "user", "content": q}]))[
                "prompt_cache_hit_tokens"
            ]
        )
    first, second, third = (r.prompt_ids for r in srv.chat_requests)
    a_len = common_prefix(prefix_hashes(first), prefix_hashes(second))
    assert a_len == next(i for i, (x, y) in enumerate(zip(first, second, strict=False)) if x != y)
    assert hits == [0, 0, a_len]
    assert 0 < a_len < len(third)


def test_rule2_in_thinking_mode_stores_the_corpus_only_after_two_requests(
    srv: DeepSeekServer,
) -> None:
    """Reasoning is dropped from history, so the output unit does not match the next turn."""
    q1 = [system(), {"role": "user", "content": "First?"}]
    r1 = chat(srv, q1, thinking=True)
    a1 = r1["choices"][0]["message"]["content"]
    turn2 = [*q1, {"role": "assistant", "content": a1}, {"role": "user", "content": "Second?"}]
    r2 = chat(srv, turn2, thinking=True)
    assert usage_of(r2)["prompt_cache_hit_tokens"] == 0
    r3 = chat(srv, [*turn2[:3], {"role": "user", "content": "Third?"}], thinking=True)
    p1, p2 = srv.chat_requests[0].prompt_ids, srv.chat_requests[1].prompt_ids
    shared = common_prefix(prefix_hashes(p1), prefix_hashes(p2))
    assert shared == len(p1) - 1  # all of turn 1's input but its final <think>
    assert usage_of(r3)["prompt_cache_hit_tokens"] >= shared


@pytest.mark.parametrize("interval", [64, None])
def test_rule3_interval_units(interval: int | None) -> None:
    with DeepSeekServer(cache_interval=interval) as server:
        chat(server, [system(), {"role": "user", "content": "B?"}])
        second = chat(server, [system(), {"role": "user", "content": "C?"}])
        p1, p2 = (r.prompt_ids for r in server.chat_requests)
    shared = common_prefix(prefix_hashes(p1), prefix_hashes(p2))
    hit = usage_of(second)["prompt_cache_hit_tokens"]
    assert shared > 128
    assert hit == ((shared // interval) * interval if interval else 0)


def test_caches_are_separate_per_user_id(srv: DeepSeekServer) -> None:
    msgs = [system(), {"role": "user", "content": "q"}]
    first = chat(srv, msgs, user_id="alice")
    other = chat(srv, msgs, user_id="bob")
    again = chat(srv, msgs, user_id="alice")
    n = usage_of(first)["prompt_tokens"]
    assert [usage_of(r)["prompt_cache_hit_tokens"] for r in (first, other, again)] == [0, 0, n]


def test_caches_are_separate_per_model(srv: DeepSeekServer) -> None:
    """Pro cannot read what Flash stored: a review's first request misses."""
    msgs = [system(), {"role": "user", "content": "q"}]
    flash = chat(srv, msgs, user_id="alice")
    pro = chat(srv, msgs, user_id="alice", model="deepseek-v4-pro")
    pro_again = chat(srv, msgs, user_id="alice", model="deepseek-v4-pro")
    n = usage_of(flash)["prompt_tokens"]
    hits = [usage_of(r)["prompt_cache_hit_tokens"] for r in (flash, pro, pro_again)]
    assert hits == [0, 0, n]


def test_prefix_cache_unit_rules_directly() -> None:
    cache = PrefixCache(interval=None)
    a, b, c, d = [1, 2, 3, 4], [5, 6], [7, 8], [9]
    h_ab = prefix_hashes(a + b)
    assert cache.lookup(h_ab) == 0
    cache.record(h_ab, prefix_hashes([10, 11], h_ab))
    h_ac = prefix_hashes(a + c)
    assert cache.lookup(h_ac) == 0
    cache.record(h_ac, prefix_hashes([12], h_ac))
    assert cache.lookup(prefix_hashes(a + d)) == len(a)
    assert cache.lookup(prefix_hashes(a + b + [10, 11, 99])) == 8  # output unit
    assert cache.lookup(prefix_hashes([1, 2])) == 0  # a stored unit longer than the input
    assert cache.unit_lengths == [4, 6, 7, 8]
    with pytest.raises(ValueError):
        PrefixCache(interval=0)


# --- auth and failure modes ---------------------------------------------------------------------


def test_auth_errors_look_like_deepseeks(srv: DeepSeekServer) -> None:
    body = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "q"}]}
    status, _, data = post(srv, body, key="sk-nope-abcd")
    err = json.loads(data)["error"]
    assert status == 401
    assert err["message"] == "Authentication Fails, Your api key: ****abcd is invalid"
    assert err["type"] == "authentication_error"
    status, _, _ = post(srv, body, key=None)
    assert status == 401
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/models")
    assert conn.getresponse().status == 401
    with DeepSeekServer(keys=None) as open_server:
        assert post(open_server, body, key=None)[0] == 200


def test_scripted_errors_and_retry_after(srv: DeepSeekServer) -> None:
    srv.enqueue_error(429, retry_after=3)
    srv.enqueue_error(402)
    srv.enqueue_context_too_long(prompt_tokens=2_000_000, max_tokens=10)
    body = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "q"}]}
    status, headers, data = post(srv, body)
    assert (status, headers["retry-after"]) == (429, "3")
    status, _, data = post(srv, body)
    assert status == 402 and json.loads(data)["error"]["message"] == "Insufficient Balance"
    status, _, data = post(srv, body)
    assert status == 422
    assert "maximum context length is 1048576 tokens" in json.loads(data)["error"]["message"]
    assert "2000010 tokens" in json.loads(data)["error"]["message"]
    assert post(srv, body)[0] == 200 and srv.pending == 0


def test_unknown_model_and_bad_json(srv: DeepSeekServer) -> None:
    status, _, data = post(srv, {"model": "gpt-4", "messages": [{"role": "user", "content": "q"}]})
    assert status == 400 and json.loads(data)["error"]["message"] == "Model Not Exist"
    status, _, _ = post(srv, {"model": "deepseek-v4-flash"})
    assert status == 400


@pytest.mark.timeout(30)
def test_stop_does_not_hang_on_a_request_that_never_gets_an_answer() -> None:
    server = DeepSeekServer().start()
    server.enqueue_hang()
    outcome: list[object] = []

    def client() -> None:
        try:
            outcome.append(post(server, {"model": "deepseek-v4-flash", "messages": []})[0])
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    t = threading.Thread(target=client)
    t.start()
    while server.request_count == 0:
        threading.Event().wait(0.02)
    server.stop()
    t.join(10)
    assert not t.is_alive()
    assert outcome and not isinstance(outcome[0], int)


@pytest.mark.timeout(60)
def test_standalone_process() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fixtures.deepseek_server",
            "--port",
            "0",
            "--key",
            "sk-standalone",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/models", headers={"Authorization": "Bearer sk-standalone"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert next(m["id"] for m in json.loads(resp.read())["data"]) == "deepseek-v4-flash"
    finally:
        proc.terminate()
        proc.wait(10)
