"""The model folder and its vocabulary, for the MLX backend.

``check_model_dir`` fails early, with a message that says what to do, on a
folder that is not an mlx-lm model; ``model_identity`` names a model folder in
state keys and speed records. ``Vocab`` reads the folder's ``tokenizer.json``
with the ``tokenizers`` library, so the prompt renderer may tokenize from any
thread while the engine thread generates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from backends.base import LocalEngineError
from backends.local.kv_store import KVStore


def check_model_dir(path: Path) -> None:
    """Fail early, with what to do, on a folder that is not an MLX model."""
    if not path.is_dir():
        raise LocalEngineError(
            f"No MLX model folder at {path}: choose the folder of an mlx-lm model "
            "(it holds config.json and model*.safetensors)."
        )
    missing = [name for name in ("config.json",) if not (path / name).is_file()]
    if not any(path.glob("model*.safetensors")):
        missing.append("model*.safetensors")
    if missing:
        raise LocalEngineError(
            f"The folder {path} is not a complete MLX model: {', '.join(missing)} missing. "
            "Download or convert the model again (mlx_lm.convert)."
        )


def model_identity(path: Path, store: KVStore | None) -> str:
    """Identity of an MLX model folder: config.json plus each weight file's
    fingerprint (the store's, cached by size and mtime; else size and mtime)."""
    digest = hashlib.sha256(b"mlx\0")
    digest.update((path / "config.json").read_bytes())
    for weights in sorted(path.glob("model*.safetensors")):
        stat = weights.stat()
        ident = store.model_id(weights) if store else f"{stat.st_size}:{stat.st_mtime_ns}"
        digest.update(f"\0{weights.name}\0{ident}".encode())
    return digest.hexdigest()


class Vocab:
    """The model's tokenizer (``tokenizer.json``), usable from any thread."""

    def __init__(self, tokenizer_json: Path, bos: int | None) -> None:
        from tokenizers import Tokenizer

        raw = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        raw["added_tokens"] = []
        raw["truncation"] = None
        raw["padding"] = None
        self._plain = Tokenizer.from_str(json.dumps(raw))
        self._full = Tokenizer.from_file(str(tokenizer_json))
        self.bos = bos

    def tokenize(self, text: str, *, special: bool, add_bos: bool = False) -> list[int]:
        """``special=False`` keeps special-token spellings as plain text (user text)."""
        tok = self._full if special else self._plain
        ids = list(tok.encode(text, add_special_tokens=False).ids)
        return [self.bos, *ids] if add_bos and self.bos is not None else ids

    def detokenize(self, ids: Sequence[int], *, special: bool) -> str:
        return str(self._full.decode(list(ids), skip_special_tokens=not special))

    def token_id(self, spelling: str) -> int | None:
        found = self._full.token_to_id(spelling)
        return None if found is None else int(found)
