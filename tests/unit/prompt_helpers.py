"""Real tokenizers for renderer tests (no mocks): an EngineTokenizer over HF ``tokenizers``."""

from __future__ import annotations

import functools

from tokenizers import Tokenizer

from app.core.tokens import deepseek_v4, deepseek_v4_tokenizer_path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking %}{{ '<think>\\n' }}{% endif %}{% endif %}"
)
NO_SYSTEM = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}"
    "{{ '[' + message['role'] + '] ' + message['content'] | trim + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '[assistant] ' }}{% endif %}"
)


@functools.cache
def _full_tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(deepseek_v4_tokenizer_path()))


class HFEngineTokenizer:
    """DeepSeek V4's real tokenizer with a chosen chat template, as an engine would expose it."""

    def __init__(self, template: str | None, architecture: str | None = None) -> None:
        self._full = _full_tokenizer()
        self._template = template
        self._architecture = architecture
        self.calls: list[tuple[int, bool]] = []  # (len(text), special) per tokenize call

    def tokenize(self, text: str, special: bool) -> list[int]:
        self.calls.append((len(text), special))
        if special:
            return list(self._full.encode(text, add_special_tokens=False).ids)
        return deepseek_v4().encode(text)

    def chat_template(self) -> str | None:
        return self._template

    @property
    def bos_token(self) -> str:
        return "<｜begin▁of▁sentence｜>"

    @property
    def eos_token(self) -> str:
        return "<｜end▁of▁sentence｜>"

    @property
    def architecture(self) -> str | None:
        return self._architecture
