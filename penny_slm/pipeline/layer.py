"""SLMLayer: the one call Penny makes per turn. ``await layer.process(user_id, message)`` → ``TurnResult``.

normalize → profile read → pre-LLM modules (planned from ``requires``/``provides``; research ∥ context
by default) → live search if research says so → dynamic system prompt → main LLM (an injected
callable, or an ``slm_models`` entry: local SmolLM2 by default) → post-LLM modules (the guard) →
profile updates through the sync manager (the only database writer).

The turn's deadline (``orchestration.total_timeout``) bounds everything Penny waits for. Each stage
gets the smaller of its own budget and what is left, and falls back when it runs out:

| stage          | budget                                                        | when it runs out                         |
|----------------|---------------------------------------------------------------|------------------------------------------|
| profile read   | ``PROFILE_READ_S``                                            | the prompt has no learned profile         |
| each module    | its block's ``inference_timeout``                             | its ``fallback`` (orchestrator table)     |
| search         | ``runtime.search_timeout``                                    | the LLM is told search failed             |
| main LLM       | ``runtime.main_llm_timeout``, leaving the post-LLM reserve    | a short apology                           |
| post-LLM       | its block's ``inference_timeout``                             | the guard: rules only (deterministic, ms) |
| queue updates  | ``QUEUE_WAIT_S``                                              | the commit finishes in the background     |

The post-LLM reserve is the sum of each post stage's largest ``inference_timeout``, capped at a third
of the total, so a slow LLM still leaves the guard time to work. Blocking work (model loads,
database reads and writes, sync callables) never runs on the event loop.

Learning controls (``layer.controls``, ``pipeline/controls.py``): the kill switch is read with the profile
on every turn. When it is on (``penny-slm kill``, ``controls.kill()`` or ``learning.kill_switch``) the turn
runs in safe mode: no profile update is queued (module runs still are), the guard runs its rules and tone
head but never trims or rewrites, and ``TurnResult.safe_mode`` says so. With ``learning.enabled`` false,
nothing is learned either, and the guard works as usual.

Drift monitor (``models -> drift_monitor``, off by default; ``pipeline/modules/drift.py``): not part of the turn's
plan. Each turn queues the user's message and the main LLM's response (before the guard) into the monitor's stored
window (``driftturn``, numbered and bounded per user); every ``every_n_turns`` turns a check runs on a background
thread after the turn has returned, and an alert goes through the sync manager (``alert`` rows of kind
``drift_<type>`` whose detail is the report as JSON; ``sync.acknowledge_alert``). Each check also stores the user's
persona baseline and how many of their turns were judged (``driftprofile``). After a restart the state is rebuilt
from the stored window and that baseline (not from the window's oldest turns, which may already drift); turns judged
before raise no alert again, turns stored but never judged (a restart between checks) are judged then.
``layer.drift_report(user_id)`` is the latest report.

Network: a turn connects only to what the user configured (the main LLM endpoint, the search service);
model loading and the profile's database are local, and nothing is sent anywhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from penny_slm.config import Persona, SLMConfig, load_config, load_persona
from penny_slm.errors import InputError, NotLoadedError
from penny_slm.pipeline import db
from penny_slm.pipeline.adapters.base import Message
from penny_slm.pipeline.controls import LearningControls, learning_items
from penny_slm.pipeline.factory import SLMFactory, build_modules
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.context import MARKER_CONFIDENCE
from penny_slm.pipeline.modules.drift import Baseline
from penny_slm.pipeline.orchestrator import SLMOrchestrator, SLMTask, plan_stages
from penny_slm.pipeline.prompt import build_system_prompt, render_notes
from penny_slm.pipeline.research_provider import FAILED_NOTICE, NoResearchProvider, ResearchNotes, ResearchProvider, SearxngProvider
from penny_slm.pipeline.sync import ContextSyncManager
from penny_slm.results import ContextUpdate, ModuleOutcome, ToneShift, TurnResult
from penny_slm.rules.normalize import normalize

LLMCall = Callable[[str, str], str | Awaitable[str]]
"""``llm(system_prompt, message) -> response``, sync or async: inject one to use Penny's own client instead of ``main_llm``."""
SearchCall = Callable[[str, float], str | ResearchNotes | Awaitable[str | ResearchNotes]]
"""``research(query, deadline_s) -> text or ResearchNotes``, sync or async: inject Penny's own search."""

