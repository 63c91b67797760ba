"""Where the config file and Lectern's data live (environment overrides first)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$LECTERN_CONFIG``, else ``<user config dir>/lectern/config.toml``."""
    env = os.environ if env is None else env
    override = env.get("LECTERN_CONFIG")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("lectern", appauthor=False)) / "config.toml"


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$LECTERN_HOME``, else the platform's user data dir for Lectern."""
    env = os.environ if env is None else env
    override = env.get("LECTERN_HOME")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("lectern", appauthor=False))
