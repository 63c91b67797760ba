"""Where a model chosen on the first-run card goes in config.toml (Qt-free): the kind
from the file, ``local`` unless a different ``local`` is kept, and it drafts. The
written document is loaded by the same loader the CLI uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.config import load_config, read_toml, save_config_table
from app.ui.settings.settings_form import model_file_choice, use_model_file


def _saved(tmp_path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    target = tmp_path / "config.toml"
    save_config_table(target, doc)
    load_config(target)  # what the CLI reads
    return read_toml(target)


@pytest.mark.parametrize(("name", "kind"), [("v4.Q4_K_M.GGUF", "llama_cpp"), ("v4-mlx", "mlx")])
def test_a_new_model_becomes_local_and_drafts(tmp_path: Path, name: str, kind: str) -> None:
    path = str(tmp_path / name)
    doc: dict[str, Any] = {}
    choice = model_file_choice(doc, path)
    assert (choice.kind, choice.replaces) == (kind, None)
    assert use_model_file(doc, choice, replace=False) == "local"
    saved = _saved(tmp_path, doc)
    assert saved["backends"]["local"] == {"kind": kind, "model_path": path}
    assert saved["cascade"]["draft"] == "local"


def test_a_different_local_is_named_and_kept_or_replaced(tmp_path: Path) -> None:
    old, new = str(tmp_path / "old.gguf"), str(tmp_path / "new.gguf")
    base = {
        "backends": {
            "local": {"kind": "llama_cpp", "model_path": old},
            "local-2": {"kind": "mlx", "model_path": str(tmp_path / "m")},
        }
    }
    choice = model_file_choice(base, new)
    assert (choice.replaces, choice.spare) == (old, "local-3")
    kept: dict[str, Any] = {k: dict(v) for k, v in base.items()}
    assert use_model_file(kept, choice, replace=False) == "local-3"
    saved = _saved(tmp_path, kept)
    assert saved["backends"]["local"]["model_path"] == old
    assert saved["backends"]["local-3"]["model_path"] == new
    assert saved["cascade"]["draft"] == "local-3"
    replaced: dict[str, Any] = {k: dict(v) for k, v in base.items()}
    assert use_model_file(replaced, choice, replace=True) == "local"
    assert (
        replaced["backends"]["local"]["model_path"] == new and "local-3" not in replaced["backends"]
    )


def test_choosing_the_model_local_already_has_asks_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "same.gguf")
    doc = {"backends": {"local": {"kind": "llama_cpp", "model_path": path}}}
    assert model_file_choice(doc, path).replaces is None
