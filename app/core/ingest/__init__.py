"""Ingestion: files and folders in, ordered Documents with exact token counts out."""
