"""Prompts for models that are not DeepSeek: a GGUF's own template, or an estimate.

``TemplateRenderer`` (family ``gguf``) renders with the model's own Jinja chat
template the way llama-cpp-python's ``Jinja2ChatFormatter`` does (sandboxed,
``trim_blocks``, ``lstrip_blocks``), and tokenizes with the model's own
tokenizer. A model file without a template gets
``resources/prompts/templates/<architecture>.jinja`` (Gemma 3 for the demo
model), else ``plain.jinja``.

To keep documents as plain text and the corpus prefix stable id for id, the
template is rendered with sentinels in place of the message contents: the
template's own text is tokenized with special tokens parsed, each content with
special spellings left as plain text, and the prefix ends exactly where the
system+corpus content ends. Templates that ``trim`` contents are detected by
whitespace padding around the sentinels. A template that rejects a system
message gets the system+corpus folded into the first user message. Dates a
template may insert are frozen (``strftime_now``) so the prefix never changes.

``MessagesRenderer`` (family ``generic``: a server model whose template is
unknown) gives messages only and counts them with V4's tokenizer, marked as an
estimate.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.prompt.base import (
    LRU,
    KnownTail,
    PromptAssembly,
    Renderer,
    Segment,
    Turn,
    count_head,
    sha256_hex,
    text_segment,
    turn_messages,
)
from app.core.prompt.engine import EngineTokenizer
from app.core.resources import resource
from backends.base import ThinkingMode

# Whitespace no template contains: if it survives around a sentinel, the
# template did not strip that side of the content.
_PAD = "\u2002\u3000"
_SENTINEL = re.compile("(" + _PAD + ")?\ue000(\\d+)\ue001(" + _PAD + ")?")
# A fixed date for templates that print "today": a prefix must never vary.
_FROZEN_NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Rough per-message overhead of an unknown template (role markers, separators).
ESTIMATE_PER_MESSAGE = 4


def _slot(i: int) -> str:
    return f"{_PAD}\ue000{i}\ue001{_PAD}"


@functools.cache
def _fallback_template(architecture: str | None) -> tuple[str, str]:
    """(name, source) of the bundled template for an architecture, else plain."""
    if architecture and re.fullmatch(r"[A-Za-z0-9_.-]+", architecture):
        path = resource("prompts", "templates", f"{architecture}.jinja")
        if path.is_file():
            return path.name, path.read_text(encoding="utf-8")
    path = resource("prompts", "templates", "plain.jinja")
    return path.name, path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=16)
def _compile(source: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[jinja2.ext.loopcontrols],
    )

    def tojson(
        x: Any,
        ensure_ascii: bool = False,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env.filters["tojson"] = tojson
    return env.from_string(source)


class TemplateError(ValueError):
    """A chat template could not be rendered with Lectern's messages."""


@dataclass(frozen=True)
class _Layout:
    """The template's own text around the content slots: texts[i] precedes slot i."""

    texts: tuple[str, ...]  # len == slots + 1
    lstrip: tuple[bool, ...]
    rstrip: tuple[bool, ...]
    user_slots: tuple[int, ...]


