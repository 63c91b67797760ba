"""Which MLX engine runs a model folder: chosen by config.json's model_type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.local.mlx_engine import MlxEngine
from backends.local.mlx_vlm_engine import MlxVlmEngine, engine_for


@pytest.mark.parametrize(
    ("config", "engine"),
    [
        ({"model_type": "deepseek_v4"}, MlxVlmEngine),
        ({"model_type": "deepseek_v41", "engram_layer_ids": [1, 14]}, MlxVlmEngine),
        ({"model_type": "deepseek_v41"}, MlxEngine),  # mlx-lm's own V4.1 layout, no Engram
        ({"model_type": "llama"}, MlxEngine),
        ({}, MlxEngine),
    ],
)
def test_engine_follows_the_model_type(
    tmp_path: Path, config: dict[str, object], engine: type[MlxEngine]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert engine_for(tmp_path) is engine


def test_a_missing_folder_goes_to_mlx_lm_which_says_what_is_wrong(tmp_path: Path) -> None:
    assert engine_for(tmp_path / "nowhere") is MlxEngine
