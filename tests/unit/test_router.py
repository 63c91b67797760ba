"""Routing: draft and review choices, fit, rules, and the offline/local-only guard."""

from __future__ import annotations

import pytest

from backends.router import BackendSpec, Fit, RefusedError, Router, RouterSettings

API_FLASH = BackendSpec(
    "flash", "openai", "deepseek-v4-flash", "flash", 1_048_576, "https://api.deepseek.com"
)
API_PRO = BackendSpec(
    "pro", "openai", "deepseek-v4-pro", "pro", 1_048_576, "https://api.deepseek.com/v1"
)
LOCAL = BackendSpec("local", "llama_cpp", "deepseek-v4-flash-gguf", "local", 32_768)
LOOPBACK = BackendSpec("lan", "openai", "generic", "flash", 131_072, "http://127.0.0.2:8080/v1")


def tokens(n: int) -> Fit:
    return lambda spec: n


def router(*specs: BackendSpec, **kw: object) -> Router:
    settings = dict(draft="flash", review="pro")
    settings.update(kw)  # type: ignore[arg-type]
    return Router(specs, RouterSettings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.9.9.9", True),
        ("http://localhost:11434/v1", True),
        ("http://[::1]:8080", True),
        ("https://api.deepseek.com", False),
        ("http://10.0.0.5:8000", False),
        ("http://localhost.evil.com", False),
        ("http://0.0.0.0:8000", False),
    ],
)
def test_loopback_is_judged_on_the_url_host(url: str, local: bool) -> None:
    assert BackendSpec("x", "openai", "p", "flash", 10, url).local is local


def test_in_process_engines_are_local() -> None:
    assert LOCAL.local
    assert BackendSpec("m", "mlx", "p", "local", 10).local


def test_local_answers_when_it_fits_else_the_api() -> None:
    r = router(API_FLASH, API_PRO, LOCAL)
    assert r.draft(tokens(30_000)).spec is LOCAL
    route = r.draft(tokens(40_000))
    assert route.spec is API_FLASH and route.reason == "cascade.draft"


def test_rule_sends_big_prompts_to_pro() -> None:
    r = router(API_FLASH, API_PRO, rules=((500_000, "pro"),))
    assert r.draft(tokens(400_000)).spec is API_FLASH
    route = r.draft(tokens(600_000))
    assert route.spec is API_PRO and "500,000" in route.reason


def test_forced_backend_wins_but_is_still_guarded() -> None:
    r = router(API_FLASH, API_PRO, LOCAL)
    assert r.draft(tokens(10), forced="pro").spec is API_PRO
    with pytest.raises(RefusedError, match="No backend named 'nope'"):
        r.draft(tokens(10), forced="nope")
    with pytest.raises(RefusedError, match="local-only"):
        r.draft(tokens(10), forced="pro", local_only=True)


def test_offline_refuses_every_api_backend() -> None:
    r = router(API_FLASH, API_PRO, offline=True)
    with pytest.raises(RefusedError, match=r"Offline mode is on.*'flash'.*nothing was sent"):
        r.draft(tokens(10))
    with pytest.raises(RefusedError, match="Offline mode"):
        r.review(tokens(10))


def test_offline_uses_the_local_backend_and_refuses_when_it_is_too_small() -> None:
    r = router(API_FLASH, API_PRO, LOCAL, offline=True)
    assert r.draft(tokens(1000)).spec is LOCAL
    with pytest.raises(RefusedError, match=r"holds 32,768.*Offline mode"):
        r.draft(tokens(50_000))


def test_offline_rule_never_picks_pro() -> None:
    r = router(API_FLASH, API_PRO, LOCAL, offline=True, rules=((10, "pro"),))
    assert r.draft(tokens(1000)).spec is LOCAL


def test_loopback_server_is_allowed_offline() -> None:
    r = router(LOOPBACK, API_PRO, draft="lan", offline=True)
    assert r.draft(tokens(1000)).spec is LOOPBACK


def test_a_prompt_too_big_for_every_window_is_refused_not_cut() -> None:
    r = router(API_FLASH, API_PRO)
    with pytest.raises(RefusedError, match="nothing was cut"):
        r.draft(tokens(2_000_000))


def test_bad_cascade_names_are_config_errors() -> None:
    with pytest.raises(ValueError, match=r"cascade\.review = 'gone'"):
        router(API_FLASH, review="gone")


MISSING = BackendSpec(
    "local",
    "llama_cpp",
    "deepseek-v4-flash-gguf",
    "local",
    32_768,
    unavailable="its model file /models/v4.gguf does not exist",
)


def test_a_local_backend_that_cannot_run_is_skipped_with_the_reason() -> None:
    r = router(API_FLASH, API_PRO, MISSING)
    route = r.draft(tokens(1000))
    assert route.spec is API_FLASH
    assert route.reason == (
        "cascade.draft; local backend 'local' skipped: its model file /models/v4.gguf does not "
        "exist"
    )


def test_a_backend_that_cannot_run_is_refused_when_named() -> None:
    r = router(API_FLASH, API_PRO, MISSING)
    with pytest.raises(RefusedError, match=r"'local' cannot run: its model file /models/v4\.gguf"):
        r.draft(tokens(10), forced="local")
    with pytest.raises(RefusedError, match=r"backends\.local\.model_path"):
        router(MISSING, API_PRO, draft="local").draft(tokens(10))
    with pytest.raises(RefusedError, match="cannot run"):
        router(API_FLASH, MISSING, review="local").review(tokens(10))
    with pytest.raises(RefusedError, match="cannot run"):
        router(API_FLASH, API_PRO, MISSING, rules=((100, "local"),)).draft(tokens(1000))


def test_offline_with_a_missing_local_model_says_both_reasons() -> None:
    r = router(API_FLASH, API_PRO, MISSING, offline=True)
    with pytest.raises(RefusedError) as info:
        r.draft(tokens(10))
    assert "Offline mode is on" in info.value.message
    assert "The local backend 'local' cannot run: its model file /models/v4.gguf" in (
        info.value.message
    )


def test_the_first_local_backend_that_can_run_is_preferred() -> None:
    other = BackendSpec("mac", "mlx", "deepseek-v4-flash-gguf", "local", 65_536)
    assert router(API_FLASH, API_PRO, MISSING, other).draft(tokens(1000)).spec is other
