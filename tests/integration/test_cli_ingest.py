"""``lectern ingest`` as a user runs it: a fresh process, real files, real output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.tokens import deepseek_v4
from tests.fixtures.docs import make_docx, make_pdf

ROOT = Path(__file__).resolve().parents[2]
TC = deepseek_v4()
NOTES = "Meeting notes.\n\n- item one\n- item two with 中文 and émoji 😀\n"


def lectern(*args: str, check_code: int | None = 0) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", *args],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip
    if check_code is not None:
        assert out.returncode == check_code, out.stderr
    return out


def corpus(root: Path) -> Path:
    folder = root / "case"
    (folder / "src").mkdir(parents=True)
    (folder / "notes.txt").write_text(NOTES, encoding="utf-8")
    (folder / "src" / "app.py").write_text("import os\n\n\ndef main():\n    pass\n")
    (folder / "empty.txt").write_text("")
    make_pdf(folder / "brief.pdf", ["First page of the brief.", "Second page."])
    make_docx(folder / "memo.docx", [("heading", (1, "Memo")), ("para", "Body.")])
    (folder / "copy-of-brief.pdf").write_bytes((folder / "brief.pdf").read_bytes())
    return folder


def test_json_report_and_corpus_out_agree_exactly(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    out_file = tmp_path / "block.txt"
    report: dict[str, Any] = json.loads(
        lectern("--json", "--corpus-out", str(out_file), str(folder)).stdout
    )
    block = out_file.read_bytes().decode("utf-8")
    assert report["total_tokens"] == TC.count(block)
    assert report["window"] == 1_048_576 and report["fits"] is True
    docs = {d["path"]: d for d in report["documents"]}
    assert list(docs) == ["case/brief.pdf", "case/memo.docx", "case/notes.txt", "case/src/app.py"]
    assert report["duplicates"] == [{"path": "case/copy-of-brief.pdf", "same_as": "case/brief.pdf"}]
    assert docs["case/notes.txt"]["tokens"] == TC.count(NOTES)
    assert docs["case/notes.txt"]["lines"] == 4
    assert docs["case/brief.pdf"]["pages"] == 2
    assert docs["case/src/app.py"]["language"] == "python"
    assert sum(d["block_tokens"] for d in docs.values()) == report["total_tokens"]
    for d in docs.values():
        assert set(d) >= {"path", "kind", "tokens", "sha256", "notes"}
        assert len(d["sha256"]) == 64
    assert report["problems"] == [
        {"path": "case/empty.txt", "reason": "empty file (0 bytes)", "forceable": False}
    ]
    assert block.startswith('<document path="case/brief.pdf" kind="pdf" pages="2">\n')
    assert "[case/brief.pdf p.2]\nSecond page.\n" in block
    assert "1\timport os\n2\t\n3\t\n4\tdef main():\n" in block


def test_corpus_out_is_byte_identical_across_runs(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    lectern("--corpus-out", str(first), str(folder))
    lectern("--corpus-out", str(second), str(folder))
    assert first.read_bytes() == second.read_bytes()


def test_terminal_report_shows_documents_problems_and_total(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    out = lectern(str(folder), str(tmp_path / "missing.md"))
    text = out.stdout
    assert "case/notes.txt" in text and "case/brief.pdf" in text
    assert "empty file (0 bytes)" in text
    assert "does not exist; check the path" in text
    assert "case/copy-of-brief.pdf = case/brief.pdf" in text
    assert "of the 1,048,576-token window" in text


def test_force_and_max_size(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_text("line of log text\n" * 80_000, encoding="utf-8")  # 1.4 MB
    skipped = json.loads(lectern("--json", "--max-size", "1", str(big), check_code=1).stdout)
    assert skipped["documents"] == []
    assert skipped["problems"][0]["forceable"] is True
    forced = json.loads(lectern("--json", "--max-size", "1", "--force", "big.log", str(big)).stdout)
    assert forced["documents"][0]["tokens"] == TC.count(big.read_text(encoding="utf-8"))


def test_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    nothing = lectern("--json", str(tmp_path / "empty.txt"), check_code=1)
    assert json.loads(nothing.stdout)["documents"] == []
    lectern(check_code=2)  # no PATH
    lectern("--max-size", "0", str(tmp_path), check_code=2)
    lectern("--corpus-out", str(tmp_path / "no" / "dir" / "x.txt"), str(tmp_path), check_code=2)


def test_terminal_report_shows_paths_with_brackets_as_they_are(tmp_path: Path) -> None:
    # "[draft]" and "[/]" are rich markup: a path must never be read as markup.
    folder = tmp_path / "docs"
    (folder / "a[").mkdir(parents=True)
    (folder / "a[" / "]b.txt").write_text("closing tag\n", encoding="utf-8")
    (folder / "report[draft].txt").write_text("draft\n", encoding="utf-8")
    (folder / "[red]empty.txt").write_text("")
    text = lectern(str(folder)).stdout
    assert "docs/a[/]b.txt" in text
    assert "docs/report[draft].txt" in text
    assert "docs/[red]empty.txt: empty file (0 bytes)" in text


def test_progress_bar_shows_a_path_with_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar's current file is shown as it is, never read as rich markup."""
    import io

    from app.commands.common import ProgressPrinter
    from app.core.events import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws the bar as in a terminal
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    bar = ProgressPrinter()
    bar(Progress("ingest", 1, 2, "files", tokens=3, current="docs/a[/]b.txt"))
    bar(Progress("ingest", 2, 2, "files", tokens=9, current="docs/a[/]b.txt"))
    bar.close()
    shown = term.getvalue()
    assert "docs/a[/]b.txt" in shown and "2/2 files" in shown and "9 tokens" in shown


