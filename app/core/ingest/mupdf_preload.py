"""Imported once by the extraction pool's forkserver so every worker starts with PyMuPDF."""

from app.core.ingest.paged import load_pymupdf

load_pymupdf()
