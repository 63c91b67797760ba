"""The memory sentence of an in-process backend, for the quote, first-run card and Settings.

``memory_note`` turns ``backends.local.memory_plan`` into what the window and CLI
show ("This corpus (N tokens) needs X GB with this model ..., this Mac has Y GB"
and, when it does not fit, what to change). No Qt here: the window only displays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class MemoryNote:
    text: str
    fits: bool
    needed_bytes: int
    available_bytes: int


def memory_note(pool: Any, name: str, tokens: int) -> MemoryNote | None:
    """The note for backend ``name`` of ``pool`` holding ``tokens`` tokens (None: not an
    in-process backend, or its weights are not there)."""
    from backends.local.memory_plan import plan_for_model, weight_files

    try:
        settings = pool.resolved[name].settings
    except (AttributeError, KeyError):
        return None
    if getattr(settings, "kind", None) not in ("llama_cpp", "mlx"):
        return None
    path = Path(str(settings.model_path)).expanduser()
    if not weight_files(path):
        return None
    plan = plan_for_model(path, tokens=tokens)
    return MemoryNote(plan.message(), plan.fits, plan.needed_bytes, plan.available_bytes)
