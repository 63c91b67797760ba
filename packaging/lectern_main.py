"""Entry point of the bundled ``lectern`` (PyInstaller freezes this file, not app/cli.py).

A frozen program has no Python interpreter to start worker processes with:
``multiprocessing`` re-runs this executable instead, and ``freeze_support()``
is what turns such a re-run into the worker (ingestion extracts PDFs in a
process pool, through a fork server when the window's threads are running).
It must run before anything else, so it lives here rather than in app/cli.py,
which stays an ordinary module for the installed ``lectern`` command.
"""

from __future__ import annotations

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
