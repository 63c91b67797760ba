"""The config file: the issue's shape, what users need beyond it, and clear refusals."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.config import (
    ConfigError,
    DemoModelPath,
    LlamaCppSettings,
    MlxSettings,
    OpenAISettings,
    config_path,
    data_dir,
    demo_config,
    example_config,
    is_demo,
    load_config,
)
from backends.base import ThinkingMode
from backends.factory import resolve
from tests.fixtures.lectern_env import ISSUE_SAMPLE, REPO


def swap(text: str, old: str, new: str) -> str:
    """``text`` with its one ``old`` replaced (a test edit that misses fails loudly)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_SAMPLE), env={"LECTERN_HOME": str(tmp_path / "h")})
    assert not cfg.demo and not cfg.offline
    assert list(cfg.backends) == ["flash", "pro", "local"]
    assert cfg.draft.kind == "openai" and cfg.draft.model == "deepseek-v4-flash"
    assert cfg.review is not None and cfg.cascade.review == "pro"
    local = cfg.backends["local"]
    assert isinstance(local, LlamaCppSettings)
    assert local.model_path == "/models/DeepSeek-V4-Flash-Q4.gguf"
    flash = cfg.backend_tables()["flash"]
    assert isinstance(flash, OpenAISettings) and flash.api_key_env == "DEEPSEEK_API_KEY"
    assert (flash.read_timeout, flash.connect_timeout, flash.extra_body) == (120.0, 10.0, {})
    assert cfg.data_dir == tmp_path / "h"
    assert load_config(str(tmp_path / "config.toml"), env={}).cascade == cfg.cascade  # a str too
    profile = cfg.profiles()["deepseek-v4-flash"]
    assert [p.cache_hit for p in profile.prices] == [Decimal("0.028")]  # the override replaced both


def test_the_full_example_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, example_config()), env={})
    assert cfg.cascade.rules[0].over_tokens == 600_000 and cfg.cascade.rules[0].use == "pro"
    assert (
        cfg.cascade.auto_review,
        cfg.cascade.escalate_on_failure,
        cfg.cascade.max_escalations,
    ) == (False, True, 1)
    assert cfg.session.mode is ThinkingMode.NON_THINK and cfg.session.max_tokens == 8192
    assert cfg.budget.per_message_usd == Decimal("0.5")
    assert cfg.budget.per_session_usd == Decimal("5.0")
    assert cfg.ingest.max_file_mb == 20
    local = cfg.backends["local"]
    assert isinstance(local, LlamaCppSettings)
    assert local.profile == "deepseek-v4-flash-gguf" and local.n_ctx == 262144


