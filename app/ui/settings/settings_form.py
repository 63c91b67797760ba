"""What the settings dialog edits, as plain data: read from and written into the TOML document.

Qt-free, so the mapping between the dialog's fields and ``config.toml`` is tested
without widgets. The dialog manages these parts of the file and nothing else:

* ``[backends.flash]`` and ``[backends.pro]`` of kind ``openai`` (the DeepSeek API);
* the first ``llama_cpp`` backend (a GGUF file, ``local`` when new) and the first
  ``mlx`` backend (a folder, ``mlx`` when new);
* every other ``openai`` backend (the endpoints list);
* ``offline``, ``[budget]`` caps and the ``[cascade]`` keys it shows.

Every other section, backend and key of the file is kept as it was, and a managed
backend keeps the keys the dialog does not show (``read_timeout``, ``profile``...).
Secrets are not part of the form at all: the API key goes to the OS keyring.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from app.core.config.schema import ESCALATE_ON

DEEPSEEK_URL = "https://api.deepseek.com"
FLASH_MODEL = "deepseek-v4-flash"
PRO_MODEL = "deepseek-v4-pro"
API_NAMES = ("flash", "pro")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class FormError(ValueError):
    """A field the dialog can reject before the file is validated; ``field`` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class EndpointForm:
    """One OpenAI-compatible server (``[backends.NAME] kind = "openai"``)."""

    name: str
    base_url: str
    model: str
    flavour: str | None = None  # set when discovery knows the server (vLLM)


@dataclass
class RuleForm:
    """``prompts over over_tokens tokens go to use``."""

    over_tokens: int
    use: str


@dataclass
class SettingsForm:
    api_enabled: bool = False
    base_url: str = DEEPSEEK_URL
    flash_model: str = FLASH_MODEL
    pro_model: str = PRO_MODEL
    api_key_env: str | None = None  # shown, never edited: the key's environment variable
    gguf_name: str = "local"
    gguf_path: str = ""
    mlx_name: str = "mlx"
    mlx_path: str = ""
    n_ctx: int | None = None
    endpoints: list[EndpointForm] = field(default_factory=list)
    offline: bool = False
    budget_message: str = ""
    budget_session: str = ""
    draft: str | None = None  # None: automatic
    review: str | None = None
    auto_review: bool = False
    escalate: bool = True
    escalate_on: set[str] = field(default_factory=lambda: set(ESCALATE_ON))
    rules: list[RuleForm] = field(default_factory=list)
    kept_backends: tuple[str, ...] = ()  # backends of the file the dialog does not manage

    def backend_names(self) -> list[str]:
        """Every backend the saved file will have, in the order the dialog shows them."""
        names = list(API_NAMES) if self.api_enabled else []
        if self.gguf_path.strip():
            names.append(self.gguf_name)
        if self.mlx_path.strip():
            names.append(self.mlx_name)
        names += [e.name.strip() for e in self.endpoints if e.name.strip()]
        names += [n for n in self.kept_backends if n not in names]
        return names


def describe(model: type[BaseModel], name: str, *, default: bool = False) -> str:
    """A schema field's description as a sentence (``default``: with its default in words)."""
    info = model.model_fields[name]
    text = (info.description or "").replace("`", "")
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    shown = extra.get("shown_default")
    if default and isinstance(shown, str):
        text += f" (default: {shown.replace('`', '')})"
    return text[:1].upper() + text[1:] + "." if text else ""


def parse_usd(text: str, label: str, field_name: str) -> Decimal | None:
    """A cap typed by the user: empty is no cap; ``$1.50``, ``1,50`` and ``0.5`` are amounts."""
    cleaned = text.strip().lstrip("$").strip().replace(",", ".")
    if not cleaned:
        return None
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise FormError(
            f"{label}: {text.strip()!r} is not an amount in USD. Type one like 0.50, "
            "or leave it empty for no cap.",
            field_name,
        )
    return amount


