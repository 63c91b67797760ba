"""Size and start-up time of the built bundle against the virtualenv, as one JSON object.

    .venv/bin/python packaging/measure.py [--runs 10] [--bundle dist/lectern/lectern]

Measures, each command in the bundle and with ``.venv/bin/lectern`` (the
baseline, measured in the same run):

* ``lectern --version``: interpreter and bootloader start-up only;
* ``lectern ingest SAMPLE``: start-up plus the real imports (PyMuPDF,
  tokenizers, rich) and a small ingest (a 2-page PDF, a DOCX, text and code);

with hyperfine when it is installed (``apt-get install hyperfine``), else a
timing loop (median and min of ``--runs`` runs after one warm-up). Also the
bundle's size on disk. Each run gets an empty data dir and config.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_bundle() -> Path:
    if sys.platform == "darwin":
        return ROOT / "dist" / "Lectern.app" / "Contents" / "MacOS" / "lectern"
    return ROOT / "dist" / "lectern" / "lectern"


def bundle_root(binary: Path) -> Path:
    return binary.parents[2] if binary.parent.name == "MacOS" else binary.parent


def make_sample(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.docs import make_docx, make_pdf

    sample = folder / "sample"
    sample.mkdir()
    make_pdf(sample / "brief.pdf", ["The liability cap is 12 percent.", "Second page."])
    make_docx(sample / "memo.docx", [("heading", (1, "Memo")), ("para", "Fees are due.")])
    (sample / "notes.txt").write_text("Meeting notes.\nThe cap is 12 percent.\n", "utf-8")
    (sample / "app.py").write_text("def cap():\n    return 0.12\n", "utf-8")
    return sample


def du_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def time_hyperfine(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "h.json"
        args = ["hyperfine", "--style", "none", "--warmup", "1", "--runs", str(runs)]
        args += ["--export-json", str(export)]
        for name, cmd in commands.items():
            args += ["-n", name, " ".join(_quote(c) for c in cmd)]
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
        for result in json.loads(export.read_text())["results"]:
            out[result["command"]] = {
                "median_s": round(result["median"], 4),
                "min_s": round(result["min"], 4),
                "mean_s": round(result["mean"], 4),
            }
    return out


def time_loop(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict:
    out: dict[str, dict[str, float]] = {}
    for name, cmd in commands.items():
        samples = []
        for i in range(runs + 1):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            if i:  # the first run warms the page cache
                samples.append(time.perf_counter() - start)
        out[name] = {
            "median_s": round(statistics.median(samples), 4),
            "min_s": round(min(samples), 4),
            "mean_s": round(statistics.fmean(samples), 4),
        }
    return out


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--bundle", type=Path, default=default_bundle())
    parser.add_argument("--venv-lectern", type=Path, default=ROOT / ".venv" / "bin" / "lectern")
    args = parser.parse_args()
    if not args.bundle.exists():
        print(f"no bundle at {args.bundle}: run packaging/build first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        sample = make_sample(home)
        (home / "config.toml").write_text("", "utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LECTERN_", "DEEPSEEK_"))}
        env.update(LECTERN_HOME=str(home / "data"), LECTERN_CONFIG=str(home / "config.toml"))
        bundle, venv = str(args.bundle), str(args.venv_lectern)
        commands = {
            "bundle --version": [bundle, "--version"],
            "venv --version": [venv, "--version"],
            "bundle ingest sample": [bundle, "ingest", str(sample)],
            "venv ingest sample": [venv, "ingest", str(sample)],
        }
        tool = "hyperfine" if shutil.which("hyperfine") else "loop"
        timer = time_hyperfine if tool == "hyperfine" else time_loop
        times = timer(commands, args.runs, env)
    root = bundle_root(args.bundle)
    report = {
        "bundle": str(root),
        "bundle_bytes": du_bytes(root),
        "bundle_mb": round(du_bytes(root) / 1e6, 1),
        "demo_model_mb": round(
            sum(p.stat().st_size for p in root.rglob("gemma-3-270m-q4_k_m.gguf.part*")) / 1e6, 1
        ),
        "timer": tool,
        "runs": args.runs,
        "times": times,
        "bundle_vs_venv": {
            what: round(times[f"bundle {what}"]["median_s"] / times[f"venv {what}"]["median_s"], 2)
            for what in ("--version", "ingest sample")
        },
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
