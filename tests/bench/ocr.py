"""Benchmark: OCR of scanned pages by Lectern's ingestion, at 150 and 300 dpi.

Pages of known text are generated in the run (varied prose, one page each),
rendered by PyMuPDF, rasterized at 150 and 300 dpi and embedded as images
only, so the PDFs have no text layer. Each is ingested by Lectern
(``app.core.ingest.pipeline.ingest``, the path the CLI and window use), which
OCRs the pages with Tesseract. The character error rate compares the corpus
text with the known text (whitespace runs collapsed to one space; Levenshtein
distance over the known text's length). The baseline, in the same run, is
ingesting the same pages with their text layer (no OCR).

Prints one JSON object: ``pages``, ``pages_per_second_150dpi``,
``pages_per_second_300dpi``, ``cer_150dpi``, ``cer_300dpi`` (target <= 0.02),
``baseline_pages_per_second``, ``engine`` and ``confidence`` per dpi.
Run: ``PYTHONPATH=$PWD .venv/bin/python tests/bench/ocr.py [--pages N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.core.ingest import ocr  # noqa: E402
from app.core.ingest.pipeline import IngestOptions, ingest  # noqa: E402
from tests.fixtures.docs import make_pdf, make_scanned_pdf, prose  # noqa: E402


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(truth: str, read: str) -> float:
    t, r = " ".join(truth.split()), " ".join(read.split())
    return levenshtein(t, r) / max(1, len(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4)
    args = parser.parse_args()
    missing = ocr.missing_message()
    if missing:
        sys.exit(missing)
    rng = random.Random(19)
    texts = [prose(rng, 24, (6, 10)) for _ in range(args.pages)]
    options = IngestOptions(count_cache=False)
    out: dict[str, object] = {"pages": args.pages}
    version = subprocess.run(
        [ocr.tesseract_path() or "tesseract", "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    out["engine"] = version[0] if version else "tesseract"
    with tempfile.TemporaryDirectory(prefix="lectern-bench-ocr-") as tmp:
        base = make_pdf(Path(tmp) / "text.pdf", texts, fontsize=11)
        ingest([base], options=options)  # warm: tokenizer loaded, imports done
        start = time.perf_counter()
        ingest([base], options=options)
        out["baseline_pages_per_second"] = round(args.pages / (time.perf_counter() - start), 2)
        for dpi in (150, 300):
            pdf = make_scanned_pdf(Path(tmp) / f"scan{dpi}.pdf", texts, dpi=dpi)
            start = time.perf_counter()
            result = ingest([pdf], options=options)
            seconds = time.perf_counter() - start
            (doc,) = result.documents
            errors = [cer(t, doc.page_text(n + 1) or "") for n, t in enumerate(texts)]
            out[f"pages_per_second_{dpi}dpi"] = round(args.pages / seconds, 3)
            out[f"cer_{dpi}dpi"] = round(sum(errors) / len(errors), 4)
            out[f"confidence_{dpi}dpi"] = doc.notes[0].rsplit(" ", 1)[1] if doc.notes else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
