"""The memory plan: weights from the checkpoint's files, KV from its config (per
architecture), activations that grow with chunk x context, refusals, and the figures
for the real DeepSeek V4 / V4.1 Flash shapes that docs/local-models.md quotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.base import LocalEngineError
from backends.local.memory_plan import (
    kv_from_config,
    plan_for_model,
    refuse_if_too_big,
    weight_files,
)
from backends.local.mlx_memory import SDPA_FALLBACK_SCORES, activation_bytes

GIB = 1 << 30
MAC = (512 * GIB, "the GPU wired limit", "this Mac")

# DeepSeek's V4 Flash (mlx-vlm's ModelConfig defaults): 43 layers, a window of 128,
# ratio 128 and 4 alternating between two sliding-window layers.
V4_FLASH = {
    "model_type": "deepseek_v4",
    "hidden_size": 4096,
    "num_hidden_layers": 43,
    "num_attention_heads": 64,
    "head_dim": 512,
    "q_lora_rank": 1024,
    "moe_intermediate_size": 2048,
    "num_experts_per_tok": 6,
    "n_shared_experts": 1,
    "sliding_window": 128,
    "index_n_heads": 64,
    "index_head_dim": 128,
    "index_topk": 512,
    "index_block": 64,
    "index_keep": 16,
    "hc_mult": 4,
}
# V4.1 Flash (mlx-vlm's defaults): KV on four source layers, Engram on two.
V41_FLASH = {
    "model_type": "deepseek_v41",
    "hidden_size": 5120,
    "num_hidden_layers": 40,
    "num_attention_heads": 64,
    "head_dim": 512,
    "qk_rope_head_dim": 64,
    "q_lora_rank": 1280,
    "moe_intermediate_size": 2304,
    "num_experts_per_tok": 6,
    "n_shared_experts": 1,
    "sliding_window": 128,
    "compress_ratios": [0, 0] + [2] * 18 + [1] * 20,
    "kv_source_layer_ids": [2, 8, 14, 20],
    "index_source_layer_ids": [2, 8, 14, 20, 24, 28, 32, 36],
    "index_n_heads": 32,
    "index_head_dim": 128,
    "index_topk": 512,
    "candidate_source_layer_id": 20,
    "engram_layer_ids": [1, 14],
    "hc_mult": 4,
}


def _mlx_folder(
    tmp_path: Path, config: dict[str, object], sizes: list[int], dtype: str = "BF16"
) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for i, size in enumerate(sizes):
        header = json.dumps({"w": {"dtype": dtype, "shape": [1], "data_offsets": [0, 2]}})
        with (folder / f"model-{i:05d}.safetensors").open("wb") as f:
            f.write(len(header).to_bytes(8, "little") + header.encode())
            f.truncate(size)  # sparse: the size is what the plan reads
    return folder


def test_weights_are_the_files_and_kv_scales_with_tokens(tmp_path: Path) -> None:
    config = {
        "model_type": "llama",
        "num_hidden_layers": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "num_attention_heads": 8,
    }
    folder = _mlx_folder(tmp_path, config, [3 * GIB, 2 * GIB])
    plan = plan_for_model(folder, tokens=1000, available=(64 * GIB, "RAM", "this computer"))
    assert plan.weights_bytes == 5 * GIB
    assert plan.kv_bytes_per_token == 2 * 4 * 2 * 64 * 2  # K and V, bf16
    assert plan.kv_copies == 2  # the saved corpus state and the copy that answers
    bigger = plan_for_model(folder, tokens=2000, available=(64 * GIB, "RAM", "this computer"))
    assert bigger.kv_bytes - plan.kv_bytes == 1000 * plan.kv_bytes_per_token
    assert bigger.compute_bytes >= plan.compute_bytes  # attention over the longer context
    assert plan.fits and set(plan.to_json()) >= {
        "weights_bytes",
        "kv_bytes_per_token",
        "needed_bytes",
        "available_bytes",
        "fits",
        "compute_bytes",
        "source",
    }
    assert plan.needed_bytes == (
        plan.weights_bytes + 2 * plan.kv_bytes + plan.compute_bytes + plan.engine_bytes
    )


def test_deepseek_v4_kv_is_the_compressed_pools() -> None:
    config = {
        "model_type": "deepseek_v4",
        "num_hidden_layers": 4,
        "head_dim": 512,
        "index_head_dim": 128,
        "sliding_window": 128,
        "compress_ratios": [0, 4, 128, 0],
    }
    per, fixed = kv_from_config(config, 2, chunk=512)
    # a head_dim row per ratio tokens, and on the ratio-4 layer an index row per 4
    assert per == round((512 / 4 + 128 / 4 + 512 / 128) * 2)
    # the windows hold window - 1 + chunk rows while a chunk is read, plus the pools'
    # partial windows
    assert fixed >= 4 * (128 - 1 + 512) * 512 * 2
    assert fixed - 4 * (128 - 1 + 512) * 512 * 2 < 1 << 20


def test_deepseek_v41_kv_is_the_sources_and_engram_history() -> None:
    """Only the KV source layers keep compressed rows and index keys, each at its own
    ratio; Engram keeps one int64 a token. (The cross-layer hand-off of the last chunk
    is not kept: ``mlx_vlm_state`` drops it.)"""
    per, _ = kv_from_config(V41_FLASH, 2)
    sources = ((512 + 128) * 2 / 2) * 3 + (512 + 128) * 2 / 1  # layers 2, 8, 14 and 20
    assert per == round(sources + 8)
    no_engram = kv_from_config({**V41_FLASH, "engram_layer_ids": []}, 2)[0]
    assert per - no_engram == 8


def test_real_v4_flash_plan_matches_the_guide(tmp_path: Path) -> None:
    """docs/local-models.md's MLX table: V4 Flash at 4 bit (160 GB of weights)."""
    folder = _mlx_folder(tmp_path, V4_FLASH, [160 * 10**9])
    rows = {t: plan_for_model(folder, tokens=t, available=MAC) for t in (100_000, 1_000_000)}
    assert rows[100_000].kv_bytes_per_token == 6568
    assert abs(rows[1_000_000].kv_bytes / 1e9 - 6.6) < 0.1
    # activations at 1M: the ratio-128 layers' scores over 8K pooled rows (plus mask)
    act = rows[1_000_000].compute_bytes / 1e9
    assert 1.5 < act < 3.0
    assert 170 < rows[1_000_000].needed_bytes / 1e9 < 180
    assert 160 < rows[100_000].needed_bytes / 1e9 < 165