def test_extra_backend_settings_reach_the_factory(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
[backends.vllm]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
model = "deepseek-ai/DeepSeek-V4-Flash"
flavour = "vllm"
timeout = 600
profile = "deepseek-v4-flash"

[backends.mac]
kind = "mlx"
model_path = "~/models/v41"
n_ctx = 65536

[cascade]
draft = "vllm"
""",
        ),
        env={},
    )
    vllm, mac = cfg.backends["vllm"], cfg.backends["mac"]
    assert isinstance(vllm, OpenAISettings) and isinstance(mac, MlxSettings)
    assert vllm.flavour == "vllm" and vllm.read_timeout == 600.0  # `timeout` is its other name
    assert mac.model_path == os.path.expanduser("~/models/v41")
    profiles = cfg.profiles()
    assert resolve("mac", mac, profiles).spec.context == 65536  # n_ctx is MLX's context
    assert resolve("vllm", vllm, profiles).spec.base_url == "http://127.0.0.1:8000/v1"
    assert cfg.cascade.draft == "vllm" and cfg.cascade.review is None
    assert not cfg.cascade.escalate_on_failure  # nothing to escalate to


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[backends.flash]\nkind = "opnai"\nbase_url = "https://x"\nmodel = "m"',
            "config.toml: backends.flash.kind = 'opnai' is not one of openai, llama_cpp, mlx.",
        ),
        (
            '[backends.flash]\nkind = "openai"\nmodel = "m"',
            "config.toml: backends.flash.base_url is missing: e.g. base_url = "
            '"https://api.deepseek.com".',
        ),
        (
            '[backends.flash]\nkind = "openai"\nbase_url = "api.deepseek.com"\nmodel = "m"',
            "must start with http:// or https://",
        ),
        (
            '[backends.l]\nkind = "llama_cpp"',
            "config.toml: backends.l.model_path is missing: the path of a .gguf file.",
        ),
        (
            '[backends.l]\nkind = "llama_cpp"\nmodel_path = "/m.gguf"\nnctx = 4096',
            "backends.l.nctx is not a setting (did you mean 'n_ctx'?)",
        ),
        (
            '[backends.l]\nkind = "llama_cpp"\nmodel_path = "/m.gguf"\ntimeout = 60',
            "backends.l.timeout is not a setting; [backends.l] accepts kind, profile, context, "
            "model_path,",
        ),
        ("ofline = true", "ofline is not a setting (did you mean 'offline'?)"),
        ('offline = "yes"', "offline = 'yes' must be true or false."),
        (
            '[backends.l]\nkind = "llama_cpp"\nmodel_path = "/m.gguf"\nn_ctx = 0',
            "backends.l.n_ctx = 0 must be a whole number >= 1.",
        ),
        (
            '[backends.l]\nkind = "llama_cpp"\nmodel_path = "/m.gguf"\nprofile = "nope"',
            "backends.l.profile = 'nope' is not a known profile",
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\n'
            'api_key_env = "sk 123"',
            "must be an environment variable name",
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\nflavour = "x"',
            "backends.f.flavour = 'x' is not one of deepseek, vllm, generic.",
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\n'
            '[cascade]\ndraft = "flash"',
            "cascade.draft = 'flash' names no backend; configured: f.",
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\n'
            '[cascade]\nrules = [{ over_tokens = 10, use = "pro" }]',
            "cascade.rules[0].use = 'pro' names no backend",
        ),
        (
            '[session]\nmode = "thinking"',
            "session.mode = 'thinking' is not one of non-think, high, max.",
        ),
        ("[budget]\nper_message_usd = -1", "budget.per_message_usd = -1 must be an amount in USD"),
        ('[profiles."x"]\nfamily = "gpt"', "family: 'gpt' is not one of"),
        ('[profiles."x"]\ncontext_window = 5', 'profiles."x".context_window is not a setting'),
        (
            '[backends.a]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\n'
            '[backends.b]\nkind = "openai"\nbase_url = "https://y"\nmodel = "m"',
            "cascade.draft is missing: set draft = the backend that answers (one of a, b).",
        ),
        ("offline = [", "config.toml: not valid TOML"),
    ],
)
def test_invalid_configs_name_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert message in str(info.value)
    assert info.value.path == tmp_path / "config.toml"


@pytest.mark.parametrize(
    "text",
    [
        '[backends.flash]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\napi_key = "abc"',
        '[backends.flash]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\n'
        '[backends.flash.extra_body]\ntoken = "abc"',
        '[backends.flash]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\n'
        'api_key_env = "sk-0123456789abcdefABCDEF"',
    ],
)
def test_secrets_are_refused_with_where_to_put_them(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    message = str(info.value)
    assert "secrets never go in the config file" in message
    assert "keyring" in message and "api_key_env" in message
    assert "abc" not in message and "0123456789" not in message  # the secret is not echoed


def test_the_demo_config(tmp_path: Path) -> None:
    demo = demo_config({"LECTERN_HOME": str(tmp_path / "home")})
    assert demo.demo and demo.path is None
    assert demo.cascade.draft == "demo" and demo.review is None
    backend = demo.draft
    assert isinstance(backend, LlamaCppSettings) and is_demo(backend)
    assert backend.profile == "gemma-3-270m-demo" and backend.n_ctx == 32768
    assert isinstance(backend.model_path, DemoModelPath)
    assert bool(backend.model_path)  # truthy without assembling


def test_missing_default_file_gives_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LECTERN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert not config_path().exists()
    cfg = load_config()
    assert cfg.demo


def test_lectern_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    env = {"LECTERN_CONFIG": str(tmp_path / "nope.toml")}
    assert config_path(env) == tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"LECTERN_CONFIG points to .*nope\.toml, which does not"):
        load_config(env=env)


def test_paths_from_environment(tmp_path: Path) -> None:
    assert data_dir({"LECTERN_HOME": str(tmp_path)}) == tmp_path
    assert data_dir({}).name.lower() == "lectern"
    assert config_path({}).name == "config.toml"


def test_config_without_backends_is_the_demo_with_its_settings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, 'offline = true\n[session]\nmode = "high"\n'), env={})
    assert cfg.demo and cfg.offline and cfg.session.mode is ThinkingMode.HIGH
    assert is_demo(cfg.draft) and not cfg.cascade.escalate_on_failure


def test_review_defaults_to_pro_when_named_so(tmp_path: Path) -> None:
    text = swap(ISSUE_SAMPLE, 'draft = "flash"                 # the backend that answers\n', "")
    text = swap(text, 'review = "pro"                  # the backend for review and escalation', "")
    cfg = load_config(write(tmp_path, text), env={})
    assert (cfg.cascade.draft, cfg.cascade.review) == ("flash", "pro")


@pytest.mark.llama
def test_demo_model_path_assembles_the_real_gguf() -> None:
    path = DemoModelPath().resolve()
    assert path.is_file() and path.suffix == ".gguf"
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert os.fspath(DemoModelPath()) == str(path)


def test_rules_give_the_router_its_threshold(tmp_path: Path) -> None:
    text = swap(
        ISSUE_SAMPLE,
        "# the backend for review and escalation\n",
        '\nmax_tries = 3\nrules = [{ over_tokens = 900000, use = "pro" }, '
        '{ over_tokens = 500000, use = "pro" }, { over_tokens = 100, use = "local" }]\n',
    )
    cfg = load_config(write(tmp_path, text), env={})
    assert [r.over_tokens for r in cfg.cascade.rules] == [100, 500_000, 900_000]
    assert cfg.cascade.pro_over_tokens == 500_000
    assert cfg.cascade.max_tries == 3
    assert load_config(write(tmp_path, ISSUE_SAMPLE), env={}).cascade.pro_over_tokens is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[backends.f]\nbase_url = "https://x"', "backends.f.kind is missing: set kind = one of"),
        ("[backends]\nf = 3", "backends.f must be a table, like [backends.f] with kind = ..."),
        ("backends = 3", "backends must be a table ([backends])."),
        (
            '[backends.f]\nkind = "openai"\nbase_ur = "https://x"\nmodel = "m"',
            "backends.f.base_ur is not a setting (did you mean 'base_url'?)",  # not "missing"
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\nread_timeout = -1',
            "backends.f.read_timeout = -1 must be a positive number.",
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "  "',
            "backends.f.model = '  ' must be a non-empty string.",
        ),
        (
            '[backends.f]\nkind = "openai"\nbase_url = "https://x"\nmodel = "m"\nextra_body = 3',
            "backends.f.extra_body = 3 must be a table of request fields.",
        ),
        (
            '[backends.m]\nkind = "mlx"',
            "backends.m.model_path is missing: the path of an mlx-lm model folder.",
        ),
        (
            "[cascade]\nrules = 5",
            'cascade.rules must be a list like [{ over_tokens = 200000, use = "pro" }].',
        ),
        (
            "[cascade]\nrules = [5]",
            'cascade.rules[0] must be a table like { over_tokens = 200000, use = "pro" }.',
        ),
        ("[cascade]\nrules = [{ over_tokens = 10 }]", "cascade.rules[0].use is missing: a rule"),
        (
            '[cascade]\nescalate_on = ["boom"]',
            "cascade.escalate_on = ['boom'] must be a list of error, empty, length, citations.",
        ),
        ("[cascade]\nmax_escalations = -1", "cascade.max_escalations = -1 must be a whole number"),
        ("[budget]\nper_session_usd = true", "budget.per_session_usd = true must be an amount"),
        ('[ingest]\nmax_file_mb = "big"', "ingest.max_file_mb = 'big' must be a positive number."),
        ("[profiles]\nx = 3", 'profiles."x" must be a table'),
    ],
)
def test_more_refusals_name_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert f"config.toml: {message}" in str(info.value)


def _readme_keys() -> set[str]:
    """The keys the README's configuration table documents."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("| key | default | meaning |", 1)[1].split("\n\n", 1)[0]
    keys: set[str] = set()
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1]
        spans = re.findall(r"`([^`]+)`", cell)
        parent = ""
        for span in spans:
            key = parent + span[1:] if span.startswith(".") else span
            parent = key.rsplit(".", 1)[0] + "."
            keys.add(key)
    return keys


