"""Walking inputs: order, display paths, ignore files, skipped folders, links, force."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.ingest.walk import walk


def write(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def paths(root: Path, *inputs: Path, **kw: object) -> list[str]:
    return [c.path for c in walk(list(inputs) or [root], **kw).files]  # type: ignore[arg-type]


def test_inputs_keep_their_order_and_folders_sort_by_relative_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in ("b.txt", "a/z.txt", "a.txt", "a-b/y.txt", "B.txt"):
        write(repo / rel)
    single = write(tmp_path / "notes.md")
    got = [c.path for c in walk([single, repo]).files]
    # Case-sensitive sort of the relative path string ("-" < "." < "/" < letters).
    assert got == ["notes.md", "repo/B.txt", "repo/a-b/y.txt", "repo/a.txt", "repo/a/z.txt",
                   "repo/b.txt"]  # fmt: skip


def test_colliding_input_names_get_their_parent_folders(tmp_path: Path) -> None:
    one = write(tmp_path / "x" / "docs" / "a.txt").parent
    two = write(tmp_path / "y" / "docs" / "a.txt").parent
    lone = write(tmp_path / "x" / "readme.txt")
    other = write(tmp_path / "y" / "readme.txt")
    got = [c.path for c in walk([one, two, lone, other]).files]
    assert got == ["x/docs/a.txt", "y/docs/a.txt", "x/readme.txt", "y/readme.txt"]


def test_gitignore_rules_nest_and_negate(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / ".gitignore", "*.log\nsecret/\n")
    write(repo / "app.log")
    write(repo / "keep.py")
    write(repo / "secret" / "x.py")
    write(repo / "sub" / ".gitignore", "!important.log\n*.tmp\n")
    write(repo / "sub" / "important.log")
    write(repo / "sub" / "other.log")
    write(repo / "sub" / "a.tmp")
    write(repo / "top.tmp")
    result = walk([repo])
    got = [c.path for c in result.files]
    assert got == ["repo/.gitignore", "repo/keep.py", "repo/sub/.gitignore",
                   "repo/sub/important.log", "repo/top.tmp"]  # fmt: skip
    ignored = {i.path: i.reason for i in result.ignored}
    assert ignored["repo/app.log"] == "matches `*.log` in .gitignore"
    assert ignored["repo/secret/"] == "matches `secret/` in .gitignore"
    assert ignored["repo/sub/a.tmp"] == "matches `*.tmp` in sub/.gitignore"
    assert "repo/sub/other.log" in ignored


def test_lecternignore_beats_ignore_beats_gitignore(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / ".gitignore", "*.md\n")
    write(repo / ".ignore", "!keep.md\nnotes.txt\n")
    write(repo / ".lecternignore", "!notes.txt\ndrafts/\n")
    write(repo / "keep.md")
    write(repo / "drop.md")
    write(repo / "notes.txt")
    write(repo / "drafts" / "d.txt")
    got = paths(repo)
    assert "repo/keep.md" in got and "repo/notes.txt" in got
    assert "repo/drop.md" not in got and "repo/drafts/d.txt" not in got


def test_version_control_dependency_and_build_folders_are_skipped(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in (".git/config", "node_modules/x/i.js", ".venv/lib/y.py", "__pycache__/a.pyc",
                "build/out.txt", "pkg.egg-info/PKG-INFO", "src/main.py"):  # fmt: skip
        write(repo / rel)
    result = walk([repo])
    assert [c.path for c in result.files] == ["repo/src/main.py"]
    skipped = {i.path for i in result.ignored}
    assert {"repo/.git/", "repo/node_modules/", "repo/.venv/", "repo/build/"} <= skipped


def test_a_folder_given_directly_is_walked_even_if_named_like_a_skipped_one(
    tmp_path: Path,
) -> None:
    build = tmp_path / "build"
    write(build / "report.txt")
    assert paths(build) == ["build/report.txt"]


def test_files_that_may_hold_secrets_are_left_out(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in (".env", ".env.local", ".env.example", "key.pem", "main.py"):
        write(repo / rel)
    result = walk([repo])
    assert [c.path for c in result.files] == ["repo/.env.example", "repo/main.py"]
    assert all("secrets" in i.reason for i in result.ignored)


def test_force_overrides_ignore_rules_and_skipped_folders(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / ".gitignore", "*.log\n")
    write(repo / "app.log")
    write(repo / "node_modules" / "lib" / "index.js")
    write(repo / "node_modules" / "lib" / "other.js")
    force = {"*.log", "repo/node_modules/lib/index.js"}
    result = walk([repo], force=force)
    got = {c.path: c.forced for c in result.files}
    assert got["repo/app.log"] is True
    assert got["repo/node_modules/lib/index.js"] is True
    assert "repo/node_modules/lib/other.js" not in got


def test_a_file_named_directly_is_never_ignored(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "*.log\n")
    log = write(tmp_path / "app.log")
    assert paths(tmp_path, log) == ["app.log"]


def test_missing_paths_are_problems(tmp_path: Path) -> None:
    result = walk([tmp_path / "nope.txt"])
    assert result.files == []
    assert result.problems[0].reason == "does not exist; check the path"


def test_symlink_loops_are_reported_not_followed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "a" / "f.txt")
    os.symlink(repo, repo / "a" / "back")  # a folder link to an ancestor
    os.symlink("self", repo / "self")  # a link to itself
    for follow in (False, True):
        result = walk([repo], follow_symlinks=follow)
        assert [c.path for c in result.files] == ["repo/a/f.txt"]
        reasons = {p.path: p.reason for p in result.problems}
        assert reasons["repo/a/back/"].startswith("symlink loop: it points back to")
        assert reasons["repo/self"].startswith("symlink loop")


def test_symlinked_folders_are_followed_only_when_asked(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "o.txt")
    repo = tmp_path / "repo"
    write(repo / "r.txt")
    os.symlink(outside, repo / "linked")
    os.symlink(tmp_path / "missing", repo / "dangling")
    result = walk([repo])
    assert [c.path for c in result.files] == ["repo/r.txt"]
    assert any(i.path == "repo/linked/" for i in result.ignored)
    assert any(p.reason.startswith("broken symlink") for p in result.problems)
    assert paths(repo, repo, follow_symlinks=True) == ["repo/linked/o.txt", "repo/r.txt"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipes_are_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    write(tmp_path / "ok.txt")
    result = walk([tmp_path])
    assert [c.path.split("/")[-1] for c in result.files] == ["ok.txt"]
    assert "named pipe" in result.problems[0].reason
