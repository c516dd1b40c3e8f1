"""SLMOrchestrator: runs module calls on asyncio with per-module and total deadlines, and documented fallbacks.

Module calls are synchronous and CPU-bound (onnxruntime releases the GIL), so each runs in a thread
pool of ``max_parallel_tasks`` workers. On timeout or error the task's ``fallback`` supplies the
result and the ``ModuleOutcome`` says which happened:

| module   | fallback                                   | why it is safe                                  |
|----------|--------------------------------------------|-------------------------------------------------|
| research | the keyword matcher (``rules.keywords``)   | the old behaviour; errs towards searching        |
| context  | an empty ``ContextUpdate`` (nothing queued) | learning nothing is better than learning wrong  |
| llm      | a short apology as the response            | the user gets an answer, not a hang              |
| guard    | rules only (absolute prohibitions fixed)   | the hard rules never depend on a model           |

A thread cannot be killed: a timed-out ONNX call finishes in the background and its result is dropped.
Generators take ``deadline_s`` themselves so their work really stops. With ``fallback_on_timeout``
false, a timed-out task reports ``timeout`` with no result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from penny_slm.config import SLMConfig
from penny_slm.results import ModuleOutcome


@dataclass(frozen=True, slots=True)
class SLMTask:
    module: str
    run: Callable[[], Any]
    timeout_s: float
    fallback: Callable[[str], Any] | None = None
    model_version: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """Which modules run for a message, in which phase. ``parallel`` share no inputs; ``after`` need the LLM response."""

    parallel: tuple[str, ...]
    after: tuple[str, ...]
    disabled: tuple[str, ...] = field(default=())


class SLMOrchestrator:
    def __init__(self, cfg: SLMConfig) -> None:
        self.cfg = cfg
        self.max_parallel = cfg.orchestration.max_parallel_tasks
        self.total_timeout_s = cfg.orchestration.total_timeout
        self.fallback_on_timeout = cfg.orchestration.fallback_on_timeout
        self._pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="penny-slm")

    def get_execution_plan(self, query: str) -> ExecutionPlan:
        """Enabled pre-LLM modules run in parallel; the guard runs on the response. Empty input skips the models."""
        models = self.cfg.models
        pre = {"research": models.research_classifier.enabled, "context": models.context_tracker.enabled}
        post = {"guard": models.personality_guard.enabled}
        disabled = tuple(name for name, on in {**pre, **post}.items() if not on)
        if not query.strip():
            return ExecutionPlan((), tuple(n for n, on in post.items() if on), disabled)
        return ExecutionPlan(tuple(n for n, on in pre.items() if on), tuple(n for n, on in post.items() if on), disabled)

    async def _one(self, task: SLMTask, deadline: float) -> ModuleOutcome[Any]:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        budget = max(0.0, min(task.timeout_s, deadline - time.monotonic()))
        try:
            result = await asyncio.wait_for(loop.run_in_executor(self._pool, task.run), timeout=budget)
            return ModuleOutcome(task.module, "ok", result, _ms(start), task.model_version)
        except TimeoutError:
            reason = f"timed out after {budget:.2f}s"
            status = "timeout"
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            status = "error"
        if task.fallback is None or (status == "timeout" and not self.fallback_on_timeout):
            return ModuleOutcome(task.module, status, None, _ms(start), task.model_version, reason)  # type: ignore[arg-type]
        return ModuleOutcome(task.module, "fallback", task.fallback(reason), _ms(start), task.model_version, f"{status}: {reason}")

    async def run_parallel(self, tasks: list[SLMTask], deadline: float | None = None) -> list[ModuleOutcome[Any]]:
        """Independent tasks at once (at most ``max_parallel_tasks``), each under its own and the total deadline."""
        deadline = deadline or time.monotonic() + self.total_timeout_s
        return list(await asyncio.gather(*(self._one(t, deadline) for t in tasks)))

    async def run_sequential(self, tasks: list[SLMTask], deadline: float | None = None) -> list[ModuleOutcome[Any]]:
        """Dependent tasks one after another; later tasks get what is left of the total deadline."""
        deadline = deadline or time.monotonic() + self.total_timeout_s
        return [await self._one(t, deadline) for t in tasks]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
