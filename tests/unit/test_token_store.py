"""The token store: made once, read back, never used when it is missing, damaged
or made for anything else (then made again); and the ids it serves are
``tokenizers``' ids, from the full encoder and from an encoder of a text's own
tokens alike."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from app.core import token_store
from app.core.tokens import TokenCounter, deepseek_v4, deepseek_v4_tokenizer_path

TC = deepseek_v4()
DATA = deepseek_v4_tokenizer_path().read_bytes()

VARIED = [
    "<think>not special</think> <｜User｜> <｜Assistant｜> <｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜><｜end▁of▁sentence｜>x<｜tool▁calls▁begin｜>",
    " " * 500 + "x" + "\t" * 200 + "\n" * 50 + "y",
    "0" * 700 + " 12345678901234567890 ٣٤٥٦ ²³½",
    "中文・カタカナ゛\u3040あ\u3099 한국어 ไทย देवनागरी עברית العربية",
    "😀👍🏽👨\u200d👩\u200d👧🇫🇷❤\ufe0f \x00\x01\x1b\u200d\ufeff\ue000\U000e0001",
    "def f(x):\n\treturn {k: v for k, v in x.items()}  # ünïcödé\r\n\r\n",
    "e\u0301 ﬁ ａｂｃ \xa0\u3000\u2028\x0b\x0c\x85 end",
]


def counter(tmp_path: Path) -> TokenCounter:
    return TokenCounter(deepseek_v4_tokenizer_path(), "deepseek-v4", store_dir=tmp_path)


def the_store(tmp_path: Path) -> Path:
    (path,) = tmp_path.glob(f"*{token_store.SUFFIX}")
    return path


def test_a_missing_store_is_made_then_read_back(tmp_path: Path) -> None:
    first = counter(tmp_path)
    assert first.origin == "built and stored" and first.fast is not None
    second = counter(tmp_path)
    assert second.origin == "stored" and second.fast is not None
    assert second.fast_unavailable == ""
    assert second.encode_batch(VARIED) == first.encode_batch(VARIED)
    assert second.special_id("<think>") == TC.special_id("<think>")
    assert second._plain_tokenizer is None  # tokenizers never loaded


@pytest.mark.parametrize(
    "damage",
    ["flip a payload byte", "truncate", "other tokenizer", "other pattern", "wrong checks"],
)
def test_a_damaged_or_foreign_store_is_made_again(tmp_path: Path, damage: str) -> None:
    counter(tmp_path)
    path = the_store(tmp_path)
    blob = bytearray(path.read_bytes())
    end = blob.index(b"\n", len(token_store.MAGIC))
    header = json.loads(blob[len(token_store.MAGIC) : end])
    if damage == "flip a payload byte":
        blob[end + 1000] ^= 0x01
    elif damage == "truncate":
        del blob[len(blob) // 2 :]
    else:
        if damage == "other tokenizer":
            header["tokenizer_sha256"] = "0" * 64
        elif damage == "other pattern":
            header["pattern_sha256"] = "0" * 64
        else:
            header["check_ids"][1][0] += 1
        line = json.dumps(header, separators=(",", ":")).encode("ascii")
        blob[len(token_store.MAGIC) : end] = line
    path.write_bytes(bytes(blob))
    again = counter(tmp_path)
    assert again.origin == "built and stored", again.origin
    assert again.fast is not None
    assert counter(tmp_path).origin == "stored"  # the new store is good
    assert again.encode_batch(VARIED) == TC.encode_batch(VARIED)


def test_a_store_that_is_not_one_is_replaced(tmp_path: Path) -> None:
    counter(tmp_path)
    path = the_store(tmp_path)
    path.write_bytes(b"not a store\n")
    assert counter(tmp_path).origin == "built and stored"
    assert path.read_bytes().startswith(token_store.MAGIC)


def test_an_unwritable_store_still_counts(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    tc = TokenCounter(deepseek_v4_tokenizer_path(), "deepseek-v4", store_dir=blocker / "sub")
    assert tc.fast is not None and tc.origin.startswith("built (not stored")
    assert tc.count_batch(VARIED) == TC.reference_count_batch(VARIED)


def test_ids_equal_tokenizers_on_a_varied_corpus(tmp_path: Path) -> None:
    tc = counter(tmp_path)
    tc = counter(tmp_path)  # read back from the store
    assert tc.fast is not None
    rng = random.Random(18)
    alphabet = [
        *"abcXYZ019 \t\n\r.,;:()[]{}<>|/\\'\"-_=+*&^%$#@!?~`",
        "é", "ü", "中", "の", "ア", "😀", "\u0301", "\u3000", "\xa0", "<think>", "<｜User｜>",
        "</think>", "<｜end▁of▁sentence｜>", "  ", "\n\n", "    ", "word", "1234", "２", "\x00",
        "\u200d", " " * 40, "7" * 20,
    ]  # fmt: skip
    texts = [*VARIED, *("".join(rng.choices(alphabet, k=rng.randint(1, 120))) for _ in range(300))]
    reference = [tc.reference_encode(t) for t in texts]
    # Each text alone (an encoder of its own tokens), all at once, and the full encoder.
    assert [tc.fast.encode_alone([t])[0] for t in texts] == reference
    assert tc.fast.encode_alone(texts) == reference
    assert not tc.fast.ready
    tc.fast.prepare()
    assert tc.fast.ready
    assert [tc.encode(t) for t in texts] == reference
    assert tc.count_batch(texts) == [len(ids) for ids in reference]


def test_counts_before_and_after_the_full_encoder_agree(tmp_path: Path) -> None:
    counter(tmp_path)
    tc = counter(tmp_path)
    assert tc.fast is not None and not tc.fast.ready
    small = ["hello", "<think>x</think>", "中文 123"]
    before = tc.count_batch(small)
    assert not tc.fast.ready  # small texts did not need the full encoder
    big = ["word " * 1000]
    assert tc.count_batch(big) == TC.reference_count_batch(big)
    assert tc.fast.ready
    assert tc.count_batch(small) == before == TC.reference_count_batch(small)


@pytest.mark.skipif(sys.platform != "linux", reason="the cache dir follows XDG_CACHE_HOME")
def test_preload_needs_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core import tokens

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    assert tokens.preload_stored() is False  # nothing made before the window shows
    assert not (tmp_path / "empty").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    TokenCounter(deepseek_v4_tokenizer_path(), "deepseek-v4", store_dir=token_store.default_dir())
    assert tokens.preload_stored() is True
    assert tokens.deepseek_v4().fast is not None and tokens.deepseek_v4().fast.ready


def test_a_small_file_is_counted_without_the_full_encoder(tmp_path: Path) -> None:
    from app.core.ingest.pipeline import IngestOptions, ingest
    from app.core.prompt.corpus import render_document

    counter(tmp_path / "store")
    tc = counter(tmp_path / "store")
    assert tc.fast is not None and not tc.fast.ready
    note = tmp_path / "note.md"
    note.write_text("# Notes\n\nThe <think> tag is text here. 12345\n\n\nend\n", encoding="utf-8")
    (doc,) = ingest([note], counter=tc, options=IngestOptions(count_cache=False)).documents
    assert not tc.fast.ready
    assert doc.tokens == TC.reference_count_batch([doc.text])[0]
    assert doc.block_tokens == TC.reference_count_batch([render_document(doc)])[0]


def test_short_texts_are_looked_up_in_the_sorted_vocabulary_before_any_dict(
    tmp_path: Path,
) -> None:
    """A store read back serves short texts by bisecting its byte-ordered tokens:
    the same ids as ``tokenizers``, and the dict of all 128k tokens is made only
    when a text has too many pieces for that (then the ids are the same again)."""
    counter(tmp_path)
    tc = counter(tmp_path)
    fast = tc.fast
    assert fast is not None and tc.origin == "stored"
    assert fast._rank_dict is None  # the store's checks ran on the sorted vocabulary
    short = [t for t in VARIED if len(t) < 100]
    reference = [tc.reference_encode(t) for t in short]
    assert [fast.encode_alone([t])[0] for t in short] == reference
    assert fast._rank_dict is None and not fast.ready
    rng = random.Random(3)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(900)
    ]
    long_text = " ".join(words)  # more distinct pieces than bisecting is worth
    assert fast.encode_alone([long_text])[0] == tc.reference_encode(long_text)
    assert fast._rank_dict is not None and len(fast._rank_dict) == len(fast.sorted_vocab()[0])
    assert [fast.encode_alone([t])[0] for t in short] == reference
    tokens, ranks = fast.sorted_vocab()
    assert tokens == sorted(tokens) and len(set(ranks)) == len(ranks)