def form_from_document(doc: Mapping[str, Any]) -> SettingsForm:
    """The dialog's fields for a config document as read (``read_toml``; {} for none)."""
    form = SettingsForm()
    backends = _tables(doc.get("backends"))
    managed = managed_backends(doc)
    for name in API_NAMES:
        if name in managed:
            table = backends[name]
            form.api_enabled = True
            if name == "flash" or form.base_url == DEEPSEEK_URL:
                form.base_url = str(table.get("base_url", form.base_url))
            setattr(form, f"{name}_model", str(table.get("model", getattr(form, f"{name}_model"))))
            form.api_key_env = form.api_key_env or _str(table.get("api_key_env"))
    for name, table in backends.items():
        if name not in managed or name in API_NAMES:
            continue
        kind = table.get("kind")
        if kind == "llama_cpp":
            form.gguf_name, form.gguf_path = name, str(table.get("model_path", ""))
            form.n_ctx = _int(table.get("n_ctx")) or form.n_ctx
        elif kind == "mlx":
            form.mlx_name, form.mlx_path = name, str(table.get("model_path", ""))
            form.n_ctx = form.n_ctx or _int(table.get("n_ctx"))
        else:
            form.endpoints.append(
                EndpointForm(
                    name,
                    str(table.get("base_url", "")),
                    str(table.get("model", "")),
                    _str(table.get("flavour")),
                )
            )
    if not form.gguf_path and "local" in backends:
        form.gguf_name = _free("local", backends)
    if not form.mlx_path and "mlx" in backends:
        form.mlx_name = _free("mlx", backends)
    form.kept_backends = tuple(n for n in backends if n not in managed)
    form.offline = doc.get("offline") is True
    budget = _table(doc.get("budget"))
    form.budget_message = _amount_text(budget.get("per_message_usd"))
    form.budget_session = _amount_text(budget.get("per_session_usd"))
    cascade = _table(doc.get("cascade"))
    form.draft = _str(cascade.get("draft"))
    form.review = _str(cascade.get("review"))
    form.auto_review = cascade.get("auto_review") is True
    form.escalate = cascade.get("escalate_on_failure") is not False
    on = cascade.get("escalate_on")
    if isinstance(on, list):
        form.escalate_on = {str(x) for x in on if x in ESCALATE_ON}
    for rule in cascade.get("rules") or ():
        if isinstance(rule, Mapping):
            form.rules.append(
                RuleForm(_int(rule.get("over_tokens")) or 1, str(rule.get("use", "")))
            )
    return form


def managed_backends(doc: Mapping[str, Any]) -> list[str]:
    """The backends of ``doc`` this dialog shows (and so rewrites): see the module doc."""
    out: list[str] = []
    seen_kinds: set[str] = set()
    for name, table in _tables(doc.get("backends")).items():
        kind = table.get("kind")
        if kind == "openai":
            out.append(name)
        elif kind in ("llama_cpp", "mlx") and kind not in seen_kinds:
            seen_kinds.add(str(kind))
            out.append(name)
    return out


def document_from_form(form: SettingsForm, original: Mapping[str, Any]) -> dict[str, Any]:
    """``original`` with the dialog's parts replaced by ``form``; everything else as it was.

    Raises ``FormError`` for what only the dialog can judge (a typed amount, an
    endpoint's name); the rest is validated by ``save_config_table``.
    """
    doc: dict[str, Any] = copy.deepcopy(dict(original))
    old = _tables(doc.get("backends"))
    managed = set(managed_backends(original))
    backends: dict[str, Any] = {n: t for n, t in old.items() if n not in managed}

    def put(name: str, kind: str, values: Mapping[str, Any]) -> None:
        table = dict(old[name]) if name in old and old[name].get("kind") == kind else {}
        table["kind"] = kind
        for key, value in values.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        backends[name] = table

    if form.api_enabled:
        for name, model in (("flash", form.flash_model), ("pro", form.pro_model)):
            put(name, "openai", {"base_url": form.base_url.strip(), "model": model.strip()})
    if form.gguf_path.strip():
        put(
            form.gguf_name, "llama_cpp", {"model_path": form.gguf_path.strip(), "n_ctx": form.n_ctx}
        )
    if form.mlx_path.strip():
        put(form.mlx_name, "mlx", {"model_path": form.mlx_path.strip(), "n_ctx": form.n_ctx})
    for i, ep in enumerate(form.endpoints):
        name = _endpoint_name(ep, i, backends)
        values: dict[str, Any] = {"base_url": ep.base_url.strip(), "model": ep.model.strip()}
        if ep.flavour is not None:
            values["flavour"] = ep.flavour
        put(name, "openai", values)
    _set(doc, "backends", backends or None)
    _flag(doc, "offline", form.offline, False)
    _budget(doc, form)
    _cascade(doc, form)
    return doc


