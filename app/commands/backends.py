"""``lectern backends``: what is configured, whether it answers, what runs locally.

Lists the configured backends with their profile, window and where they run;
``--check`` asks each server for its models (the configured ones only) and gives each
in-process backend's memory plan for its window (``backends.local.memory_plan``);
``--discover`` probes this machine's usual local-server ports (never the network).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backends",
        help="list configured backends and local servers",
        description="List configured backends; --check asks each server for its models; "
        "--discover looks for local servers on 127.0.0.1.",
    )
    parser.add_argument("--check", "--models", action="store_true", help="ask each server")
    parser.add_argument("--discover", action="store_true", help="probe loopback for servers")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.core.config import ConfigError, load_config
    from backends.factory import BackendPool

    try:
        config = load_config()
        pool = BackendPool(config.backend_tables(), config.profiles(), data_dir=config.data_dir)
    except (ConfigError, ValueError) as exc:
        print(f"lectern: {exc}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    try:
        for spec in pool.specs:
            row: dict[str, Any] = {
                "name": spec.name,
                "kind": spec.kind,
                "profile": spec.profile,
                "tier": spec.tier,
                "context": spec.context,
                "where": spec.base_url or "in process",
                "local": spec.local,
                "unavailable": spec.unavailable,
            }
            if args.check and spec.kind == "openai" and not (config.offline and not spec.local):
                row["health"] = _health(pool, spec.name)
            if args.check and spec.local and spec.kind in ("llama_cpp", "mlx"):
                row["memory"] = _memory(pool, spec.name, spec.context)
            rows.append(row)
        found = _discover() if args.discover else []
    finally:
        pool.close()
    from backends.profiles import price_table_as_of

    as_of = price_table_as_of()
    profiles = config.profiles()
    for row in rows:
        prof = profiles.get(row["profile"])
        if prof is not None and prof.served_as is not None:
            row["served_as"] = prof.served_as
    if args.json:
        out = {"backends": rows, "discovered": found, "demo": config.demo, "prices_as_of": as_of}
        print(json.dumps(out, indent=2))
        return 0
    if config.demo:
        print("No backends configured: the embedded demo model answers (see the README).")
    for row in rows:
        where = "local" if row["local"] else "remote"
        line = (
            f"{row['name']:<10} {row['kind']:<10} {row['profile']:<24} "
            f"{row['context']:>9,} tokens  {where}: {row['where']}"
        )
        print(line)
        if "served_as" in row:
            print(f"{'':<10} DeepSeek now serves and bills {row['profile']} as {row['served_as']}")
        if row["unavailable"]:
            print(f"{'':<10} cannot run: {row['unavailable']}")
        if "health" in row:
            print(f"{'':<10} {row['health']['message']}")
        if "memory" in row:
            print(f"{'':<10} {row['memory']['message']}")
    print(f"Prices as of {as_of} (DeepSeek's pricing page; override in [profiles] of the config).")
    for endpoint in found:
        models = ", ".join(endpoint["models"]) or "no models listed"
        print(f"found {endpoint['kind']} at {endpoint['base_url']}: {models}")
    if args.discover and not found:
        print("No local server answered on 127.0.0.1 (ports 8000, 8080, 11434, 1234).")
    return 0


def _health(pool: Any, name: str) -> dict[str, Any]:
    from backends.base import BackendError

    backend = pool.get(name)
    try:
        report = backend.health()
    except BackendError as exc:
        return {"ok": False, "message": exc.message, "models": []}
    return {"ok": report.ok, "message": report.message, "models": list(report.models)}


def _memory(pool: Any, name: str, tokens: int) -> dict[str, Any]:
    """The memory plan of an in-process backend for a full window, from its files."""
    from pathlib import Path

    from app.core.local_memory import plan_for_backend

    plan = plan_for_backend(pool, name, tokens)
    if plan is None:
        path = Path(str(pool.resolved[name].settings.model_path)).expanduser()
        return {"fits": False, "message": f"No model weights at {path}: fix model_path."}
    return {**plan.to_json(), "message": plan.message(f"A full {tokens:,}-token context")}


def _discover() -> list[dict[str, Any]]:
    from backends.remote.discovery import discover

    return [
        {"kind": e.kind, "base_url": e.base_url, "models": list(e.models), "needs_key": e.needs_key}
        for e in discover()
    ]
