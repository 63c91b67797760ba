"""API keys: from an environment variable (scripts) or the OS keyring, never files.

The keyring entry is service ``lectern``, username = the backend's name in the
config (``flash``, ``pro``...). Keys are never logged and never written by
Lectern; ``mask`` gives the only form fit for messages.
"""

from __future__ import annotations

import os

SERVICE = "lectern"


class KeyringUnavailableError(RuntimeError):
    """No usable OS keyring on this machine (headless Linux without a secret service)."""


def _unavailable(backend: str, env_var: str | None, exc: Exception) -> KeyringUnavailableError:
    var = env_var or "DEEPSEEK_API_KEY"
    return KeyringUnavailableError(
        f"No OS keyring is available to hold the key for backend '{backend}' ({exc}). "
        f'Set the environment variable {var} instead (and `api_key_env = "{var}"` '
        "in the backend's config)."
    )


def get_key(backend: str, env_var: str | None = None) -> str | None:
    """The key for ``backend``: ``env_var`` when set and non-empty, else the keyring.

    Returns None when neither holds one. Raises ``KeyringUnavailableError`` when the
    environment variable is unset and there is no keyring to look in.
    """
    if env_var:
        value = os.environ.get(env_var, "").strip()
        if value:
            return value
    import keyring
    from keyring.errors import KeyringError

    try:
        stored: str | None = keyring.get_password(SERVICE, backend)
    except KeyringError as exc:  # NoKeyringError included
        raise _unavailable(backend, env_var, exc) from None
    return stored or None


def set_key(backend: str, key: str) -> None:
    """Store ``key`` for ``backend`` in the OS keyring."""
    key = key.strip()
    if not key:
        raise ValueError("The API key is empty: paste the key itself.")
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, backend, key)
    except KeyringError as exc:
        raise _unavailable(backend, None, exc) from None


def delete_key(backend: str) -> bool:
    """Remove the keyring entry of ``backend``; False when there was none."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, backend)
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise _unavailable(backend, None, exc) from None
    return True


def mask(key: str) -> str:
    """``****abcd``: the last four characters, as DeepSeek's own errors show a key."""
    return "****" + key[-4:] if len(key) > 8 else "****"
