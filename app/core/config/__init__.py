"""The user's config file: backends, cascade, session defaults, budgets.

A TOML file at ``platformdirs.user_config_dir("lectern")/config.toml``
(``LECTERN_CONFIG`` overrides the path; ``LECTERN_HOME`` the data dir). Every
key is declared once, with its type, default and description
(``schema``; the backend tables in ``backends.settings``), and the file is
validated once, when loaded (``load``); every message names the key and the fix
(``config.toml: backends.flash.kind = 'opnai' is not one of openai, llama_cpp,
mlx.``). Secrets never live here: a key-looking field is refused with the way
to store the key instead (OS keyring, or ``api_key_env``). The window saves
settings through ``save_config_table``, which validates first (``write``).

No config file (or one without backends) means the demo: the tiny embedded
Gemma model through llama.cpp, no review backend, ``Config.demo`` set so the
CLI can say it is a demo (``demo``).

``app.core.config.wiring`` turns a ``Config`` into working parts; it is not
imported here (it needs the cascade's types, which need this package).

The package loads its parts on first use (``__getattr__``): a command that only
needs a path or one key (``lectern ingest`` reads ``[ingest]`` alone,
``ingest_limit``) does not pay for pydantic and the backend schema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.config.demo import (
        DEMO_BACKEND,
        DEMO_N_CTX,
        DEMO_PROFILE,
        DemoModelPath,
        demo_backend,
        is_demo,
    )
    from app.core.config.errors import ConfigError
    from app.core.config.load import (
        demo_config,
        example_config,
        load_config,
        parse_config,
        read_toml,
    )
    from app.core.config.model import Config
    from app.core.config.paths import config_path, data_dir
    from app.core.config.schema import (
        ESCALATE_ON,
        BudgetSection,
        CascadeSection,
        Document,
        IngestSection,
        Rule,
        SessionSection,
    )
    from app.core.config.write import save_config_table, to_toml
    from backends.settings import (
        FLAVOURS,
        KINDS,
        BackendSettings,
        LlamaCppSettings,
        MlxSettings,
        OpenAISettings,
    )

__all__ = [
    "DEMO_BACKEND",
    "DEMO_N_CTX",
    "DEMO_PROFILE",
    "ESCALATE_ON",
    "FLAVOURS",
    "KINDS",
    "BackendSettings",
    "BudgetSection",
    "CascadeSection",
    "Config",
    "ConfigError",
    "DemoModelPath",
    "Document",
    "IngestSection",
    "LlamaCppSettings",
    "MlxSettings",
    "OpenAISettings",
    "Rule",
    "SessionSection",
    "config_path",
    "data_dir",
    "demo_backend",
    "demo_config",
    "example_config",
    "is_demo",
    "load_config",
    "parse_config",
    "read_toml",
    "save_config_table",
    "to_toml",
]

_WHERE = {
    "BackendSettings": "backends.settings",
    "BudgetSection": "app.core.config.schema",
    "CascadeSection": "app.core.config.schema",
    "Config": "app.core.config.model",
    "ConfigError": "app.core.config.errors",
    "DEMO_BACKEND": "app.core.config.demo",
    "DEMO_N_CTX": "app.core.config.demo",
    "DEMO_PROFILE": "app.core.config.demo",
    "DemoModelPath": "app.core.config.demo",
    "Document": "app.core.config.schema",
    "ESCALATE_ON": "app.core.config.schema",
    "FLAVOURS": "backends.settings",
    "IngestSection": "app.core.config.schema",
    "KINDS": "backends.settings",
    "LlamaCppSettings": "backends.settings",
    "MlxSettings": "backends.settings",
    "OpenAISettings": "backends.settings",
    "Rule": "app.core.config.schema",
    "SessionSection": "app.core.config.schema",
    "config_path": "app.core.config.paths",
    "data_dir": "app.core.config.paths",
    "demo_backend": "app.core.config.demo",
    "demo_config": "app.core.config.load",
    "example_config": "app.core.config.load",
    "is_demo": "app.core.config.demo",
    "load_config": "app.core.config.load",
    "parse_config": "app.core.config.load",
    "read_toml": "app.core.config.load",
    "save_config_table": "app.core.config.write",
    "to_toml": "app.core.config.write",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
