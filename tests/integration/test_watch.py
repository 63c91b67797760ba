"""Watching a session's folder: an editor's save-by-rename is noticed, and the next
answer's prompt holds the new text while the earlier prefix is still a cache hit
(DeepSeek fixture server on loopback, real SQLite, real files)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.workspace import Workspace
from app.core.workspace.watch import Changes, Watcher
from tests.fixtures.deepseek_server import DeepSeekServer
from tests.fixtures.lectern_env import TEST_KEY_ENV, fixture_config

OLD = "def rate():\n    return 0.25  # the commission rate\n"
NEW = "def rate():\n    return 0.31  # the commission rate, raised in March\n"
NOTES = "Commission notes.\n" + "The rate is reviewed every quarter by the board.\n" * 40


@pytest.fixture(scope="module")
def server() -> Iterator[DeepSeekServer]:
    with DeepSeekServer(cache_interval=None) as srv:
        yield srv


def open_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: DeepSeekServer) -> Workspace:
    from app.core.config import load_config

    home = tmp_path / "home"
    monkeypatch.setenv("LECTERN_HOME", str(home))
    monkeypatch.setenv(TEST_KEY_ENV, "sk-lectern-fixture-0000")
    config = tmp_path / "config.toml"
    fixture_config(config, server.base_url, cascade={"max_tries": 2})
    return Workspace.open(load_config(config, env={"LECTERN_HOME": str(home)}))


def save_like_an_editor(path: Path, text: str) -> None:
    """Write a temp file beside ``path`` and rename it over (vim, VS Code, JetBrains)."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def wait_for(watcher: Watcher, timeout: float = 10.0) -> Changes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watcher.pending():
            return watcher.take()
        time.sleep(0.05)
    raise AssertionError("the watcher reported nothing")


def prompt_text(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    return "\n".join(str(m.get("content", "")) for m in messages)


def test_a_save_by_rename_is_read_again_and_the_prefix_still_hits(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    code = tmp_path / "repo"
    code.mkdir()
    (code / "pricing.py").write_text(OLD, encoding="utf-8")
    (code / "notes.md").write_text(NOTES, encoding="utf-8")
    ws = open_ws(tmp_path, monkeypatch, server)
    reported: list[Changes] = []
    watcher = Watcher(reported.append, interval=0.05, debounce=0.1)
    try:
        name = ws.create_session("code").name
        ws.add_paths(name, [str(code)])
        watcher.watch([str(code), str(code / "pricing.py")])  # one watch per folder
        assert watcher.roots == [str(code.resolve())]
        watcher.start()
        first = ws.ask(name, ws.plan(name, "What is the commission rate?"))
        assert first.ok
        first_prompt = prompt_text(server.last_body)
        assert "0.25" in first_prompt and "0.31" not in first_prompt

        save_like_an_editor(code / "pricing.py", NEW)
        changes = wait_for(watcher)
        assert changes.changed == (str((code / "pricing.py").resolve()),)
        assert changes.added == () and changes.deleted == ()  # the temp file came and went
        assert reported and reported[-1] == changes

        synced = ws.sync(name, watcher.roots)
        assert synced.reread == ("repo/pricing.py",) and synced.excluded == ()
        assert synced.tokens > 0
        assert synced.describe().startswith(
            f"1 changed file read again: +{synced.tokens:,} tokens appended"
        )
        before = len(server.chat_requests)
        second = ws.ask(name, ws.plan(name, "And now?"))
        assert second.ok
        asked = server.chat_requests[before:]
        final = asked[-1]
        assert final.body is not None
        prompt = prompt_text(final.body)
        assert "0.31" in prompt and prompt.startswith(first_prompt.rsplit("What is", 1)[0][:200])
        assert final.cache_hit > 0  # the earlier prefix (corpus + first turn) is still cached
        assert final.cache_hit >= server.chat_requests[before - 1].prompt_tokens // 2
    finally:
        watcher.stop()
        ws.close()


def test_a_deleted_file_becomes_an_exclusion(
    tmp_path: Path, server: DeepSeekServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    code = tmp_path / "repo"
    code.mkdir()
    (code / "pricing.py").write_text(OLD, encoding="utf-8")
    (code / "notes.md").write_text(NOTES, encoding="utf-8")
    ws = open_ws(tmp_path, monkeypatch, server)
    watcher = Watcher(interval=0.05, debounce=0.1)
    try:
        name = ws.create_session("code").name
        ws.add_paths(name, [str(code)])
        watcher.watch([str(code)])
        (code / "notes.md").unlink()
        (code / "extra.txt").write_text("A new file.\n", encoding="utf-8")
        watcher.poll()
        for _ in range(5):
            watcher.poll()
        changes = watcher.take()
        assert changes.deleted == (str((code / "notes.md").resolve()),)
        assert changes.added == (str((code / "extra.txt").resolve()),)
        assert changes.describe() == "1 new, 1 deleted files"
        synced = ws.sync(name, watcher.roots)
        assert synced.excluded == ("repo/notes.md",) and synced.added == ("repo/extra.txt",)
        assert "1 deleted file excluded" in synced.describe()
        states = {d.document.path: d.status for d in ws.session(name).documents()}
        assert states == {
            "repo/notes.md": "excluded",
            "repo/pricing.py": "active",
            "repo/extra.txt": "active",
        }
    finally:
        ws.close()
