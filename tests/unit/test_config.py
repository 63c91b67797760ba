"""The config file: the issue's shape, what users need beyond it, and clear refusals."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.config import (
    ConfigError,
    DemoModelPath,
    config_path,
    data_dir,
    demo_config,
    example_config,
    load_config,
)
from backends.base import ThinkingMode
from tests.fixtures.lectern_env import ISSUE_SAMPLE


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
    assert cfg.review is not None and cfg.review.name == "pro"
    assert cfg.backends["local"].model_file() == Path("/models/DeepSeek-V4-Flash-Q4.gguf")
    assert cfg.backend_tables()["flash"]["api_key_env"] == "DEEPSEEK_API_KEY"
    assert cfg.data_dir == tmp_path / "h"
    flash = cfg.profiles()["deepseek-v4-flash"]
    assert [p.cache_hit for p in flash.prices] == [Decimal("0.028")]  # the override replaced both


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
    assert cfg.backends["local"].profile == "deepseek-v4-flash-gguf"
    assert cfg.backends["local"].n_ctx == 262144


def test_extra_backend_settings_reach_the_factory_table(tmp_path: Path) -> None:
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
    assert vllm.flavour == "vllm" and vllm.timeout == 600.0
    assert vllm.table["read_timeout"] == 600
    assert mac.table["context"] == 65536
    assert mac.table["model_path"] == os.path.expanduser("~/models/v41")
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
    assert backend.kind == "llama_cpp" and backend.demo
    assert backend.table["profile"] == "gemma-3-270m-demo"
    assert isinstance(backend.table["model_path"], DemoModelPath)
    assert bool(backend.table["model_path"])  # truthy without assembling


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
    assert cfg.draft.demo and not cfg.cascade.escalate_on_failure


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
