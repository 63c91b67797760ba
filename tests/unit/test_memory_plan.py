"""The memory plan: weights from the checkpoint's files, KV from its config, refusals."""

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

GIB = 1 << 30


def _mlx_folder(tmp_path: Path, config: dict[str, object], sizes: list[int]) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for i, size in enumerate(sizes):
        header = json.dumps({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}})
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
    bigger = plan_for_model(folder, tokens=2000, available=(64 * GIB, "RAM", "this computer"))
    assert bigger.needed_bytes - plan.needed_bytes == 1000 * plan.kv_bytes_per_token
    assert plan.fits and set(plan.to_json()) >= {
        "weights_bytes",
        "kv_bytes_per_token",
        "needed_bytes",
        "available_bytes",
        "fits",
    }


def test_deepseek_v4_kv_is_compressed() -> None:
    config = {
        "model_type": "deepseek_v4",
        "num_hidden_layers": 4,
        "head_dim": 512,
        "index_head_dim": 128,
        "sliding_window": 128,
        "compress_ratios": [0, 4, 128, 0],
    }
    per, fixed = kv_from_config(config, 2)
    assert per == round((512 / 4 + 128 / 4 + 512 / 128) * 2)
    assert fixed == 4 * 128 * 512 * 2


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