LLM_APOLOGY = "Sorry, I couldn't reach my main model just now. Ask me again in a moment."
PROFILE_READ_S = 1.0
QUEUE_WAIT_S = 2.0
LOCAL_LLM_GRACE_S = 0.5  # the local generator stops itself this long before its budget ends, to return what it has
log = logging.getLogger(__name__)


class SLMLayer:
    """The one object Penny holds: ``SLMLayer(cfg).load()``, then ``await process(user_id, message)`` per turn, then
    ``close()``. The turn's stages, budgets and fallbacks are in the module docstring."""

    def __init__(self, cfg: SLMConfig | None = None, persona: Persona | None = None, *,
                 sqlite_path: Path | None = None, research: ResearchProvider | None = None) -> None:
        """Builds the modules from the config (their settings are checked here, at start-up); ``load`` does the I/O."""
        self.cfg = cfg or load_config()
        self.persona = persona or load_persona()
        self.registry = ModelRegistry(self.cfg.models_dir())
        self.orchestrator = SLMOrchestrator(self.cfg)
        self.factory = SLMFactory(self.cfg, self.registry)
        self.sqlite_path = sqlite_path
        self.research_provider = research or (SearxngProvider(self.cfg.runtime.searxng_url) if self.cfg.runtime.searxng_url
                                              else NoResearchProvider())
        built = build_modules(self.cfg, self.persona)
        self.modules: dict[str, Any] = {module.name: module for _, module in built}
        self.timeouts: dict[str, float] = {module.name: entry.inference_timeout for entry, module in built}
        self.drift: Any = self.modules.pop("drift", None)  # runs after the turn, every N turns, never in its plan
        self.timeouts.pop("drift", None)
        self._drift_states: dict[str, Any] = {}
        self._drift_pending: dict[str, list[tuple[str, str]]] = {}
        self._drift_reports: dict[str, Any] = {}
        self._drift_lock = threading.Lock()
        self._drift_worker: ThreadPoolExecutor | None = None
        self.plan = plan_stages(self.modules.values())
        self.store: db.PersonalityDB | None = None
        self.sync: ContextSyncManager | None = None
        self._controls: LearningControls | None = None
        self._safe_mode = self.cfg.learning.kill_switch  # the last kill-switch state read (used if a read fails)

    @property
    def classifier(self) -> Any:
        """The research module, if enabled."""
        return self.modules.get("research")

    @property
    def guard(self) -> Any:
        """The personality guard, if enabled."""
        return self.modules.get("guard")

    @property
    def controls(self) -> LearningControls:
        """Privacy and safety controls on this layer's database: versions, rollback, approvals, the transparency log,
        export and delete, the kill switch (see ``pipeline/controls.py``)."""
        if self._controls is None:
            raise NotLoadedError("SLMLayer.controls used before load(); call layer.load() first")
        return self._controls

    def load(self) -> SLMLayer:
        """Load the enabled modules (a disabled module is never built), open this layer's own database, start the writer."""
        for module in self.modules.values():
            module.load(self.registry)
        if self.drift is not None:
            self.drift.load(self.registry)
            self._drift_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="penny-drift")
        runtime = self.cfg.runtime
        self.store = db.connect(runtime.database_url or None, self.sqlite_path,
                                synchronous=runtime.database_synchronous)  # type: ignore[arg-type]
        self.sync = ContextSyncManager(self.store, learning=self.cfg.learning)
        self._controls = LearningControls(self.store, self.sync, self.cfg.learning)
        self.sync.start()
        return self

    def close(self) -> None:
        """Finish pending drift checks, drain the sync queue and close the database."""
        if self._drift_worker is not None:
            self._drift_worker.shutdown(wait=True)
            self._drift_worker = None
        if self.sync:
            self.sync.stop()
        if self.store:
            self.store.close()
        self.orchestrator.close()

    # -- one turn ----------------------------------------------------------------------------
    async def process(self, user_id: str, message: str, *, llm: LLMCall | None = None,
                      research: SearchCall | None = None) -> TurnResult:
        """Run one turn for ``user_id``: the pre-LLM modules, search if needed, the main LLM (``llm``, else
        ``runtime.main_llm``), the guard, then queue what was learned. Never raises for a module's timeout or error: the
        module's fallback answers and its outcome says so."""
        if not isinstance(user_id, str) or not user_id.strip():
            raise InputError("user_id must be a non-empty string")
        if self.sync is None:
            await asyncio.to_thread(self.load)
        assert self.sync is not None
        start = time.perf_counter()
        deadline = time.monotonic() + self.orchestrator.total_timeout_s
        timings: dict[str, float] = {}
        turn = TurnContext(user_id, normalize(message), uuid.uuid4().hex[:12])

        t = time.perf_counter()
        state = await self._bounded("profile read", self._read_state, min(PROFILE_READ_S, _left(deadline)), user_id)
        profile, safe_mode = state if state is not None else (None, self._safe_mode)
        turn = dataclasses.replace(turn, profile=profile, safe_mode=safe_mode)
        turn, pre = await self.orchestrator.run_stages(self.plan.pre, self._slots(), turn, deadline)
        timings["pre_llm"] = _ms(t)

        t = time.perf_counter()
        research_outcome = pre.get("research")
        notes = ""
        if research_outcome is not None and research_outcome.result is not None and research_outcome.result.needs_research:
            notes = render_notes(await self._search(turn.message.text, research, deadline))
        mood = _tone_shift(pre.get("context"))
        system_prompt = build_system_prompt(self.persona, profile, notes, mood=mood)
        timings["research_and_prompt"] = _ms(t)

        t = time.perf_counter()
        llm_outcome = await self._llm(system_prompt, turn.message.original, llm, deadline)
        timings["main_llm"] = _ms(t)

        t = time.perf_counter()
        response = llm_outcome.result or LLM_APOLOGY
        instructions = build_system_prompt(self.persona, profile, mood=mood) if notes else system_prompt
        turn, post = await self.orchestrator.run_stages(self.plan.post, self._slots(), dataclasses.replace(
            turn, response=response, instructions=instructions), deadline)
        guard_outcome = post.get("guard")
        final = guard_outcome.result.rewritten_response if guard_outcome is not None and guard_outcome.result else response
        timings["post_llm"] = _ms(t)

        outcomes = {**pre, **post}
        context = self._with_topic(outcomes.get("context"), research_outcome)
        t = time.perf_counter()
        learn = self.cfg.learning.enabled and not safe_mode
        drift_turn = ((turn.message.original[:MAX_TEXT], response[:MAX_TEXT])
                      if self.drift is not None and llm_outcome.status == "ok" else None)
        await self._queue_updates(user_id, turn.message, turn.message_id, context if learn else None,
                                  (*outcomes.values(), llm_outcome), deadline, drift_turn)
        timings["queue_updates"] = _ms(t)
        if drift_turn is not None:
            self._drift_after_turn(user_id, drift_turn)
        self.factory.unload_idle()
        return TurnResult(user_id, turn.message.original, research_outcome or _disabled("research"), context or _disabled("context"),
                          notes, system_prompt, llm_outcome, guard_outcome or _disabled("guard"), final, timings, _ms(start),
                          {**outcomes, "llm": llm_outcome}, safe_mode)

    def _read_state(self, user_id: str) -> tuple[Any, bool]:
        """The user's profile and whether the kill switch is on, read together at the start of the turn."""
        assert self.sync is not None and self._controls is not None
        self._safe_mode = self._controls.safe_mode()
        return self.sync.get_latest_context(user_id), self._safe_mode

    def _slots(self) -> dict[str, tuple[Any, float]]:
        return {name: (module, self.timeouts[name]) for name, module in self.modules.items()}

    async def _bounded(self, what: str, fn: Callable[..., Any], budget_s: float, *args: Any) -> Any:
        """``fn(*args)`` off the event loop within ``budget_s``; None (logged) if it fails or runs out."""
        try:
            return await self.orchestrator.call(fn, budget_s, *args)
        except Exception as exc:
            log.warning("%s: %s; going on without it", what, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            return None

    async def _search(self, query: str, research: SearchCall | None, deadline: float) -> ResearchNotes:
        budget = min(self.cfg.runtime.search_timeout, _left(deadline))
        found = await self._bounded("search", research or self.research_provider.search, budget, query, budget)
        if found is None:
            return ResearchNotes(notice=FAILED_NOTICE)
        return found if isinstance(found, ResearchNotes) else ResearchNotes(text=str(found))

    def _post_reserve(self) -> float:
        reserve = sum(max(self.timeouts[name] for name in stage) for stage in self.plan.post)
        return min(reserve, self.orchestrator.total_timeout_s / 3)

    async def _llm(self, system_prompt: str, message: str, llm: LLMCall | None, deadline: float) -> ModuleOutcome[str]:
        budget = max(0.0, min(self.cfg.runtime.main_llm_timeout, _left(deadline) - self._post_reserve()))
        name = self.cfg.runtime.main_llm if llm is None else "injected"
        if llm is None:
            def call() -> str:
                generator = self.factory.get_slm(name)
                messages = [Message("system", system_prompt), Message("user", message)]
                return str(generator.chat(messages, max_tokens=self.cfg.runtime.main_llm_max_tokens,
                                          deadline_s=max(0.0, budget - LOCAL_LLM_GRACE_S)).text)
            run: Callable[[], Any] = call
        else:
            run = functools.partial(llm, system_prompt, message)  # sync or async: the orchestrator awaits either
        (outcome,) = await self.orchestrator.run_sequential(
            [SLMTask("llm", run, budget, lambda _reason: LLM_APOLOGY, name)], deadline=time.monotonic() + budget)
        return outcome

    @staticmethod
    def _with_topic(context: ModuleOutcome[Any] | None, research: ModuleOutcome[Any] | None) -> ModuleOutcome[Any] | None:
        """The research category is the turn's topic marker (stored below the prompt builder's bar)."""
        if context is None or context.result is None or context.status != "ok":
            return context
        topic = research.result.category if research is not None and research.result is not None else "general"
        c: ContextUpdate = context.result
        updated = dataclasses.replace(c, context_markers={**c.context_markers, "topic": topic},
                                      updates=(*c.updates, {"key": "recent_topic", "value": topic, "confidence": MARKER_CONFIDENCE}))
        return dataclasses.replace(context, result=updated)

    async def _queue_updates(self, user_id: str, message: Any, message_id: str, context: ModuleOutcome[Any] | None,
                             outcomes: tuple[ModuleOutcome[Any], ...], deadline: float,
                             drift_turn: tuple[str, str] | None = None) -> None:
        """One durable commit for the turn's updates, off the event loop: what the context step learned (None: learning
        is off this turn) as one batch that ends in a profile version, and every module's run. If the commit outlasts
        its wait (a locked database), the turn returns and the commit completes in the background."""
        assert self.sync is not None
        items: list[tuple[str, dict[str, Any], str | None]] = []
        if context is not None and context.result is not None:
            items += learning_items(user_id, message_id, context.result.updates, message=message.original,
                                    model_version=context.model_version, log_message_text=self.cfg.learning.log_message_text)
        items += [("orchestrator", {"kind": "module_run", "user_id": user_id, "module": o.module, "status": o.status,
                                    "latency_ms": o.latency_ms, "model_version": o.model_version or ""},
                   f"{message_id}-run-{o.module}") for o in outcomes if o.status != "disabled"]
        if drift_turn is not None:
            items.append(("drift", {"kind": "drift_turn", "user_id": user_id, "message": drift_turn[0],
                                    "response": drift_turn[1], "keep": self.drift.history_turns},
                          f"{message_id}-drift-turn"))
        await self._bounded("queue updates (the commit goes on in the background)", self.sync.queue_updates,
                            max(0.1, min(QUEUE_WAIT_S, _left(deadline))), items)


    # -- the drift monitor, after the turn -----------------------------------------------------------------------
    def drift_report(self, user_id: str) -> Any:
        """The latest ``DriftReport`` for ``user_id`` (None before the first check, or with the monitor off)."""
        with self._drift_lock:
            return self._drift_reports.get(user_id)

    def _drift_after_turn(self, user_id: str, turn: tuple[str, str]) -> None:
        with self._drift_lock:
            pending = self._drift_pending.setdefault(user_id, [])
            pending.append(turn)
            if len(pending) < self.drift.every_n_turns or self._drift_worker is None:
                return
            batch, self._drift_pending[user_id] = list(pending), []
        self._drift_worker.submit(self._drift_check, user_id, batch)

    def _drift_check(self, user_id: str, batch: list[tuple[str, str]]) -> None:
        """One check (on the drift thread): rebuild the user's state from the stored history if this process has none
        (their stored baseline, turns judged before without re-raising their alerts, turns stored but never judged
        as new), observe the new turns, queue an alert for each episode detected and the user's drift state."""
        assert self.sync is not None
        try:
            state = self._drift_states.get(user_id)
            if state is None:
                history = self.sync.drift_history(user_id)
                baseline = Baseline.from_dict(history.baseline) if history.scorer == self.drift.scorer else None
                state, missed = self.drift.resume(_without_suffix(history.turns, batch), baseline=baseline,
                                                  judged=history.checked)
                for alert in missed:
                    self._queue_drift_alert(user_id, alert)
                self._drift_states[user_id] = state
            report = None
            for message, response in batch:
                report = self.drift.observe(state, message, response)
                for alert in state.alerts:
                    self._queue_drift_alert(user_id, alert)
            self.sync.queue_update("drift", {
                "kind": "drift_state", "user_id": user_id, "checked": state.turns, "scorer": self.drift.scorer,
                "baseline": state.baseline.to_dict() if state.baseline is not None else None})
            with self._drift_lock:
                self._drift_reports[user_id] = report
        except Exception:
            log.exception("drift monitor: check failed; the next one retries")

    def _queue_drift_alert(self, user_id: str, alert: Any) -> None:
        assert self.sync is not None
        log.warning("drift monitor: %s drift for a user since turn %s: %s", alert.drift_type, alert.since_turn,
                    alert.recommendation)
        self.sync.queue_update("drift", {
            "kind": "alert", "user_id": user_id, "alert_kind": f"drift_{alert.drift_type}",
            "severity": "high" if alert.severity >= 0.7 else "medium" if alert.severity >= 0.4 else "low",
            "detail": json.dumps(alert.to_dict())[:MAX_TEXT], "model_version": self.drift.model_version or ""})


MAX_TEXT = 10_000  # the sync queue's limit per string field


def _without_suffix(window: list[tuple[int, str, str]], batch: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """The stored window ``(turn, message, response)`` minus the batch's turns that the writer already applied (they
    are observed as new)."""
    for k in range(min(len(batch), len(window)), 0, -1):
        if [(m, r) for _, m, r in window[-k:]] == batch[:k]:
            return window[:-k]
    return window


def _tone_shift(context: ModuleOutcome[Any] | None) -> ToneShift | None:
    """This turn's mood from the context step (None: no mood head, a fallback, or the step disabled)."""
    if context is None or context.status != "ok" or not isinstance(context.result, ContextUpdate):
        return None
    return context.result.tone_shift


def _disabled(module: str) -> ModuleOutcome[Any]:
    return ModuleOutcome(module, "disabled", None, 0.0)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
