"""SLMLayer: the one call Penny makes per turn. ``await layer.process(user_id, message)`` → ``TurnResult``.

normalize → research classifier ∥ context step (thread pool, deadlines, fallbacks) → research provider
if needed → dynamic system prompt → main LLM (an ``slm_models`` entry: local SmolLM2 by default) →
personality guard → profile updates through the sync manager (the only DB writer).

The context step is what can be measured honestly until the context tracker's models exist: message
length, local hour and the classifier's topic; its ``ContextUpdate.note`` says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from penny_slm.config import Persona, SLMConfig, load_config, load_persona
from penny_slm.errors import InputError
from penny_slm.pipeline import db
from penny_slm.pipeline.adapters.base import Message
from penny_slm.pipeline.factory import SLMFactory
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.guard import PersonalityGuard
from penny_slm.pipeline.modules.research import ResearchClassifier
from penny_slm.pipeline.orchestrator import SLMOrchestrator, SLMTask
from penny_slm.pipeline.prompt import build_system_prompt
from penny_slm.pipeline.research_provider import NoResearchProvider, ResearchProvider, SearxngProvider
from penny_slm.pipeline.sync import ContextSyncManager
from penny_slm.results import ContextUpdate, ModuleOutcome, TurnResult
from penny_slm.rules.normalize import normalize

LLMCall = Callable[[str, str], str]
"""``llm(system_prompt, message) -> response``: inject one to use Penny's own client instead of ``main_llm``."""

LLM_APOLOGY = "Sorry, I couldn't reach my main model just now. Ask me again in a moment."
CONTEXT_NOTE = "context tracker models not built yet: only message length, local hour and topic are recorded"
MARKER_CONFIDENCE = 0.3
"""Measured markers (time of day, topic) are stored but are not preferences: below the prompt builder's 0.5
bar, so they never reach the system prompt (the 135M local model echoes anything it is shown)."""


