"""``lectern key``: put API keys in the OS keyring, where Lectern reads them.

Keys never go in the config file or the logs. The keyring entry is service
``lectern``, username = the backend's name in the config (``flash``, ``pro``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "key",
        help="store, check or remove a backend's API key in the OS keyring",
        description="Store, check or remove the API key of a configured backend "
        "in the OS keyring (never in a file).",
    )
    parser.add_argument("action", choices=("set", "status", "delete"))
    parser.add_argument("backend", help="the backend's name in the config, e.g. flash")
    parser.add_argument(
        "--stdin", action="store_true", help="read the key from standard input (for scripts)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from backends import secrets

    name: str = args.backend
    try:
        if args.action == "set":
            key = sys.stdin.readline() if args.stdin else getpass.getpass(f"API key for {name}: ")
            secrets.set_key(name, key)
            print(f"Stored the key for '{name}' in the OS keyring.")
        elif args.action == "delete":
            gone = secrets.delete_key(name)
            print(f"Removed the key for '{name}'." if gone else f"No key stored for '{name}'.")
        else:
            stored = secrets.get_key(name)
            print(
                f"'{name}': key {secrets.mask(stored)} in the OS keyring."
                if stored
                else f"'{name}': no key in the OS keyring."
            )
    except (secrets.KeyringUnavailableError, ValueError) as exc:
        print(f"lectern: {exc}", file=sys.stderr)
        return 1
    return 0
