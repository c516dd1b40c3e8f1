"""SLMOrchestrator: plans modules from ``requires``/``provides`` and runs calls with deadlines and fallbacks.

The plan: modules whose requirements are met by the turn's inputs (``normalized``, ``profile``) run
first, in parallel; a module that needs another's output runs in a later stage; modules that need
``response`` run after the main LLM, in stages the same way. A requirement nothing provides, or a
cycle, is a ``ConfigError`` at start-up, not a surprise mid-turn.

Calls: blocking callables run on worker threads, at most ``max_parallel_tasks`` at once; async
callables are awaited. Each call gets ``min(its own timeout, what is left of the turn's deadline)``.
On timeout or error the task's ``fallback`` supplies the result and the ``ModuleOutcome`` says so:

| module   | fallback                                   | why it is safe                                  |
|----------|--------------------------------------------|-------------------------------------------------|
| research | the keyword matcher (``rules.keywords``)   | the old behaviour; errs towards searching        |
| context  | an empty ``ContextUpdate`` (nothing queued) | learning nothing is better than learning wrong  |
| llm      | a short apology as the response            | the user gets an answer, not a hang              |
| guard    | rules only (absolute prohibitions fixed)   | the hard rules never depend on a model           |

A thread cannot be killed: a blocking call still running at its deadline is *abandoned*. It gives
its slot back at once (so a hung callable never starves later turns), finishes or hangs on its own,
and its result is dropped; ``abandoned`` counts those still running. Generators take ``deadline_s``
so their work really stops. With ``fallback_on_timeout`` false, a timed-out task reports
``timeout`` with no result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from penny_slm.config import SLMConfig
from penny_slm.errors import ConfigError
from penny_slm.pipeline.modules.base import RESPONSE, TURN_INPUTS, TurnContext
from penny_slm.results import ModuleOutcome

log = logging.getLogger(__name__)
MAX_ABANDONED = 64
"""Abandoned calls still running above which new blocking calls fall back at once instead of starting
another thread (a callable that always hangs would otherwise grow the process without bound)."""


@dataclass(frozen=True, slots=True)
class SLMTask:
    """One module call to run under a deadline, with the fallback that answers if it times out or fails."""
    module: str
    run: Callable[[], Any]
    timeout_s: float
    fallback: Callable[[str], Any] | None = None
    model_version: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """Module names by stage: each stage runs in parallel after the previous one. ``pre`` runs before the
    main LLM, ``post`` after it (on the response); ``disabled`` are configured but switched off."""

    pre: tuple[tuple[str, ...], ...]
    post: tuple[tuple[str, ...], ...]
    disabled: tuple[str, ...] = ()

    @property
    def parallel(self) -> tuple[str, ...]:
        """The first pre-LLM stage (the modules that share no inputs)."""
        return self.pre[0] if self.pre else ()


def plan_stages(modules: Iterable[Any]) -> ExecutionPlan:
    """Stages from each module's ``requires``/``provides`` (see the module docstring)."""
    remaining = {m.name: m for m in modules}
    available = set(TURN_INPUTS)
    pre: list[tuple[str, ...]] = []
    post: list[tuple[str, ...]] = []
    while remaining:
        ready = tuple(sorted(name for name, m in remaining.items() if m.requires <= available))
        if not ready:
            if RESPONSE in available:
                missing = {name: sorted(m.requires - available) for name, m in remaining.items()}
                raise ConfigError("models", f"requirements no enabled module provides (or a cycle): {missing}")
            available.add(RESPONSE)
            continue
        (post if RESPONSE in available else pre).append(ready)
        for name in ready:
            available |= remaining.pop(name).provides
    return ExecutionPlan(tuple(pre), tuple(post))