class TemplateRenderer(Renderer):
    """Renders with a local model's own chat template and tokenizer (family ``gguf``)."""

    family = "gguf"

    def __init__(self, engine: EngineTokenizer) -> None:
        self._engine = engine
        source = engine.chat_template()
        if source:
            self.template_name = "gguf"
        else:
            self.template_name, source = _fallback_template(engine.architecture)
        self._template = _compile(source)
        self.version = f"gguf/1/{sha256_hex(source)[:12]}"
        self._heads: LRU[str, tuple[int, ...]] = LRU(4)
        self._pieces: LRU[tuple[bool, str], tuple[int, ...]] = LRU(1024)

    def _assemble(
        self,
        head: str,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        with_ids: bool,
        *,
        known: KnownTail | None = None,
    ) -> PromptAssembly:
        contents = [head]
        for i, turn in enumerate(turns):
            contents.append(turn.user_content)
            if i < len(turns) - 1:
                contents.append(turn.answer or "")
        layout = self._layout(len(turns), mode)
        for i, content in enumerate(contents):
            if layout.lstrip[i]:
                contents[i] = content.lstrip()
            if layout.rstrip[i]:
                contents[i] = contents[i].rstrip()

        head_digest = sha256_hex(self.version, mode.value, layout.texts[0], contents[0])
        head_ids = self._heads.get(head_digest)
        if head_ids is None:
            head_ids = self._tok(layout.texts[0], special=True, cache=True) + self._tok(
                contents[0], special=False, cache=False
            )
            self._heads.put(head_digest, head_ids)
        # The ids are always exact; they are only kept when asked for.
        out = PromptAssembly(
            key=head_digest,
            tokens=len(head_ids),
            ids=head_ids if with_ids else None,
            text=layout.texts[0] + contents[0],
        )
        # texts[i] precedes slot i; the last text (the generation prompt) follows every slot.
        for i in range(1, len(contents) + 1):
            if i in layout.user_slots:
                out.start_turn()
            content = contents[i] if i < len(contents) else ""
            for piece, special in ((layout.texts[i], True), (content, False)):
                if piece:
                    piece_ids = self._tok(piece, special=special, cache=True)
                    out.add(text_segment(piece, len(piece_ids)), piece_ids, piece)
        return out

    def output_segments(
        self, answer: str, reasoning: str | None, mode: ThinkingMode
    ) -> tuple[Segment, ...]:
        """The answer as the model produced it (local engines: no server cache to model)."""
        if not answer:
            return ()
        return (text_segment(answer, len(self._tok(answer, special=False, cache=True))),)

    # -- internals --------------------------------------------------------------

    def _tok(self, text: str, *, special: bool, cache: bool) -> tuple[int, ...]:
        if not text:
            return ()
        if cache:
            hit = self._pieces.get((special, text))
            if hit is not None:
                return hit
        ids = tuple(self._engine.tokenize(text, special))
        if cache:
            self._pieces.put((special, text), ids)
        return ids

    def _layout(self, n_turns: int, mode: ThinkingMode) -> _Layout:
        """Where the template puts each content, found by rendering sentinels."""
        n_slots = 2 * n_turns  # system, then user/assistant pairs, the last user open
        roles = ["user" if i % 2 else "assistant" for i in range(1, n_slots)]
        try:
            messages = [{"role": "system", "content": _slot(0)}]
            messages += [{"role": r, "content": _slot(i)} for i, r in enumerate(roles, 1)]
            return self._split(self._render_template(messages, mode), n_slots, roles)
        except TemplateError:
            pass
        # No system role: the system+corpus leads the first user message.
        folded = [{"role": "user", "content": _slot(0) + "\n\n" + _slot(1)}]
        folded += [{"role": r, "content": _slot(i)} for i, r in enumerate(roles[1:], 2)]
        return self._split(self._render_template(folded, mode), n_slots, roles)

    def _render_template(self, messages: list[dict[str, str]], mode: ThinkingMode) -> str:
        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        try:
            return str(
                self._template.render(
                    messages=messages,
                    bos_token=self._engine.bos_token,
                    eos_token=self._engine.eos_token,
                    add_generation_prompt=True,
                    raise_exception=raise_exception,
                    strftime_now=_FROZEN_NOW.strftime,
                    date_string=_FROZEN_NOW.strftime("%d %b %Y"),
                    enable_thinking=mode.thinking,
                    thinking=mode.thinking,
                )
            )
        except TemplateError:
            raise
        except Exception as exc:  # a template is foreign code: any failure is its own
            raise TemplateError(f"chat template {self.template_name} failed: {exc}") from exc

    @staticmethod
    def _split(rendered: str, n_slots: int, roles: list[str]) -> _Layout:
        matches = list(_SENTINEL.finditer(rendered))
        if [int(m.group(2)) for m in matches] != list(range(n_slots)):
            raise TemplateError(
                "the chat template drops, repeats or reorders message contents; "
                "Lectern cannot keep the corpus prefix stable with it"
            )
        texts: list[str] = []
        start = 0
        for m in matches:
            texts.append(rendered[start : m.start()])
            start = m.end()
        texts.append(rendered[start:])
        return _Layout(
            texts=tuple(texts),
            lstrip=tuple(m.group(1) is None for m in matches),
            rstrip=tuple(m.group(3) is None for m in matches),
            user_slots=tuple(i for i, r in enumerate(roles, 1) if r == "user"),
        )


class MessagesRenderer(Renderer):
    """Messages only, counted with V4's tokenizer as an estimate (family ``generic``)."""

    estimated = True
    exact_ids = False  # the server renders

    def __init__(self, family: str = "generic") -> None:
        self.family = family
        self.version = f"{family}/estimate/1"
        self._heads: LRU[str, int] = LRU(4)

    def _assemble(
        self,
        head: str,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        with_ids: bool,
        *,
        known: KnownTail | None = None,
    ) -> PromptAssembly:
        from app.core.tokens import deepseek_v4

        counter = deepseek_v4()
        digest = sha256_hex(self.version, mode.value, head)
        head_tokens = self._heads.get(digest)
        if head_tokens is None:
            head_tokens = 1 + ESTIMATE_PER_MESSAGE + count_head(counter.count, head, known)
            self._heads.put(digest, head_tokens)
        out = PromptAssembly(key=digest, tokens=head_tokens, ids=None, text=None)
        messages = turn_messages(turns)
        counts = counter.count_batch([m.content for m in messages])
        for message, count in zip(messages, counts, strict=True):
            if message.role == "user":
                out.start_turn()
            out.add(
                text_segment(message.role + "\n" + message.content, count + ESTIMATE_PER_MESSAGE)
            )
        out.pad(ESTIMATE_PER_MESSAGE)  # the generation prompt
        return out

    def output_segments(
        self, answer: str, reasoning: str | None, mode: ThinkingMode
    ) -> tuple[Segment, ...]:
        """The answer, counted as an estimate."""
        from app.core.tokens import deepseek_v4

        if not answer:
            return ()
        return (text_segment("assistant\n" + answer, deepseek_v4().count(answer)),)
