"""Which backend answers, which one reviews, and what may never be used.

The router knows the configured backends only as ``BackendSpec`` values (kind,
profile, where it runs) and decides:

* the **draft** backend: ``--backend`` when given; else a rule (prompts over
  ``over_tokens`` go to the rule's backend, e.g. Pro); else the local backend when one is
  configured and the prompt fits its window; else ``cascade.draft``;
* the **review** backend (review pass and escalation): ``cascade.review``;
* the **guard**: in offline mode, or when a document in the prompt is tagged
  local-only, every backend that is not on this machine is forbidden. A
  forbidden choice is refused with a ``RefusedError`` error that says why and what
  to do; it is never silently swapped for something that sends data away.

A backend that cannot run here (``BackendSpec.unavailable``: its model file is
missing) is skipped when the router picks a local backend by itself, with the
reason in the route; chosen by name (``--backend``, ``cascade.draft``, a rule,
``cascade.review``) it is refused before anything is written or sent.

"On this machine" means an in-process engine (llama.cpp, MLX) or a server
whose ``base_url`` host is ``localhost`` or a loopback address (127.0.0.0/8,
``::1``). Host names are not resolved: a name is not loopback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from backends.base import BackendError
from backends.settings import IN_PROCESS_KINDS, KINDS

__all__ = [
    "IN_PROCESS_KINDS",
    "KINDS",
    "BackendSpec",
    "Fit",
    "RefusedError",
    "Route",
    "Router",
    "RouterSettings",
]


class RefusedError(BackendError):
    """The router will not use a backend (offline, local-only, no fit)."""

    kind = "refused"


@dataclass(frozen=True)
class BackendSpec:
    """A configured backend as the router sees it."""

    name: str
    kind: str  # openai | llama_cpp | mlx
    profile: str  # profile id (prices, tokenizer family, window)
    tier: str  # flash | pro | local
    context: int  # tokens the backend can hold (profile window or allocated n_ctx)
    base_url: str | None = None  # openai kind only
    unavailable: str | None = None  # why it cannot run here, e.g. "its model file ... is missing"

    @property
    def local(self) -> bool:
        """True when the backend runs on this machine (the offline guard's test)."""
        if self.kind in IN_PROCESS_KINDS:
            return True
        if self.base_url is None:
            return False
        from backends.remote.openai_compat import host_of, is_loopback_host

        try:
            return is_loopback_host(host_of(self.base_url))
        except ValueError:
            return False

    @property
    def where(self) -> str:
        if self.kind in IN_PROCESS_KINDS:
            return f"in process ({self.kind})"
        return self.base_url or "?"


@dataclass(frozen=True)
class RouterSettings:
    draft: str | None  # cascade.draft: the backend that answers by default
    review: str | None  # cascade.review: review pass and escalation
    local: str | None = None  # the local backend preferred when the prompt fits
    rules: tuple[tuple[int, str], ...] = ()  # (over_tokens, backend): big prompts go there
    offline: bool = False


@dataclass(frozen=True)
class Route:
    spec: BackendSpec
    reason: str  # why this backend, in words for the user


# (spec) -> prompt tokens as that backend would count them, plus output room
Fit = Callable[[BackendSpec], int]


class Router:
    def __init__(self, specs: Sequence[BackendSpec], settings: RouterSettings) -> None:
        self.specs: Mapping[str, BackendSpec] = {s.name: s for s in specs}
        self.settings = settings
        for role, name in (("draft", settings.draft), ("review", settings.review)):
            if name is not None and name not in self.specs:
                raise ValueError(
                    f"cascade.{role} = {name!r} names no backend; configured: "
                    f"{', '.join(self.specs) or 'none'}. Add [backends.{name}] or fix cascade."
                )
        if settings.local is not None and settings.local not in self.specs:
            raise ValueError(f"cascade.local = {settings.local!r} names no backend.")
        for over, name in settings.rules:
            if name not in self.specs:
                raise ValueError(
                    f"cascade.rules: {{over_tokens = {over}, use = {name!r}}} names no backend."
                )

    def spec(self, name: str) -> BackendSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise RefusedError(
                f"No backend named {name!r}; configured: {', '.join(self.specs) or 'none'}. "
                "Pick one of those with --backend, or add it to the config."
            ) from None

    # --- the guard ----------------------------------------------------------------

    def why_forbidden(self, spec: BackendSpec, *, local_only: bool) -> str | None:
        """The reason ``spec`` may not be used now, or None when it may."""
        if spec.local:
            return None
        if self.settings.offline:
            return (
                f"Offline mode is on, and backend '{spec.name}' ({spec.where}) is not on this "
                "machine: nothing was sent. Use a local backend (--backend NAME), or turn "
                "offline mode off (`offline = false` in the config, no --offline)."
            )
        if local_only:
            return (
                f"This session holds documents tagged local-only, and backend '{spec.name}' "
                f"({spec.where}) is not on this machine: nothing was sent. Use a local backend "
                "(--backend NAME), or remove the local-only documents."
            )
        return None

    def check(self, spec: BackendSpec, *, local_only: bool) -> None:
        """Raise ``RefusedError`` unless ``spec`` may receive this session's data."""
        why = self.why_forbidden(spec, local_only=local_only)
        if why is not None:
            raise RefusedError(why)

    # --- choices --------------------------------------------------------------------

    def draft(
        self,
        need: Fit,
        *,
        prompt: Fit | None = None,
        local_only: bool = False,
        forced: str | None = None,
    ) -> Route:
        """The backend that answers. ``need(spec)``: tokens the request needs there
        (prompt plus output room, for the fit); ``prompt(spec)``: the prompt alone,
        what rules compare with their ``over_tokens`` (default: ``need``)."""
        if forced is not None:
            spec = self.spec(forced)
            self.check(spec, local_only=local_only)
            self._check_runs(spec)
            self._check_fit(spec, need)
            return Route(spec, "chosen with --backend")
        s = self.settings
        if not (s.offline or local_only):
            size = prompt or need
            for over, name in sorted(s.rules, reverse=True):
                target = self.specs[name]
                if size(target) > over:
                    self._check_runs(target)
                    self._check_fit(target, need)
                    return Route(target, f"rule: prompts over {over:,} tokens go to '{name}'")
        local = self._local_candidate()
        if local is not None and need(local) <= local.context:
            return Route(local, "local backend configured and the prompt fits its window")
        if s.draft is None:
            raise RefusedError(
                "No backend is configured to answer: set cascade.draft in the config "
                "(or pass --backend NAME)."
            )
        spec = self.specs[s.draft]
        why = self.why_forbidden(spec, local_only=local_only)
        skipped = self._skipped_locals()
        if why is None:
            self._check_runs(spec)
            self._check_fit(spec, need)
            reason = "cascade.draft"
            if skipped:
                reason += "; " + "; ".join(
                    f"local backend '{x.name}' skipped: {x.unavailable}" for x in skipped
                )
            return Route(spec, reason)
        if local is not None:
            why = (
                f"The prompt needs {need(local):,} tokens but the local backend '{local.name}' "
                f"holds {local.context:,}, so it cannot answer. " + why
            )
        for x in skipped:
            why += (
                f" The local backend '{x.name}' cannot run: {x.unavailable} (fix "
                f"backends.{x.name}.model_path)."
            )
        raise RefusedError(why)

    def review(self, need: Fit, *, local_only: bool = False) -> Route:
        """The backend for the review pass and escalation (guarded like the draft)."""
        name = self.settings.review
        if name is None:
            raise RefusedError(
                'No review backend is configured: set cascade.review (e.g. "pro") in the config.'
            )
        spec = self.specs[name]
        self.check(spec, local_only=local_only)
        self._check_runs(spec)
        self._check_fit(spec, need)
        return Route(spec, "cascade.review")

    def _local_candidates(self) -> list[BackendSpec]:
        """``cascade.local``, else every in-process backend other than the draft."""
        if self.settings.local is not None:
            return [self.specs[self.settings.local]]
        return [
            s
            for s in self.specs.values()
            if s.kind in IN_PROCESS_KINDS and s.name != self.settings.draft
        ]

    def _local_candidate(self) -> BackendSpec | None:
        return next((s for s in self._local_candidates() if s.unavailable is None), None)

    def _skipped_locals(self) -> list[BackendSpec]:
        return [s for s in self._local_candidates() if s.unavailable is not None]

    @staticmethod
    def _check_runs(spec: BackendSpec) -> None:
        if spec.unavailable is not None:
            raise RefusedError(
                f"Backend '{spec.name}' cannot run: {spec.unavailable}. Fix "
                f"backends.{spec.name}.model_path in the config (or remove "
                f"[backends.{spec.name}]), or pick another backend with --backend NAME: "
                "nothing was sent."
            )

    @staticmethod
    def _check_fit(spec: BackendSpec, need: Fit) -> None:
        tokens = need(spec)
        if tokens > spec.context:
            raise RefusedError(
                f"The prompt needs {tokens:,} tokens but backend '{spec.name}' holds "
                f"{spec.context:,}: nothing was sent and nothing was cut. Exclude documents, "
                "start a new session, or pick a backend with a larger window."
            )
