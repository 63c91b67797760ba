"""Fallback prompt rendering for GGUF models when Lectern did not render the prompt.

Lectern normally sends token ids it rendered itself (``Request.prompt_ids``). When a
request carries only messages (a generic client, the contract suite), the llama.cpp
backend renders them the way the model file says: its own Jinja chat template
(``tokenizer.chat_template``), else llama.cpp's built-in template named after the
model architecture, else ChatML. The thinking switch is passed to the template as
``enable_thinking``/``thinking`` (templates that know it use it; others ignore it).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from backends.base import Message, ThinkingMode

if TYPE_CHECKING:
    from backends.local.llama_engine import LlamaEngine


def _builtin_names(architecture: str) -> list[str]:
    names = [architecture, re.sub(r"[\d.]+$", "", architecture), "chatml"]
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


def _apply_builtin(name: str, messages: Sequence[Message]) -> str | None:
    import llama_cpp

    chat = (llama_cpp.llama_chat_message * len(messages))()
    keep = []  # the C structs borrow these bytes
    for slot, message in zip(chat, messages, strict=True):
        role, content = message.role.encode(), message.content.encode("utf-8")
        keep.append((role, content))
        slot.role, slot.content = role, content
    size = 2 * sum(len(c) + len(r) for r, c in keep) + 1024
    for _ in range(2):
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_chat_apply_template(
            name.encode(), chat, len(messages), True, buffer, size
        )
        if n < 0:
            return None
        if n <= size:
            return buffer.raw[:n].decode("utf-8", errors="replace")
        size = n + 1
    return None


def render_with_model_template(
    engine: LlamaEngine, messages: Sequence[Message], mode: ThinkingMode
) -> str:
    if engine.chat_template:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos = engine.vocab.detokenize([engine.vocab.bos()], special=True)
        eos = engine.vocab.detokenize([engine.vocab.eos()], special=True)
        formatter = Jinja2ChatFormatter(template=engine.chat_template, eos_token=eos, bos_token=bos)
        result = formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
            enable_thinking=mode.thinking,
            thinking=mode.thinking,
        )
        return str(result.prompt)
    for name in _builtin_names(engine.architecture):
        text = _apply_builtin(name, messages)
        if text is not None:
            return text
    raise RuntimeError("no chat template could render the conversation")  # chatml always works
