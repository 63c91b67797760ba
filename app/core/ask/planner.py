"""Planning a question: render it, route it, quote it, check the budget.

``Planner`` is the half of the cascade that sends nothing and writes
nothing: it renders the session's conversation for each candidate backend
(token ids for in-process engines), asks the router for the draft backend,
quotes every planned call with the cache hits the provider's cache model
predicts (``app.core.ask.api_cache``, ``app.core.ask.quote``), decides whether a
cache-priming request pays off (``app.core.ask.cache_plan``), prices calls
(``app.core.pricing``; local calls cost $0 and record what they saved) and
works out the budget question (against the worst case) before anything runs.
``app.core.ask.cascade.Cascade`` runs what it plans.

A ``Plan`` owns what it was made from (``Snapshot``: the conversation, the
corpus block and the renders made for it), so planning another question while
one streams changes nothing about the first; the planner itself keeps only
caches keyed by backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from app.core import pricing
from app.core.ask import api_cache
from app.core.ask.cache_plan import CacheModel, PrimingRequest, plan_priming
from app.core.ask.call import model_name
from app.core.ask.quote import (
    Candidate,
    ModeChangeQuote,
    expected_output_tokens,
    mode_change_quote,
    quote_line,
)
from app.core.ask.types import (
    BudgetQuestion,
    CallQuote,
    CascadeSettings,
    Plan,
    Snapshot,
    total_usd,
)
from app.core.prompt import RenderedPrompt, Turn, renderer_for
from app.core.prompt.texts import system_prompt
from app.core.session.log import REREAD_NOTE, Conversation, Session
from app.core.session.store import StoredDocument
from backends.base import ThinkingMode, Usage
from backends.factory import BackendPool, EngineTokenizerAdapter
from backends.profiles import Profile
from backends.router import IN_PROCESS_KINDS, BackendSpec, RefusedError, Router

DEFAULT_MAX_TOKENS = {False: 8192, True: 32768}
# Events that change what the next prompt holds (a plan made before one is stale).
SHAPING_EVENTS = ("documents", "question", "mode_changed")  # non-thinking, thinking


class Planner:
    def __init__(
        self,
        session: Session,
        pool: BackendPool,
        router: Router,
        settings: CascadeSettings,
        profiles: Mapping[str, Profile],
        *,
        system: str | None = None,
    ) -> None:
        self.session = session
        self.pool = pool
        self.router = router
        self.settings = settings
        self.profiles = profiles
        self.system = system if system is not None else system_prompt(demo=settings.demo)
        self._engines: dict[str, EngineTokenizerAdapter] = {}

    # --- planning -------------------------------------------------------------------------

    def snapshot(self, conversation: Conversation | None = None) -> Snapshot:
        """The conversation as it is now (or as given), ready to render."""
        if conversation is not None:
            return Snapshot(conversation, conversation_corpus(conversation))
        mark = self.log_mark()
        conv = self.session.conversation()
        return Snapshot(conv, conversation_corpus(conv), mark=mark)

    def log_mark(self) -> int:
        """The newest event that changes what the next prompt holds."""
        return self.session.store.last_event_id(self.session.id, SHAPING_EVENTS)

    def plan(
        self,
        question: str,
        *,
        forced: str | None = None,
        review: bool | None = None,
        mode: ThinkingMode | None = None,
        conversation: Conversation | None = None,
    ) -> Plan:
        """Route and quote ``question`` (in ``mode``, default the session's; another mode
        is switched to when the plan runs). Raises ``RefusedError``; sends and writes
        nothing. ``conversation``: plan on this one instead of the session's (a quote of
        documents not added yet)."""
        mode = mode or self.session.mode
        snap = self.snapshot(conversation)
        turns = conversation_turns(snap.conversation, question)
        local_only = any(d.local_only for d in snap.conversation.documents)
        route = self.router.draft(
            lambda s: self.render(snap, s, turns, mode).prompt_tokens + self.max_tokens(s, mode),
            prompt=lambda s: self.render(snap, s, turns, mode).prompt_tokens,
            local_only=local_only,
            forced=forced,
        )
        spec = route.spec
        rendered = self.render(snap, spec, turns, mode, exact=True)
        need = rendered.prompt_tokens + self.max_tokens(spec, mode)
        if need > spec.context:
            raise RefusedError(
                f"The prompt needs {rendered.prompt_tokens:,} tokens plus "
                f"{self.max_tokens(spec, mode):,} for the answer, but '{spec.name}' holds "
                f"{spec.context:,}: nothing was sent and nothing was cut. Exclude documents "
                "or pick a backend with a larger window."
            )
        switching = mode is not self.session.mode
        index = 0 if switching else len(snap.conversation.turns)
        priming = self._plan_priming(snap, spec, turns, mode, index)
        quotes = []
        if priming is not None:
            quotes.append(self._priming_quote(spec, priming))
        quotes.append(self.quote("draft", spec, rendered))
        do_review = self.settings.review if review is None else review
        if do_review:
            from app.core.ask.review import review_quote

            quotes.extend(review_quote(self, snap, spec, turns, mode, local_only))
        return Plan(
            question=question,
            mode=mode,
            snapshot=snap,
            turns=turns,
            route=route,
            rendered=rendered,
            max_tokens=self.max_tokens(spec, mode),
            priming=priming,
            review=do_review,
            quotes=tuple(quotes),
            local_only=local_only,
            budget=self.quotes_question("question", quotes, Decimal(0)),
        )

    def max_tokens(self, spec: BackendSpec, mode: ThinkingMode) -> int:
        """Output cap of a call: the setting (or the mode's default), within the profile's."""
        wanted = self.settings.max_tokens or DEFAULT_MAX_TOKENS[mode.thinking]
        return max(1, min(wanted, self.pool.profile(spec.name).max_output))

    def render(
        self,
        snap: Snapshot,
        spec: BackendSpec,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        *,
        exact: bool = False,
    ) -> RenderedPrompt:
        """The prompt for ``spec``, memoised in ``snap``. ``exact``: token ids for
        in-process engines, and the engine's own tokenizer where the family needs it
        (this loads the model)."""
        profile = self.pool.profile(spec.name)
        in_process = spec.kind in IN_PROCESS_KINDS
        ids = in_process and exact
        key = (spec.name, hash((tuple(turns), mode)), ids)
        cached = snap.renders.get(key)
        if cached is not None:
            return cached
        engine = None
        needs_engine = profile.family in ("gguf", "deepseek-v41")
        if in_process and needs_engine and (exact or self.pool.built(spec.name) is not None):
            engine = self.engine_tokenizer(spec)
        rendered = renderer_for(profile, engine).render(
            self.system, snap.corpus, list(turns), mode, with_ids=ids
        )
        snap.renders[key] = rendered
        return rendered

    def mode_change_quote(self, new_mode: ThinkingMode, question: str) -> ModeChangeQuote:
        """What switching the session to ``new_mode`` costs: the corpus read again."""
        old = self.session.mode
        snap = self.snapshot()
        turns = conversation_turns(snap.conversation, question)
        local_only = any(d.local_only for d in snap.conversation.documents)
        route = self.router.draft(
            lambda s: self.render(snap, s, turns, old).prompt_tokens + self.max_tokens(s, old),
            prompt=lambda s: self.render(snap, s, turns, old).prompt_tokens,
            local_only=local_only,
        )
        spec = route.spec
        profile = self.pool.profile(spec.name)
        engine = self.engine_tokenizer(spec) if self.pool.built(spec.name) else None
        return mode_change_quote(
            self.candidate(spec, old),
            renderer_for(profile, engine),
            self.system,
            snap.corpus,
            turns,
            old,
            new_mode,
            at=dt.datetime.now(dt.UTC),
            output_expected=self.expected_output(),
        )

    def engine_tokenizer(self, spec: BackendSpec) -> EngineTokenizerAdapter:
        """The loaded engine's tokenizer (one per backend, so renderers keep their memo)."""
        adapter = self._engines.get(spec.name)
        if adapter is None:
            adapter = EngineTokenizerAdapter(self.pool.get(spec.name))
            self._engines[spec.name] = adapter
        return adapter

    # --- cache and quotes -----------------------------------------------------------------

    def deepseek_cache(self, spec: BackendSpec) -> bool:
        """True for a server with DeepSeek's prefix-unit cache: the API, or a server
        configured with ``flavour = "deepseek"`` (such as the test fixture)."""
        if spec.kind != "openai" or spec.base_url is None:
            return False
        if self.pool.profile(spec.name).family not in ("deepseek-v4", "deepseek-v41"):
            return False
        from backends.remote.openai_compat import detect_flavour

        flavour = self.pool.resolved[spec.name].table.get("flavour")
        return (flavour or detect_flavour(spec.base_url)) == "deepseek"

    def _calls(self) -> list[Mapping[str, Any]]:
        return [e.payload for e in self.session.events(("backend_call",))]

    def _plan_priming(
        self,
        snap: Snapshot,
        spec: BackendSpec,
        turns: Sequence[Turn],
        mode: ThinkingMode,
        index: int,
        *,
        reuse: str = "conversation",
    ) -> PrimingRequest | None:
        """A 1-token request that stores the corpus as its own cache unit, when the next
        request would otherwise miss it. ``reuse``: what the next request on ``spec``
        shares with this one: the conversation (the next question), or only the corpus
        prefix (the next review or escalation, whose last turn differs)."""
        if not self.settings.prime_cache or not self.deepseek_cache(spec):
            return None
        if reuse == "conversation" and not mode.thinking:
            return None  # the next question starts with this one's output unit
        profile = self.pool.profile(spec.name)
        model = api_cache.replay(
            self._calls(), api_cache.cache_owner(spec, model_name(self.pool, spec))
        )
        return plan_priming(
            mode,
            index,
            model,
            renderer=renderer_for(profile),
            system=self.system,
            corpus=snap.corpus,
            turns=turns,
            profile=profile,
            at=dt.datetime.now(dt.UTC),
            reuse=reuse,
        )

    def candidate(self, spec: BackendSpec, mode: ThinkingMode) -> Candidate:
        """``spec`` as ``app.core.ask.quote`` sees it, with what the session knows of its cache."""
        profile = self.pool.profile(spec.name)
        cache = None
        if self.deepseek_cache(spec):
            owner = api_cache.cache_owner(spec, model_name(self.pool, spec))
            cache = api_cache.replay(self._calls(), owner)
        tps = None
        prefix_state = False
        if spec.local and spec.kind in IN_PROCESS_KINDS:
            built = self.pool.built(spec.name)
            tps = getattr(built, "measured_prefill_tps", None) if built is not None else None
            prefix_state = True  # refined per prompt in ``quote``
        return Candidate(
            name=spec.name,
            profile=profile,
            local=spec.local and spec.kind in IN_PROCESS_KINDS,
            max_tokens=self.max_tokens(spec, mode),
            context=spec.context,
            tokens_per_second=tps,
            prefix_state=prefix_state,
            api_profile=self.profiles.get(self.settings.saved_profile),
            cache=cache,
        )

    def quote(
        self, purpose: str, spec: BackendSpec, rendered: RenderedPrompt, *, extra_prompt: int = 0
    ) -> CallQuote:
        """Expected cost of one call of ``rendered`` on ``spec`` (``app.core.ask.quote``)."""
        candidate = self.candidate(spec, rendered.mode)
        if candidate.local:
            candidate = replace(candidate, prefix_state=self.prefix_saved(spec, rendered))
        elif candidate.cache is None and api_cache.prefix_sent_before(
            self._calls(), api_cache.prefix_key(spec, rendered)
        ):
            # A server without DeepSeek's rules (vLLM...) caches the prefix it saw.
            candidate = replace(candidate, cache=_prefix_cache(rendered))
        prompt = rendered
        if extra_prompt:
            prompt = replace(rendered, prompt_tokens=rendered.prompt_tokens + extra_prompt)
        line = quote_line(
            candidate, prompt, at=dt.datetime.now(dt.UTC), output_expected=self.expected_output()
        )
        return CallQuote(
            purpose=purpose,
            backend=spec.name,
            profile=line.profile,
            prompt_tokens=line.prompt_tokens,
            cache_hit=line.expected_hit,
            output_tokens=line.output_expected,
            cost_usd=line.cost_expected,
            estimated_tokens=line.estimated,
            line=line,
        )

    def prefix_saved(self, spec: BackendSpec, rendered: RenderedPrompt) -> bool:
        """Whether the in-process backend's state store holds this prompt's corpus prefix
        (its question then starts at once). Asked of the store, never inferred from the
        log: the store may have evicted or lost the state since the last call. Runs where
        the plan runs (a worker, for the window)."""
        backend = self.pool.built(spec.name)
        ids, prefix = rendered.prompt_ids, rendered.prefix_tokens
        ask = getattr(backend, "prefix_saved", None)
        if ask is None or ids is None or prefix <= 0:
            return False
        return bool(ask(ids[:prefix], rendered.mode))

    def expected_output(self) -> int:
        """Output tokens expected of an answer: the setting, else the session's mean."""
        if self.settings.assumed_output_tokens is not None:
            return self.settings.assumed_output_tokens
        done = [
            int((c.get("usage") or {}).get("completion", 0))
            for c in self._calls()
            if c.get("purpose") in ("draft", "escalation") and c.get("status") == "ok"
        ]
        return expected_output_tokens(done)

    def with_priming(
        self, quote: CallQuote, spec: BackendSpec, priming: PrimingRequest | None
    ) -> tuple[CallQuote, ...]:
        """``quote``, and the quote of the priming request sent with that call, if any."""
        return (quote,) if priming is None else (quote, self._priming_quote(spec, priming))

    def _priming_quote(self, spec: BackendSpec, priming: PrimingRequest) -> CallQuote:
        exp = priming.expected
        return CallQuote(
            "priming",
            spec.name,
            spec.profile,
            exp.prompt_tokens,
            exp.hit_tokens,
            1,
            priming.cost_expected,
            False,
        )

    def price(
        self, usage: Usage, profile: Profile, at: dt.datetime
    ) -> tuple[Decimal | None, Decimal | None]:
        """(cost, saved): local calls cost $0 and save what the API would have charged."""
        if profile.tier == "local":
            api = self.profiles.get(self.settings.saved_profile)
            saved = pricing.saved(usage, api, at) if api is not None else None
            return Decimal(0), saved.total if saved is not None else None
        charged = pricing.cost(usage, profile, at)
        return (charged.total if charged is not None else None), None

    # --- budget ---------------------------------------------------------------------------

    def quotes_question(
        self, step: str, quotes: Sequence[CallQuote], spent_now: Decimal
    ) -> BudgetQuestion | None:
        """``budget_question`` for the calls ``quotes`` (a step and its priming request)."""
        expected = total_usd(q.cost_usd for q in quotes)
        return self.budget_question(
            step, expected, total_usd(q.worst_usd for q in quotes), spent_now
        )

    def budget_question(
        self,
        step: str,
        expected: Decimal | None,
        worst: Decimal | None,
        spent_now: Decimal,
    ) -> BudgetQuestion | None:
        """The question to ask before ``step`` when its expected or worst-case cost
        (``worst``: nothing cached and ``max_tokens`` out) would pass a cap; None when
        it stays within every cap."""
        s = self.settings
        money = pricing.format_money
        session_spent = self.session.spend().total
        caps = s.budget_message_usd is not None or s.budget_session_usd is not None
        reasons = []
        if expected is None or worst is None:
            if caps:
                reasons.append(
                    "The price of this step is unknown (no price for the model), so the "
                    "budget cannot be checked."
                )
        else:
            cost = f"about {money(spent_now + expected)} (at most {money(spent_now + worst)})"
            cap = s.budget_message_usd
            if cap is not None and spent_now + worst > cap:
                reasons.append(
                    f"This message would cost {cost}, over your per-message cap of {money(cap)}."
                )
            cap = s.budget_session_usd
            if cap is not None and session_spent + worst > cap:
                reasons.append(
                    f"The session would reach about {money(session_spent + expected)} (at most "
                    f"{money(session_spent + worst)}), over your per-session cap of {money(cap)}."
                )
        if not reasons:
            return None
        return BudgetQuestion(step, expected, worst, spent_now, session_spent, tuple(reasons))


def conversation_corpus(conv: Conversation) -> str:
    """The corpus block of ``conv`` (counted: a reopened session is not tokenized again)."""
    from app.core.prompt.corpus import counted_corpus

    return counted_corpus([d.document for d in conv.corpus])


def conversation_turns(conv: Conversation, question: str) -> tuple[Turn, ...]:
    """The turns for the renderers: the history, then the new question carrying the
    documents added since the last turn."""
    turns = [Turn(t.question, t.answer, added_block(t.added)) for t in conv.turns]
    turns.append(Turn(question, None, added_block(conv.pending)))
    return tuple(turns)


def added_block(docs: Sequence[StoredDocument]) -> str:
    """Documents added mid-session, as they ride in a turn's user message."""
    if not docs:
        return ""
    from app.core.prompt.corpus import render_corpus

    replaced = [
        d.document.path for d in docs if any(n.startswith(REREAD_NOTE) for n in d.document.notes)
    ]
    note = ""
    if replaced:
        note = (
            "(These files changed on disk and were read again; each replaces the earlier "
            "copy with the same path: " + ", ".join(replaced) + ".)\n"
        )
    body = render_corpus([d.document for d in docs])
    return "<documents added>\n" + note + body + "</documents added>\n\n"


def _prefix_cache(rendered: RenderedPrompt) -> CacheModel:
    """A cache model holding just ``rendered``'s stable prefix."""
    model = CacheModel()
    model.record(rendered.segments[:1])
    return model
