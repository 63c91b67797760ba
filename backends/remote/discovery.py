"""Find OpenAI-compatible servers already running on this machine.

Probes loopback only (127.0.0.1 by default) at the ports local servers use
out of the box, in parallel with short timeouts, and lists the models each
serves (``GET /v1/models``). Probing any other host is refused: Lectern never
scans a network.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from backends.remote.openai_compat import is_loopback_host


@dataclass(frozen=True)
class Probe:
    kind: str
    port: int


# llama.cpp's server and mlx_lm.server share 8080: one probe, told apart by owner.
DEFAULT_PROBES: tuple[Probe, ...] = (
    Probe("vllm", 8000),
    Probe("llama.cpp server / mlx_lm.server", 8080),
    Probe("ollama", 11434),
    Probe("lm studio", 1234),
)
_OWNERS = {"vllm": "vllm", "llamacpp": "llama.cpp server", "ollama": "ollama", "library": "ollama"}


@dataclass(frozen=True)
class Endpoint:
    kind: str  # best guess at the server software
    base_url: str  # what OpenAISettings.base_url takes
    models: tuple[str, ...]
    needs_key: bool = False  # answered 401/403: configure an API key to list models


def discover(
    probes: Sequence[Probe] = DEFAULT_PROBES, *, host: str = "127.0.0.1", timeout: float = 0.5
) -> list[Endpoint]:
    """Running local servers, in probe order. Raises ValueError for a non-loopback host."""
    if not is_loopback_host(host.lower()):
        raise ValueError(
            f"Refusing to probe {host}: discovery only looks at this machine (127.0.0.1)."
        )
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(probes))) as pool:
        found = list(pool.map(lambda p: _probe(host, p, timeout), probes))
    return [e for e in found if e is not None]


def _probe(host: str, probe: Probe, timeout: float) -> Endpoint | None:
    netloc = f"[{host}]" if ":" in host else host
    base_url = f"http://{netloc}:{probe.port}/v1"
    conn = http.client.HTTPConnection(host, probe.port, timeout=timeout)
    try:
        conn.request("GET", "/v1/models", headers={"Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read(1 << 20)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if resp.status in (401, 403):
        return Endpoint(probe.kind, base_url, (), needs_key=True)
    if resp.status != 200:
        return None
    try:
        data = json.loads(body)
        entries = data["data"]
        models = tuple(str(m["id"]) for m in entries)
    except (ValueError, KeyError, TypeError):
        return None
    kind = probe.kind
    owners = {str(m.get("owned_by", "")).lower() for m in entries if isinstance(m, dict)}
    for owner in owners:
        if owner in _OWNERS:
            kind = _OWNERS[owner]
    return Endpoint(kind, base_url, models)
