"""Headless subcommands of ``lectern``; one module each, registered by ``app.cli``."""