class _Call:
    """One blocking call's state, shared by its thread and the coroutine waiting for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "waiting"  # waiting for a slot → running → done; or cancelled / abandoned


class Workers:
    """Runs blocking calls on daemon threads, at most ``limit`` running at once (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.Semaphore(limit)
        self._count_lock = threading.Lock()
        self.abandoned = 0

    async def call(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        """``fn()``'s result, or ``TimeoutError`` after ``timeout_s`` (the call is abandoned, its slot freed)."""
        if self.abandoned >= MAX_ABANDONED:
            raise RuntimeError(f"{self.abandoned} earlier calls are still hung; not starting another")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        state = _Call()

        def deliver(setter: Callable[[Any], None], value: Any) -> None:
            if not future.done():
                setter(value)

        def target() -> None:
            self._slots.acquire()
            with state.lock:
                if state.phase == "cancelled":  # timed out while waiting for a slot
                    self._slots.release()
                    return
                state.phase = "running"
            try:
                result, error = fn(), None
            except BaseException as exc:  # delivered to the waiting coroutine
                result, error = None, exc
            with state.lock:
                abandoned, state.phase = state.phase == "abandoned", "done"
            if abandoned:
                with self._count_lock:
                    self.abandoned -= 1
                return
            self._slots.release()
            if error is None:
                loop.call_soon_threadsafe(deliver, future.set_result, result)
            else:
                loop.call_soon_threadsafe(deliver, future.set_exception, error)

        threading.Thread(target=target, name="penny-slm-call", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(0.0, timeout_s))
        except TimeoutError:
            with state.lock:
                if state.phase == "waiting":
                    state.phase = "cancelled"
                elif state.phase == "running":
                    state.phase = "abandoned"
                    self._slots.release()  # the slot goes back now; the thread will not release it again
                    with self._count_lock:
                        self.abandoned += 1
            raise


class SLMOrchestrator:
    """Runs a turn's module calls in parallel on worker threads, within their own and the turn's deadlines, and falls back
    per module."""
    def __init__(self, cfg: SLMConfig) -> None:
        self.cfg = cfg
        self.max_parallel = cfg.orchestration.max_parallel_tasks
        self.total_timeout_s = cfg.orchestration.total_timeout
        self.fallback_on_timeout = cfg.orchestration.fallback_on_timeout
        self.workers = Workers(self.max_parallel)

    async def call(self, fn: Callable[..., Any], timeout_s: float, *args: Any) -> Any:
        """``fn(*args)`` under ``timeout_s``: awaited if it is async (or returns an awaitable), else on a worker thread."""
        if inspect.iscoroutinefunction(fn):
            return await asyncio.wait_for(fn(*args), timeout=max(0.0, timeout_s))
        start = time.monotonic()
        result = await self.workers.call(lambda: fn(*args), timeout_s)
        if inspect.isawaitable(result):
            return await asyncio.wait_for(result, timeout=max(0.0, timeout_s - (time.monotonic() - start)))
        return result

    async def _one(self, task: SLMTask, deadline: float) -> ModuleOutcome[Any]:
        start = time.perf_counter()
        budget = max(0.0, min(task.timeout_s, deadline - time.monotonic()))
        try:
            result = await self.call(task.run, budget)
            return ModuleOutcome(task.module, "ok", result, _ms(start), task.model_version)
        except TimeoutError:
            reason, status = f"timed out after {budget:.2f}s", "timeout"
        except Exception as exc:
            reason, status = f"{type(exc).__name__}: {exc}", "error"
        if task.fallback is None or (status == "timeout" and not self.fallback_on_timeout):
            log.warning("%s: %s; no fallback", task.module, reason)
            return ModuleOutcome(task.module, status, None, _ms(start), task.model_version, reason)  # type: ignore[arg-type]
        log.warning("%s: %s; using its fallback", task.module, reason)
        return ModuleOutcome(task.module, "fallback", task.fallback(reason), _ms(start), task.model_version, f"{status}: {reason}")

    async def run_parallel(self, tasks: list[SLMTask], deadline: float | None = None) -> list[ModuleOutcome[Any]]:
        """Independent tasks at once (at most ``max_parallel_tasks``), each under its own and the total deadline."""
        deadline = deadline or time.monotonic() + self.total_timeout_s
        return list(await asyncio.gather(*(self._one(t, deadline) for t in tasks)))

    async def run_sequential(self, tasks: list[SLMTask], deadline: float | None = None) -> list[ModuleOutcome[Any]]:
        """Dependent tasks one after another; later tasks get what is left of the total deadline."""
        deadline = deadline or time.monotonic() + self.total_timeout_s
        return [await self._one(t, deadline) for t in tasks]

    async def run_stages(self, stages: tuple[tuple[str, ...], ...], slots: dict[str, tuple[Any, float]],
                         turn: TurnContext, deadline: float) -> tuple[TurnContext, dict[str, ModuleOutcome[Any]]]:
        """Run ``stages`` of modules (``slots``: name → (module, timeout)); each stage sees the outputs of
        the stages before it. Returns the turn with every module's result added, and the outcomes."""
        outcomes: dict[str, ModuleOutcome[Any]] = {}
        for stage in stages:
            tasks = []
            for name in stage:
                module, timeout = slots[name]
                budget_end = min(deadline, time.monotonic() + timeout)
                seen = _with_deadline(turn, budget_end)
                tasks.append(SLMTask(name, functools.partial(module.run, seen), timeout,
                                     functools.partial(_fallback, module, seen), module.model_version))
            for outcome in await self.run_parallel(tasks, deadline):
                outcomes[outcome.module] = outcome
            turn = turn.with_outputs({key: outcomes[name].result for name in stage
                                      for key in slots[name][0].provides if outcomes[name].result is not None})
        return turn, outcomes

    def close(self) -> None:
        """Nothing to release: worker threads end with their calls."""


def _fallback(module: Any, turn: TurnContext, reason: str) -> Any:
    return module.fallback(turn, reason)


def _with_deadline(turn: TurnContext, deadline: float) -> TurnContext:
    return dataclasses.replace(turn, deadline=deadline)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
