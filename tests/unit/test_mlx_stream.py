"""Exact incremental detokenization (the MLX backend's streaming text) with the real
DeepSeek V4 tokenizer: the pieces always add up to the full decode."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from app.core.tokens import deepseek_v4, deepseek_v4_tokenizer_path
from backends.local.mlx_stream import IncrementalDecoder


@functools.cache
def _tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(deepseek_v4_tokenizer_path()))


def _decode(ids: Sequence[int]) -> str:
    return str(_tokenizer().decode(list(ids), skip_special_tokens=False))


def _stream(ids: list[int]) -> list[str]:
    decoder = IncrementalDecoder(_decode)
    pieces = [decoder.add(i) for i in ids]
    pieces.append(decoder.flush())
    return pieces


def test_decoder_pieces_add_up_for_multibyte_text() -> None:
    text = "Ünïcödé: 日本語のテキスト, emoji 😀🎉 and math ∑∫ end"
    ids = deepseek_v4().encode(text)
    pieces = _stream(ids)
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)  # characters never come out broken


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=128_815), max_size=40))
def test_decoder_pieces_add_up_for_any_ids(ids: list[int]) -> None:
    assert "".join(_stream(ids)) == _decode(ids)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_decoder_round_trips_any_text(text: str) -> None:
    assert "".join(_stream(deepseek_v4().encode(text))) == text
