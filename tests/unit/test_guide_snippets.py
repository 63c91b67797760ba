"""Every ```toml block in the docs is a config Lectern accepts as it stands.

The guide (docs/local-models.md) promises its snippets validate; this loads
each one with the project's own loader (``load_config``: unknown keys, secrets,
kinds, profiles, cascade names) and builds the backend pool from it (profiles
resolved, windows positive), exactly as ``lectern`` would at start-up. A
snippet with a typo'd key, an unknown profile or a key in it fails here with
Lectern's own message.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core.config import ConfigError, load_config
from backends.factory import BackendPool

ROOT = Path(__file__).resolve().parents[2]
GUIDES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^(?P<indent>[ \t]*)```toml[ \t]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)


def toml_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, dedented text) of each ```toml block in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        blocks.append((text.count("\n", 0, match.start()) + 1, body))
    return blocks


SNIPPETS = [
    pytest.param(body, id=f"{path.name}:{line}")
    for path in GUIDES
    for line, body in toml_blocks(path)
]


def test_the_guide_has_its_snippets() -> None:
    guide = ROOT / "docs" / "local-models.md"
    kinds = " ".join(body for _, body in toml_blocks(guide))
    assert len(toml_blocks(guide)) >= 8
    for kind in ('kind = "mlx"', 'kind = "llama_cpp"', 'kind = "openai"', 'flavour = "vllm"'):
        assert kind in kinds
    assert "11434" in kinds and "api.deepseek.com" in kinds


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_is_a_valid_config(snippet: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(snippet, encoding="utf-8")
    env = {"LECTERN_HOME": str(tmp_path / "data")}
    try:
        config = load_config(path, env=env)
    except ConfigError as exc:
        pytest.fail(f"the guide's snippet does not load: {exc}\n---\n{snippet}")
    assert not config.demo, "a snippet that configures no backend says nothing"
    pool = BackendPool(config.backend_tables(), config.profiles(), data_dir=tmp_path / "data")
    try:
        for spec in pool.specs:
            assert spec.context > 0
            assert config.backends[spec.name].kind == spec.kind
    finally:
        pool.close()


def test_a_broken_snippet_would_fail(tmp_path: Path) -> None:
    """The check above can fail: a typo'd key is refused by the same loader."""
    path = tmp_path / "config.toml"
    path.write_text('[backends.x]\nkind = "mlx"\nmodel_pth = "/m"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="model_pth"):
        load_config(path, env={"LECTERN_HOME": str(tmp_path)})
