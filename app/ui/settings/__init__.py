"""Settings: ``config.toml`` edited in a dialog, and the first-run panel that offers a backend."""
