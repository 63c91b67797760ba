"""What a user reads when the config is wrong: the key's full name and the fix.

``ConfigError`` is the one error of the config package. ``explain`` turns one
pydantic error into a sentence in Lectern's words (``backends.flash.kind =
'opnai' is not one of openai, llama_cpp, mlx.``): the schema's fields carry the
phrases (``backends.settings.must``) and the fix for a missing key; the
location is walked through the schema to name the key as the file spells it
and to list what a table accepts, with a "did you mean" for a typo.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from app.core.config.errors import ConfigError
from backends.settings import SETTING_ERROR

__all__ = ["ConfigError", "explain", "first_error"]

FULL_MESSAGE = "config"  # the error type of a message that is already the whole sentence


def first_error(errors: Sequence[ErrorDetails], root: type[BaseModel]) -> str:
    """The message of the error to show first: an unknown key (often a typo that also
    makes a required key look missing), else the first in file order."""
    ranked = sorted(errors, key=lambda e: e["type"] != "extra_forbidden")
    return explain(ranked[0], root)


def explain(error: ErrorDetails, root: type[BaseModel]) -> str:
    """One pydantic error of validating ``root`` as a sentence naming the key and the fix."""
    kind, value = error["type"], error.get("input")
    at = _locate(root, error["loc"])
    name = at.name
    if kind == FULL_MESSAGE:
        return error["msg"]
    if kind == SETTING_ERROR:
        return f"{name} = {_show(value)} {error['msg']}."
    if kind == "extra_forbidden":
        allowed = list(at.parent.model_fields) if at.parent is not None else []
        close = difflib.get_close_matches(at.key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        place = f"[{at.where}]" if at.where else "the top level"
        return f"{name} is not a setting{hint}; {place} accepts {', '.join(allowed)}."
    if kind == "missing":
        extra = at.field.json_schema_extra if at.field is not None else None
        fix = extra.get("missing") if isinstance(extra, dict) else None
        return f"{name} is missing: {fix or 'add it'}."
    tags = _tags(at.type)
    if kind == "union_tag_not_found":
        return f"{name}.kind is missing: set kind = one of {', '.join(tags)}."
    if kind == "union_tag_invalid":
        tag = value.get("kind") if isinstance(value, dict) else value
        return f"{name}.kind = {_show(tag)} is not one of {', '.join(tags)}."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if tags:
            return f"{name} must be a table, like [{name}] with kind = ..."
        example = _example(at.type)
        if example:
            return f"{name} must be a table like {example}."
        return f"{name} must be a table ([{name}])."
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type"):
        example = _example(_item(at.type))
        return f"{name} must be a list like [{example}]." if example else f"{name} must be a list."
    return f"{name}: {error['msg']}."


def _show(value: Any) -> str:
    """A value as the user wrote it (TOML spells booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class _At:
    """Where a location points in the schema: the name as written, its table, its field."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.parent: type[BaseModel] | None = None  # the model holding the last key
        self.field: FieldInfo | None = None
        self.type: Any = None  # the type at the location
        self.key = ""

    @property
    def name(self) -> str:
        out = ""
        for part in self.parts:
            out += part if part.startswith("[") or not out else f".{part}"
        return out

    @property
    def where(self) -> str:
        """The name of the table holding the last key."""
        at = _At()
        at.parts = self.parts[:-1]
        return at.name


def _locate(root: type[BaseModel], loc: Sequence[int | str]) -> _At:
    at = _At()
    tp: Any = root
    quote = False
    for part in loc:
        tp = _strip(tp)
        if isinstance(part, int):
            at.parts.append(f"[{part}]")
            tp = _item(tp)
            continue
        member = _member(tp, part)
        if member is not None:  # a discriminated union's tag: not part of the name
            tp = member
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            at.parent, at.key = tp, part
            at.field = tp.model_fields.get(part)
            at.parts.append(part)
            quote = part == "profiles"  # profile ids are written quoted: [profiles."ID"]
            tp = at.field.annotation if at.field is not None else None
            continue
        at.parts.append(f'"{part}"' if quote else part)
        at.field, at.parent = None, None
        args = get_args(tp)
        tp = args[1] if get_origin(tp) is dict and len(args) == 2 else None
    at.type = tp
    return at


def _strip(tp: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _members(tp: Any) -> list[type[BaseModel]]:
    tp = _strip(tp)
    if get_origin(tp) not in (Union, types.UnionType):
        return []
    found = [_strip(a) for a in get_args(tp)]
    return [m for m in found if isinstance(m, type) and issubclass(m, BaseModel)]


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    return field.default if field is not None and isinstance(field.default, str) else None


def _member(tp: Any, part: str) -> type[BaseModel] | None:
    return next((m for m in _members(tp) if _tag(m) == part), None)


def _tags(tp: Any) -> list[str]:
    return [t for t in (_tag(m) for m in _members(tp)) if t is not None]


def _item(tp: Any) -> Any:
    args = get_args(_strip(tp))
    return args[0] if args else None


def _example(tp: Any) -> str | None:
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        extra = tp.model_config.get("json_schema_extra")
        if isinstance(extra, dict) and isinstance(extra.get("example"), str):
            return str(extra["example"])
    return None
