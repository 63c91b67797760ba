"""Writing ``config.toml`` back, for the window's settings: validated first, always.

``save_config_table(path, table)`` validates the whole document exactly as
loading does (so a saved file always loads, and a secret is refused before
anything is written), then writes it atomically (a temporary file in the same
folder, then a rename). The writer covers the types a config holds (tables,
arrays, strings, booleans, numbers, dates); comments in the old file are not
kept. ``read_toml(path)`` gives the document to edit.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.core.config.load import parse_config
from app.core.config.model import Config

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def save_config_table(
    path: Path, table: Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> Config:
    """Validate ``table`` (a whole config document) and write it to ``path``.

    Raises ``ConfigError`` (naming the key and the fix) and writes nothing when
    the document is invalid. Returns the loaded config.
    """
    config = parse_config(table, path=path, env=env)
    text = to_toml(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return config


def to_toml(table: Mapping[str, Any]) -> str:
    """``table`` as a TOML document: plain keys first, then one ``[section]`` per table."""
    lines: list[str] = []
    _table(table, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(table: Mapping[str, Any], where: tuple[str, ...], lines: list[str]) -> None:
    subtables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    plain = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    if where and (plain or not subtables):
        lines += ["", f"[{'.'.join(_key(k) for k in where)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in plain if v is not None]
    for key, sub in subtables:
        _table(sub, (*where, str(key)), lines)


def _key(key: Any) -> str:
    key = str(key)
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes are TOML's, except that TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} cannot be written to the config file")
        return repr(number) if isinstance(value, float) else _decimal(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return _string(os.fspath(value))
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, Sequence | set | frozenset):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be written to the config file")


def _decimal(value: Decimal) -> str:
    text = format(value, "f")
    return text if "." in text else text + ".0"
