"""The watcher's snapshots, debounce, one-watch-per-folder and change merging (real files)."""

from __future__ import annotations

import os
from pathlib import Path

from app.core.workspace.watch import Changes, Watcher, snapshot, watch_roots


def test_one_watch_per_folder(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("x")
    (tmp_path / "ab").mkdir()
    roots = watch_roots(
        [str(tmp_path / "a" / "b" / "f.txt"), str(tmp_path / "a"), str(tmp_path / "ab")]
    )
    assert roots == [str((tmp_path / "a").resolve()), str((tmp_path / "ab").resolve())]


def test_a_3000_file_tree_and_one_change_in_it(tmp_path: Path) -> None:
    for d in range(30):
        folder = tmp_path / f"pkg{d}"
        folder.mkdir()
        for f in range(100):
            (folder / f"m{f}.py").write_text(f"x = {f}\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "dep.js").write_text("skipped")
    assert len(snapshot([str(tmp_path)])) == 3000  # vendored folders are not watched
    watcher = Watcher(interval=0.1, debounce=0.2)
    watcher.watch([str(tmp_path)])
    target = tmp_path / "pkg7" / "m42.py"
    target.write_text("x = 'edited'\n")
    assert not watcher.poll()  # seen, held until quiet (debounced)
    assert not watcher.poll()  # quiet for 0.1 s: still held
    ready = watcher.poll()
    assert ready == Changes(changed=(str(target),))
    assert watcher.take() == ready and not watcher.take()


def test_a_burst_of_saves_is_one_report(tmp_path: Path) -> None:
    f = tmp_path / "doc.md"
    f.write_text("one")
    got: list[Changes] = []
    watcher = Watcher(got.append, interval=0.1, debounce=0.1)
    watcher.watch([str(f)])
    for text in ("two", "three", "four!"):
        tmp = tmp_path / ".doc.md.tmp"
        tmp.write_text(text)
        os.replace(tmp, f)
        watcher.poll()
    assert got == []
    watcher.poll()
    assert got == [Changes(changed=(str(f),))]


def test_merging_changes() -> None:
    a = Changes(added=("n",), changed=("c",))
    assert a.merged(Changes(deleted=("n",))) == Changes(changed=("c",))
    assert Changes(deleted=("d",)).merged(Changes(added=("d",))) == Changes(changed=("d",))
    assert a.merged(Changes(changed=("n",))) == a
    assert Changes(changed=("x",)).describe() == "1 changed file"
    assert not Changes()