def _schema_keys() -> set[str]:
    from app.core.config.schema import Document

    keys: set[str] = {'profiles."ID".*'}
    for name, field in Document.model_fields.items():
        model = field.annotation
        if name == "backends":
            for kind in (OpenAISettings, LlamaCppSettings, MlxSettings):
                for key, f in kind.model_fields.items():
                    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
                    if "alias_of" not in extra:  # documented under the key it aliases
                        keys.add(f"backends.NAME.{key}")
        elif name == "profiles":
            continue
        elif isinstance(model, type) and hasattr(model, "model_fields"):
            keys |= {f"{name}.{key}" for key in model.model_fields}
        else:
            keys.add(name)
    return keys


def test_the_readme_documents_every_key_and_no_other() -> None:
    assert _readme_keys() == _schema_keys()


def test_every_setting_is_described() -> None:
    from app.core.config.schema import Document

    sections = [f.annotation for f in Document.model_fields.values()]
    models = [OpenAISettings, LlamaCppSettings, MlxSettings, Document]
    models += [m for m in sections if isinstance(m, type) and hasattr(m, "model_fields")]
    for model in models:
        for key, field in model.model_fields.items():
            if key != "kind":  # each kind's tag; described once, on the common base
                assert field.description, f"{model.__name__}.{key}"


