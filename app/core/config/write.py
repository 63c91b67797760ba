"""Writing ``config.toml`` back, for the window's settings: validated first, always.

``save_config_table(path, table)`` validates the whole document exactly as
loading does (so a saved file always loads, and a secret is refused before
anything is written), then writes it atomically (a temporary file in the same
folder, then a rename). An existing file is edited in place with tomlkit: its
comments, its order and the spelling of every value that did not change are
kept; only what changed is rewritten, and keys the new document drops are
removed. A new file is written from scratch (tables, arrays, strings,
booleans, numbers, dates). ``read_toml(path)`` gives the document to edit.
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
    text = _edited(path, table)
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


def _edited(path: Path, table: Mapping[str, Any]) -> str:
    """The file at ``path`` edited into ``table`` (comments and order kept), or a new one."""
    import tomllib

    import tomlkit

    try:
        old = path.read_text(encoding="utf-8")
        doc = tomlkit.parse(old)
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError):
        return to_toml(table)
    _merge(doc, table)
    text = tomlkit.dumps(doc)
    if tomllib.loads(text) != tomllib.loads(to_toml(table)):  # never write what was not asked
        return to_toml(table)
    return text


def _merge(doc: Any, new: Mapping[str, Any]) -> None:
    """Make tomlkit container ``doc`` hold ``new``, touching only what differs."""
    import tomlkit

    for key in [k for k in doc if k not in new or new[k] is None]:
        del doc[key]
    for key, value in new.items():
        if value is None:
            continue
        old = doc.get(key) if key in doc else None
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            _merge(old, value)
        elif key in doc and _plain(old) == _plain(value):
            continue  # unchanged: keep its spelling and its comment
        elif isinstance(value, Mapping):
            only_tables = all(isinstance(v, Mapping) for v in value.values() if v is not None)
            sub = tomlkit.table(is_super_table=only_tables)
            _merge(sub, value)
            if not only_tables:
                sub.add(tomlkit.nl())  # a blank line before the next table, as written by hand
            doc[key] = sub
        else:
            doc[key] = tomlkit.parse(f"v = {_value(value)}")["v"]


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    value = unwrap() if callable(unwrap) else value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


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
