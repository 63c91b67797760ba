"""Lectern: a local-first long-context document assistant."""

__version__ = "0.1.0"