def _ingest_with_config(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    env = {**__import__("os").environ, "LECTERN_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", "--json", *args],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300, check=False,
        env=env,
    )  # fmt: skip


def test_the_config_max_file_mb_applies_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_text("line of log text\n" * 80_000, encoding="utf-8")  # 1.4 MB
    skipped = _ingest_with_config(tmp_path, "[ingest]\nmax_file_mb = 1\n", str(big))
    assert skipped.returncode == 1, skipped.stderr
    assert json.loads(skipped.stdout)["problems"][0]["forceable"] is True
    kept = _ingest_with_config(tmp_path, "[ingest]\nmax_file_mb = 2.5\n", str(big))
    assert kept.returncode == 0, kept.stderr
    wrong = _ingest_with_config(tmp_path, '[ingest]\nmax_file_mb = "big"\n', str(big))
    assert wrong.returncode == 2
    assert "ingest.max_file_mb" in wrong.stderr and "positive number" in wrong.stderr
    typo = _ingest_with_config(tmp_path, "[ingest]\nmax_file_mbb = 3\n", str(big))
    assert typo.returncode == 2 and "max_file_mbb" in typo.stderr


def test_reading_files_does_not_depend_on_the_backends_config(tmp_path: Path) -> None:
    """A typo in a backend table is for `lectern backends` and the window to report:
    counting files needs none of it (and does not load it)."""
    note = tmp_path / "note.txt"
    note.write_text(NOTES, encoding="utf-8")
    out = _ingest_with_config(
        tmp_path, '[backends.flash]\nkind = "opnai"\n\n[ingest]\nmax_file_mb = 5\n', str(note)
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["documents"][0]["tokens"] == TC.count(NOTES)


def test_ingest_loads_neither_pydantic_nor_the_store_nor_the_backends(tmp_path: Path) -> None:
    """What makes a small ingest start as fast as the counter (issue 18): reading
    files imports no config schema (pydantic), no session store, no backend, and
    not ``tokenizers`` (the stored fast counter gives the counts; the count cache
    is the one SQLite file it opens)."""
    note = tmp_path / "note.txt"
    note.write_text(NOTES, encoding="utf-8")
    probe = (
        "import json, sys\n"
        "from app.cli import main\n"
        "code = main(['ingest', '--json', sys.argv[1]])\n"
        "heavy = [m for m in ('pydantic', 'backends.settings', 'backends.router', "
        "'app.core.session.store', 'app.core.config.load', 'tokenizers') "
        "if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(note)],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(out.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, out.stderr
    assert json.loads(out.stdout)["documents"][0]["tokens"] == TC.count(NOTES)