# --- writing the file back (the window's settings) --------------------------------------


def test_a_saved_document_reads_back_equal_and_loads(tmp_path: Path) -> None:
    import tomllib

    from app.core.config import read_toml, save_config_table

    table = tomllib.loads(example_config())
    path = tmp_path / "sub" / "config.toml"
    saved = save_config_table(path, table, env={})
    assert read_toml(path) == table
    assert saved.path == path and saved.cascade.rules[0].use == "pro"
    first = path.read_text(encoding="utf-8")
    save_config_table(path, read_toml(path), env={})
    assert path.read_text(encoding="utf-8") == first  # stable
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary left


def test_an_edit_is_validated_then_written(tmp_path: Path) -> None:
    import datetime as dt

    from app.core.config import read_toml, save_config_table

    path = write(tmp_path, ISSUE_SAMPLE)
    table = read_toml(path)
    table["session"] = {"mode": "high", "max_tokens": 4096}
    table["budget"] = {"per_message_usd": Decimal("0.25")}
    table["backends"]["flash"]["extra_body"] = {"metadata": {"tag": 'a "quoted"\nline'}}
    table["profiles"]["deepseek-v4-flash"]["prices"] = [
        {"from": dt.date(2026, 4, 26), "cache_hit": 0.028, "cache_miss": 0.14, "output": 0.28}
    ]
    del table["profiles"]["deepseek-v4-flash"]["price_cache_hit"]
    del table["profiles"]["deepseek-v4-flash"]["price_cache_miss"]
    del table["profiles"]["deepseek-v4-flash"]["price_output"]
    save_config_table(path, table, env={})
    cfg = load_config(path, env={})
    assert cfg.session.mode is ThinkingMode.HIGH and cfg.session.max_tokens == 4096
    assert cfg.budget.per_message_usd == Decimal("0.25")
    flash = cfg.backends["flash"]
    assert isinstance(flash, OpenAISettings)
    assert flash.extra_body == {"metadata": {"tag": 'a "quoted"\nline'}}
    assert [p.cache_hit for p in cfg.profiles()["deepseek-v4-flash"].prices] == [Decimal("0.028")]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("api_key", "sk-live-0123456789abcdef", "secrets never go in the config file"),
        ("read_timeout", -5, "backends.flash.read_timeout = -5 must be a positive number."),
    ],
)
def test_an_invalid_edit_writes_nothing(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    from app.core.config import read_toml, save_config_table

    path = write(tmp_path, ISSUE_SAMPLE)
    table = read_toml(path)
    table["backends"]["flash"][key] = value
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        save_config_table(path, table, env={})
    assert "0123456789" not in str(info.value)
    assert path.read_text(encoding="utf-8") == ISSUE_SAMPLE
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


@given(text=st.text(), number=st.floats(allow_nan=False, allow_infinity=False))
def test_any_string_and_number_survive_the_writer(text: str, number: float) -> None:
    import tomllib

    from app.core.config import to_toml

    table = {"s": text, "n": number, "t": {text or "k": [text, 1, True]}}
    assert tomllib.loads(to_toml(table)) == table


HAND_WRITTEN = """\
# My Lectern config: written by hand
offline = false   # keep it online

# the API, billed per token
[backends.flash]
kind = "openai"
base_url = "https://api.deepseek.com"  # DeepSeek
model = "deepseek-v4-flash"

[cascade]
draft = "flash"  # the backend that answers
"""


def test_saving_keeps_the_users_comments_and_order(tmp_path: Path) -> None:
    import tomllib

    from app.core.config import read_toml, save_config_table

    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    doc = read_toml(path)
    doc["backends"]["local"] = {"kind": "llama_cpp", "model_path": str(tmp_path / "m.gguf")}
    doc["cascade"]["draft"] = "local"
    doc["offline"] = True
    save_config_table(path, doc)
    text = path.read_text(encoding="utf-8")
    for comment in (
        "# My Lectern config: written by hand",
        "# keep it online",
        "# the API, billed per token",
        "# DeepSeek",
        "# the backend that answers",
    ):
        assert comment in text
    assert text.index("[backends.flash]") < text.index("[backends.local]") < text.index("[cascade]")
    assert tomllib.loads(text) == doc  # and it holds exactly what was saved
    del doc["backends"]["local"]  # a key the new document drops is removed
    doc["cascade"]["draft"] = "flash"
    save_config_table(path, doc)
    text = path.read_text(encoding="utf-8")
    assert "[backends.local]" not in text and "# DeepSeek" in text
    assert tomllib.loads(text) == doc