def test_real_v41_flash_plan_matches_the_guide(tmp_path: Path) -> None:
    """docs/local-models.md: V4.1 Flash at 4 bit (290 GB) needs ~292/298/309 GB."""
    folder = _mlx_folder(tmp_path, V41_FLASH, [290 * 10**9])
    totals = [
        plan_for_model(folder, tokens=t, available=MAC).needed_bytes / 1e9
        for t in (100_000, 400_000, 1_000_000)
    ]
    for got, guide in zip(totals, (292, 298, 309), strict=True):
        assert abs(got - guide) < 1.5, totals


def test_activations_grow_with_chunk_times_context() -> None:
    small = activation_bytes(V4_FLASH, 100_000, 512, 2)
    long = activation_bytes(V4_FLASH, 1_000_000, 512, 2)
    half = activation_bytes(V4_FLASH, 1_000_000, 256, 2)
    assert long > small
    assert half < long
    # V4.1's indexers rank every key for every query of the chunk: ~5 chunk x context
    # float32 arrays at their peak
    v41 = activation_bytes(V41_FLASH, 1_000_000, 512, 2)
    assert 5 * 512 * 1_000_000 * 4 < v41 < 7 * 512 * 1_000_000 * 4
    assert SDPA_FALLBACK_SCORES == 3


def test_a_model_that_does_not_fit_is_refused_with_what_to_change(tmp_path: Path) -> None:
    folder = _mlx_folder(tmp_path, {"model_type": "llama"}, [8 * GIB])
    plan = plan_for_model(folder, tokens=0, available=(4 * GIB, "the GPU wired limit", "this Mac"))
    assert not plan.fits
    text = plan.message()
    assert "this Mac has 4.0 GB" in text and "smaller quantisation" in text
    assert "iogpu.wired_limit_mb" in text and "fewer documents" in text


def test_refusal_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _mlx_folder(tmp_path, {"model_type": "llama"}, [2 * GIB])
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(GIB))
    with pytest.raises(LocalEngineError, match="does not fit"):
        refuse_if_too_big(folder)
    monkeypatch.setenv("LECTERN_MEMORY_AVAILABLE_BYTES", str(8 * GIB))
    refuse_if_too_big(folder)


def test_gguf_shards_are_all_counted(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        with (tmp_path / f"x-{i:05d}-of-00003.gguf").open("wb") as f:
            f.truncate(i * 1000)
    files = weight_files(tmp_path / "x-00001-of-00003.gguf")
    assert len(files) == 3
    plan = plan_for_model(files[0], tokens=10, available=(GIB, "RAM", "this computer"))
    assert plan.weights_bytes == 6000
    assert plan.source == "estimate"  # not a GGUF llama.cpp can read: a rule of thumb