class SLMLayer:
    def __init__(self, cfg: SLMConfig | None = None, persona: Persona | None = None, *,
                 sqlite_path: Path | None = None, research: ResearchProvider | None = None) -> None:
        self.cfg = cfg or load_config()
        self.persona = persona or load_persona()
        self.registry = ModelRegistry(self.cfg.models_dir())
        self.orchestrator = SLMOrchestrator(self.cfg)
        self.factory = SLMFactory(self.cfg, self.registry)
        self.sqlite_path = sqlite_path
        self.research_provider = research or (SearxngProvider(self.cfg.runtime.searxng_url) if self.cfg.runtime.searxng_url
                                              else NoResearchProvider())
        self.classifier: ResearchClassifier | None = None
        self.guard: PersonalityGuard | None = None
        self.sync: ContextSyncManager | None = None

    def load(self) -> SLMLayer:
        """Load enabled modules only (a disabled module is never loaded), open the database, start the writer."""
        models = self.cfg.models
        if models.research_classifier.enabled:
            self.classifier = ResearchClassifier.from_config(self.cfg)
            self.classifier.load(self.registry)
        if models.personality_guard.enabled:
            self.guard = PersonalityGuard.from_config(self.cfg, self.persona)
            self.guard.load(self.registry)
        self.sync = ContextSyncManager(db.connect(self.cfg.runtime.database_url or None, self.sqlite_path))
        self.sync.start()
        return self

    def close(self) -> None:
        if self.sync:
            self.sync.stop()
        self.orchestrator.close()

    # -- one turn ----------------------------------------------------------------------------
    async def process(self, user_id: str, message: str, *, llm: LLMCall | None = None) -> TurnResult:
        if self.sync is None:
            self.load()
        assert self.sync is not None
        if not isinstance(user_id, str) or not user_id.strip():
            raise InputError("user_id must be a non-empty string")
        start = time.perf_counter()
        timings: dict[str, float] = {}
        turn = normalize(message)
        message_id = uuid.uuid4().hex[:12]
        deadline = time.monotonic() + self.orchestrator.total_timeout_s
        plan = self.orchestrator.get_execution_plan(turn.text)

        research, context = await self._pre_llm(turn.text, plan.parallel, deadline)
        timings["pre_llm"] = _ms(start)
        topic = research.result.category if research.result else "general"
        context = self._with_topic(context, topic)

        t = time.perf_counter()
        notes = ""
        if research.result is not None and research.result.needs_research:
            try:
                notes = (await asyncio.to_thread(self.research_provider.search, turn.text, 3.0)).text
            except Exception as exc:
                notes = f"Live search failed ({exc}). Your knowledge may be out of date: say so."
        profile = self.sync.get_latest_context(user_id)
        system_prompt = build_system_prompt(self.persona, profile, notes)
        timings["research_and_prompt"] = _ms(t)

        t = time.perf_counter()
        llm_outcome = await self._llm(system_prompt, turn.original, llm)
        timings["main_llm"] = _ms(t)

        t = time.perf_counter()
        guard_outcome: ModuleOutcome[Any]
        response = llm_outcome.result or LLM_APOLOGY
        if self.guard is not None:
            guard = self.guard
            (guard_outcome,) = await self.orchestrator.run_sequential([SLMTask(
                "guard", lambda: guard.predict(response), self.cfg.models.personality_guard.inference_timeout,
                lambda reason: guard.fallback(response, reason), guard.model_version)], deadline=time.monotonic() + 60)
        else:
            guard_outcome = ModuleOutcome("guard", "disabled", None, 0.0)
        final = guard_outcome.result.rewritten_response if guard_outcome.result else response
        timings["guard"] = _ms(t)

        t = time.perf_counter()
        self._queue_updates(user_id, message_id, context, (research, context, llm_outcome, guard_outcome))
        timings["queue_updates"] = _ms(t)
        return TurnResult(user_id, turn.original, research, context, notes, system_prompt, llm_outcome,
                          guard_outcome, final, timings, _ms(start))

    async def _pre_llm(self, text: str, modules: tuple[str, ...], deadline: float) -> tuple[ModuleOutcome[Any], ModuleOutcome[Any]]:
        tasks = []
        if "research" in modules and self.classifier is not None:
            clf = self.classifier
            tasks.append(SLMTask("research", lambda: clf.predict(text), self.cfg.models.research_classifier.inference_timeout,
                                 lambda reason: clf.fallback(text, reason), clf.model_version))
        if "context" in modules:
            tasks.append(SLMTask("context", lambda: _measure_context(text), self.cfg.models.context_tracker.inference_timeout,
                                 lambda reason: ContextUpdate((), None, {}, None, None, (), f"fallback: {reason}")))
        outcomes = {o.module: o for o in await self.orchestrator.run_parallel(tasks, deadline)}
        skipped: ModuleOutcome[Any] = ModuleOutcome("research", "disabled", None, 0.0)
        if not text.strip() and self.classifier is not None:  # the plan skips the model; the classifier's own empty verdict
            skipped = ModuleOutcome("research", "ok", self.classifier.predict(text), 0.0, self.classifier.model_version)
        return (outcomes.get("research", skipped),
                outcomes.get("context", ModuleOutcome("context", "disabled", None, 0.0)))

    @staticmethod
    def _with_topic(context: ModuleOutcome[Any], topic: str) -> ModuleOutcome[Any]:
        if context.result is None or context.status != "ok":
            return context
        c: ContextUpdate = context.result
        updated = dataclasses.replace(c, context_markers={**c.context_markers, "topic": topic},
                                      updates=(*c.updates, {"key": "recent_topic", "value": topic, "confidence": MARKER_CONFIDENCE}))
        return dataclasses.replace(context, result=updated)

    async def _llm(self, system_prompt: str, message: str, llm: LLMCall | None) -> ModuleOutcome[str]:
        timeout = self.cfg.runtime.main_llm_timeout
        name = self.cfg.runtime.main_llm
        if llm is None:
            def call() -> str:
                generator = self.factory.get_slm(name)
                messages = [Message("system", system_prompt), Message("user", message)]
                return str(generator.chat(messages, max_tokens=self.cfg.runtime.main_llm_max_tokens, deadline_s=timeout).text)
        else:
            def call() -> str:
                return llm(system_prompt, message)
        # the local generator stops itself at ``timeout``; it gets a second of grace to return what it has
        limit = timeout + 1.0 if llm is None else timeout
        (outcome,) = await self.orchestrator.run_sequential(
            [SLMTask("llm", call, limit, lambda _reason: LLM_APOLOGY, name if llm is None else "injected")],
            deadline=time.monotonic() + limit)
        return outcome

    def _queue_updates(self, user_id: str, message_id: str, context: ModuleOutcome[Any], outcomes: tuple[ModuleOutcome[Any], ...]) -> None:
        assert self.sync is not None
        items: list[tuple[str, dict[str, Any], str | None]] = []
        if context.result is not None:
            items += [("context", {"kind": "dimension", "user_id": user_id, "message_id": message_id, **update},
                       f"{message_id}-ctx-{i}") for i, update in enumerate(context.result.updates)]
        items += [("orchestrator", {"kind": "module_run", "user_id": user_id, "module": o.module, "status": o.status,
                                    "latency_ms": o.latency_ms, "model_version": o.model_version or ""},
                   f"{message_id}-run-{o.module}") for o in outcomes if o.status != "disabled"]
        self.sync.queue_updates(items)


def _measure_context(text: str) -> ContextUpdate:
    hour = datetime.now().hour
    markers = {"message_chars": len(text), "message_words": len(text.split()), "local_hour": hour}
    part = "morning" if 5 <= hour < 12 else "afternoon" if hour < 18 else "evening" if hour < 23 else "night"
    return ContextUpdate((), None, markers, None, None, ({"key": "active_time_of_day", "value": part, "confidence": MARKER_CONFIDENCE},), CONTEXT_NOTE)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