def _endpoint_name(ep: EndpointForm, index: int, taken: Mapping[str, Any]) -> str:
    name = ep.name.strip()
    where = f"Endpoint {index + 1}"
    if not name:
        raise FormError(f"{where} needs a name, like ollama or vllm.", f"endpoint:{index}")
    if not _NAME.match(name):
        raise FormError(
            f"{where}: the name {name!r} may hold only letters, digits, - and _.",
            f"endpoint:{index}",
        )
    if name in taken:
        raise FormError(
            f"{where}: the name {name!r} is already used by another backend; pick another.",
            f"endpoint:{index}",
        )
    return name


def _budget(doc: dict[str, Any], form: SettingsForm) -> None:
    budget = _table(doc.get("budget"))
    message = parse_usd(form.budget_message, "Per-message cap", "budget_message")
    session = parse_usd(form.budget_session, "Per-session cap", "budget_session")
    _set(budget, "per_message_usd", message)
    _set(budget, "per_session_usd", session)
    _set(doc, "budget", budget or None)


def _cascade(doc: dict[str, Any], form: SettingsForm) -> None:
    cascade = _table(doc.get("cascade"))
    draft, review = form.draft, form.review
    if form.api_enabled:
        draft = draft or "flash"
        review = review or "pro"
    _set(cascade, "draft", draft)
    _set(cascade, "review", review)
    _flag(cascade, "auto_review", form.auto_review, False)
    _flag(cascade, "escalate_on_failure", form.escalate, True)
    chosen = [x for x in ESCALATE_ON if x in form.escalate_on]
    _flag(cascade, "escalate_on", chosen, list(ESCALATE_ON))
    rules = [{"over_tokens": r.over_tokens, "use": r.use.strip()} for r in form.rules]
    _set(cascade, "rules", rules or None)
    _set(doc, "cascade", cascade or None)


def _set(table: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def _flag(table: dict[str, Any], key: str, value: Any, default: Any) -> None:
    """Write ``value``, unless it is the default and the file did not spell it out."""
    if value != default or key in table:
        table[key] = value


def _free(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever no backend has yet."""
    names = set(taken)
    n = 2
    name = base
    while name in names:
        name, n = f"{base}-{n}", n + 1
    return name


def _tables(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): dict(v) for k, v in value.items() if isinstance(v, Mapping)}


def _table(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _amount_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return ""
    return format(Decimal(str(value)).normalize(), "f")


@dataclass(frozen=True, slots=True)
class ModelFileChoice:
    """Where a model chosen on the first-run card goes in ``config.toml``: a backend
    named ``local`` (kind from the file: a ``.gguf`` file runs in llama.cpp, a folder in
    MLX) that drafts. ``replaces`` is what a ``local`` backend already there points at,
    when it is another model: the user decides between replacing it and ``spare``."""

    path: str
    kind: str
    replaces: str | None
    spare: str


def model_file_choice(doc: Mapping[str, Any], path: str) -> ModelFileChoice:
    backends = _table(doc.get("backends"))
    kind = "llama_cpp" if path.lower().endswith(".gguf") else "mlx"
    old = backends.get("local")
    replaces = None
    if isinstance(old, Mapping) and old.get("model_path") != path:
        replaces = str(old.get("model_path") or old.get("base_url") or "unknown")
    return ModelFileChoice(path, kind, replaces, _free("local", backends))


def use_model_file(doc: dict[str, Any], choice: ModelFileChoice, *, replace: bool) -> str:
    """Write ``choice`` into ``doc`` (as ``local``, or as ``spare`` when a different
    ``local`` is kept) and make it the drafting backend; returns the name used."""
    name = "local" if replace or choice.replaces is None else choice.spare
    doc.setdefault("backends", {})[name] = {"kind": choice.kind, "model_path": choice.path}
    doc.setdefault("cascade", {})["draft"] = name
    return name
