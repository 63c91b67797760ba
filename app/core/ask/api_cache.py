"""What the provider's prompt cache holds for a session, rebuilt from the log.

DeepSeek's cache is modelled client-side by ``app.core.ask.cache_plan.CacheModel``
from the structure (``Segment``s) of every request sent. Lectern stores each
API call's prompt and output segments in its ``backend_call`` event, so the
model can be replayed at any time, also for a session reopened days later:
quotes predict cache hits from it, and ``plan_priming`` decides from it
whether a priming request pays off (see ``app.core.ask.cache_plan``).

For servers without DeepSeek's prefix-unit rules (vLLM, llama.cpp's server,
in-process engines) the corpus prefix is expected to hit once any earlier call
of the session sent it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.core.ask.cache_plan import CacheModel
from app.core.prompt.base import RenderedPrompt, Segment
from backends.router import BackendSpec


def cache_owner(spec: BackendSpec, model: str) -> str:
    """Requests that share one provider cache: same server, same model."""
    return f"{spec.base_url or spec.kind}|{model}"


def prefix_key(spec: BackendSpec, rendered: RenderedPrompt) -> str:
    """Identifies the stable prefix a call sent (for hit expectations off DeepSeek)."""
    head = rendered.segments[0].key if rendered.segments else ""
    return f"{spec.profile}|{rendered.mode.value}|{rendered.prefix_tokens}|{head[:24]}"


def segments_json(segments: Sequence[Segment]) -> list[list[Any]]:
    return [[s.key, s.tokens, s.head] for s in segments]


def segments_from_json(raw: Iterable[Sequence[Any]]) -> tuple[Segment, ...]:
    return tuple(Segment(key=str(k), tokens=int(t), head=int(h)) for k, t, h in raw)


def replay(calls: Iterable[Mapping[str, Any]], owner: str) -> CacheModel:
    """The cache model after every recorded call of ``owner`` that reached the server.

    A call that failed before the server read it (an HTTP error, no usage) stored
    nothing; any call with usage did (the server read its input).
    """
    model = CacheModel()
    for call in calls:
        if call.get("cache_owner") != owner or not call.get("segments"):
            continue
        usage = call.get("usage") or {}
        if (not usage or usage.get("estimated")) and call.get("status") != "ok":
            continue
        model.record(
            segments_from_json(call["segments"]),
            segments_from_json(call.get("output_segments") or ()),
        )
    return model


def prefix_sent_before(calls: Iterable[Mapping[str, Any]], key: str) -> bool:
    """True when an earlier successful call sent the same stable prefix."""
    return any(c.get("prefix_key") == key and c.get("status") == "ok" for c in calls)
