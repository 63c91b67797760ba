"""``[ingest] max_file_mb`` on its own, for reading files without the rest of the config.

``lectern ingest`` needs one key of the config file, and the whole config costs
pydantic and the backend schema (~50 ms, a quarter of a small ingest). So the
file is parsed with ``tomllib`` and, when its ``[ingest]`` table is absent or
holds nothing but a positive ``max_file_mb``, that is the answer. Anything else
(a file that is not TOML, a wrong type or an unknown key in ``[ingest]``, a
``LECTERN_CONFIG`` that points nowhere) goes through the full validation
(``load_config``), which raises the ``ConfigError`` naming the key and the fix:
one validator decides every error, this module only takes the easy valid case.
The rest of the file (backends, cascade) is not the business of reading files:
``lectern backends`` and the window report its problems.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping

from app.core.config.paths import config_path


def ingest_size_limit(env: Mapping[str, str] | None = None) -> int | None:
    """``[ingest] max_file_mb`` in bytes; None: ingestion's own default. Raises
    ``ConfigError`` as ``load_config`` does when ``[ingest]`` is not valid."""
    env = os.environ if env is None else env
    path = config_path(env)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not env.get("LECTERN_CONFIG"):
            return None  # no config file: the defaults
        raw = None
    except OSError:
        raw = None
    if raw is not None:
        try:
            table = tomllib.loads(raw.decode("utf-8")).get("ingest", {})
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            table = None
        if table == {}:
            return None
        if isinstance(table, dict) and set(table) == {"max_file_mb"}:
            mb = table["max_file_mb"]
            if isinstance(mb, int | float) and not isinstance(mb, bool) and 0 < mb < math.inf:
                return int(mb * 1_000_000)
    from app.core.config.load import load_config  # the full check, and its message

    mb_checked = load_config(env=env).ingest.max_file_mb
    return None if mb_checked is None else int(mb_checked * 1_000_000)
