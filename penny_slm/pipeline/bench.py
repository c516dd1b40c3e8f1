"""``penny-slm bench``: per-module latency percentiles, throughput, load time and peak RSS → JSON.

Each (module, threads) setting runs in a fresh subprocess so peak RSS is that module's process alone.
Research queries are the packaged test split's texts, cycled. The guard is timed on 150-word responses
(``GUARD_RESPONSES``), one clean and one full of violations, without the generative rewrite. Each
built generative model (``GENERATORS``) is timed on rewrite prompts: load, time to first token,
tokens/s, total per call; ``rewrite`` times the guard's rewriter itself, with and without prompt-lookup
drafts. Warm-up calls are not timed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from penny_slm.config import SLMConfig, load_config

if TYPE_CHECKING:
    from penny_slm.pipeline.adapters.base import Generation

WARMUP = 30
BATCH = 32
BATCH_ROUNDS = 15

_CLEAN = ("The loop skips the last item because the range stops one short, so use the length of the list directly. "
          "Your SQL is fine; the slow part is the missing index on the customer column, which turns every lookup "
          "into a full scan. Add the index, run the migration, and the query should drop from seconds to a few "
          "milliseconds. If it does not, check the plan with EXPLAIN and look for a sequential scan. The API "
          "returns JSON, and a 429 means you are being rate limited, so add backoff to the retry. Do NOT commit "
          "the key; rotate it and keep it in the environment. Tests first, then the deploy. That is all the drama "
          "there is, and it is enough for one afternoon. Write a test for the index so nobody removes it later "
          "without noticing the regression in the nightly run. After that, step away from the screen for a while.")
_DIRTY = ("*adjusts glasses* OMG CJ, this is AMAZING!!! Grab a coffee first. " + _CLEAN + " You're CRUSHING it, CJ! "
          "Seriously CJ, so proud!")
GUARD_RESPONSES = (_CLEAN, _DIRTY)
YARDSTICK = "what is the current exchange rate between the euro and the us dollar today in berlin"
"""18 MiniLM tokens (int8, 1 thread: p50 1.49 ms on 2026-11-24, on the project's machine). This
shared machine's speed drifts 2-4x between days, so the bench times this one pass beside every encoder
figure: divide by it to compare runs from different days."""


def _texts(split: str = "research_test.jsonl") -> list[str]:
    from penny_slm.training.datasets import data_dir  # data only; no torch import

    lines = (data_dir() / split).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line]


def _summary_ms(samples_s: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.asarray(samples_s) * 1000
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)} | {"mean": round(float(ms.mean()), 3)}


def _percentiles(fn: Callable[[str], object], texts: list[str] | tuple[str, ...], n: int) -> dict[str, float]:
    for i in range(WARMUP):
        fn(texts[i % len(texts)])
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(texts[i % len(texts)])
        samples.append(time.perf_counter() - t0)
    return _summary_ms(samples)


def _research(cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    from penny_slm.pipeline.factory import module_from_config
    from penny_slm.pipeline.model_registry import ModelRegistry

    clf = module_from_config(cfg, "research")
    clf.intra_op_threads = threads
    start = time.perf_counter()
    clf.load(ModelRegistry(cfg.models_dir()))
    load_s = time.perf_counter() - start
    texts = _texts()
    latency = _percentiles(clf.predict, texts, n)
    batches = [(texts * 2)[i * BATCH % len(texts):][:BATCH] for i in range(BATCH_ROUNDS)]
    t0 = time.perf_counter()
    for batch in batches:
        clf.predict_batch(list(batch))
    return {"latency_ms": latency, "batch32_queries_per_s": round(BATCH * BATCH_ROUNDS / (time.perf_counter() - t0), 1),
            "load_s": round(load_s, 3), "model_version": clf.model_version,
            "providers": clf.require_loaded().session_providers}


def _context(cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    """The context step per message: rules, and the mood head on ``threads`` threads when it is built."""
    from penny_slm.pipeline.factory import module_from_config
    from penny_slm.pipeline.model_registry import ModelRegistry
    from penny_slm.pipeline.modules.base import TurnContext

    tracker = module_from_config(cfg, "context")
    tracker.mood_head.intra_op_threads = threads
    tracker.load(ModelRegistry(cfg.models_dir()))
    return {"latency_ms": _percentiles(lambda text: tracker.run(TurnContext.of(text)), _texts(), n),
            "model_version": tracker.model_version}


def _guard(cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    from penny_slm.pipeline.factory import module_from_config
    from penny_slm.pipeline.model_registry import ModelRegistry
    from penny_slm.pipeline.modules.guard import tone_prose
    from penny_slm.rules.prohibitions import detect, fix

    guard = module_from_config(cfg, "guard")
    guard.rewriter = None  # rewrites are benched per generator below
    guard.tone.intra_op_threads = threads
    start = time.perf_counter()
    guard.load(ModelRegistry(cfg.models_dir()))
    load_s = time.perf_counter() - start
    persona = guard.persona

    def rules(text: str) -> object:
        return fix(text, persona) if detect(text, persona) else text

    def rules_fixed(text: str) -> str:
        return fix(text, persona)[0]

    tone, screen = guard.tone, guard.tone.screen
    clean, violating = (rules_fixed(t) for t in GUARD_RESPONSES)  # the tone stage scores the rule-fixed text
    tone.screen = None
    head_only = {"clean": _percentiles(tone.p_cheerleader, [clean], n),
                 "violating": _percentiles(tone.p_cheerleader, [violating], n),
                 "window_tokens": [tone.encode([tone_prose(t)])[0].n_tokens for t in (clean, violating)]}
    tone.screen = screen
    yardstick = tone.encode([YARDSTICK])[0].n_tokens
    # the guard test set after the rule fixes: what the tone stage really sees, a third of it clean
    mix = [rules_fixed(text) for text in _texts("guard_test.jsonl")]
    return {
        "words": [len(t.split()) for t in GUARD_RESPONSES],
        "rules_detect_and_fix_ms": _percentiles(rules, GUARD_RESPONSES, n),
        "tone_head_ms": head_only,
        "yardstick_encoder_pass_ms": _percentiles(lambda t: tone.encode([t]), [YARDSTICK], n) | {"tokens": yardstick},
        "tone_ms": {"clean": _percentiles(tone.p_cheerleader, [clean], n),
                    "violating": _percentiles(tone.p_cheerleader, [violating], n),
                    "guard_test_set": _percentiles(tone.p_cheerleader, mix, n),
                    "guard_test_set_screened": round(sum(map(tone.screened, mix)) / len(mix), 4),
                    "screen_version": screen and screen.model_version},
        "guard_total_ms": _percentiles(guard.predict, GUARD_RESPONSES, n),
        "load_s": round(load_s, 3), "model_version": guard.model_version,
    }


REWRITE_INPUTS = (
    "Oh my gosh, you're amazing. The loop was off by one, so the last item was skipped. Keep shining, superstar.",
    "Wow, you absolute superstar. Your tests pass now. You should be so proud of yourself.",
    "The migration ran and the table has the new column. You're going to change the world.",
    "Such a fantastic question, you always ask the best ones. The flight lands at 6:40 local time.",
)


EXTRACTION_MESSAGES = (
    "ngl that exam was lowkey brutal, im cooked",
    "Could you please summarise the attached quarterly report before Monday's meeting?",
    "finally got the gpu working, cuda 12 + torch nightly, kernels compile in 40s now",
    "idk, feeling kinda flat today tbh",
)
EXTRACTION_KEYS: dict[str, type] = {"slang": list, "formality": float, "mood": str}
EXTRACTION_MAX_TOKENS = 80
"""The token budget of each constrained extraction call, told to the mask too: a mask that believes it has more room
than the call lets a looping list run past the cut, unclosed (3 of 4 parsed on one machine's int8 graph)."""


def _rewrite_prompts(n: int) -> list[str]:
    """``REWRITE_INPUTS`` cycled to between 4 and 12 calls (a generation is slow; 12 give a stable median)."""
    return list((REWRITE_INPUTS * n)[: max(4, min(n, 12))])


def _generator(model: str, cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    """One generative model (a ``slm_models`` entry): load time, time to first token, tokens/s, total per call;
    for a local ONNX model also JSON extraction under constrained decoding (how often it parses, time per call)."""
    from penny_slm.pipeline.adapters.base import Message
    from penny_slm.pipeline.adapters.onnx_causal import OnnxCausalLM
    from penny_slm.pipeline.adapters.structured import JsonMask, parse_json_object
    from penny_slm.pipeline.factory import SLMFactory
    from penny_slm.pipeline.modules.rewriter import SYSTEM_PROMPT

    factory = SLMFactory(cfg)
    factory.entries[model] = factory.entries[model] | {"n_threads": threads}
    start = time.perf_counter()
    generator = factory.get_slm(model)
    load_s = time.perf_counter() - start
    runs = [generator.chat([Message("system", SYSTEM_PROMPT), Message("user", text)], max_tokens=64, deadline_s=30)
            for text in _rewrite_prompts(n)]
    import numpy as np

    result: dict[str, Any] = {
        "model": model, "load_s": round(load_s, 3), "calls": len(runs),
        "first_token_ms": {"p50": round(float(np.median([r.first_token_s for r in runs])) * 1000, 1)},
        **_decode_timings(runs),
        "tokens_median": int(np.median([r.n_tokens for r in runs])),
    }
    if isinstance(generator, OnnxCausalLM):
        mask = JsonMask(generator.tokenizer, EXTRACTION_KEYS, generator.stop_ids, EXTRACTION_MAX_TOKENS)
        ask = "Reply with one JSON object: the user's slang words, formality from 0 to 1, and mood."
        json_runs = [generator.chat([Message("system", ask), Message("user", text)], max_tokens=EXTRACTION_MAX_TOKENS,
                                    deadline_s=30, logits_hook=mask) for text in EXTRACTION_MESSAGES]
        result["json_constrained"] = {
            "calls": len(json_runs), "parsed": sum(parse_json_object(r.text, EXTRACTION_KEYS)[0] is not None for r in json_runs),
            **_decode_timings(json_runs),
        }
    return result


def _decode_timings(runs: list[Generation]) -> dict[str, Any]:
    """Median tokens/s (over calls that decoded more than one token) and total time per call."""
    import numpy as np

    return {"tokens_per_s_median": round(float(np.median([r.tokens_per_s for r in runs if r.n_tokens > 1])), 1),
            "total_ms": {"p50": round(float(np.median([r.seconds for r in runs])) * 1000, 1)}}


def _rewrite(cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    """The guard's rewriter as the guard runs it (bans, copy bonus, tone flags) on the rule-fixed rewrite
    prompts, with prompt-lookup drafts and without them, interleaved in this one process: the ratio of
    total time per rewrite is the speed-up, and ``same_text`` says how often both gave the same text."""
    from penny_slm.pipeline.factory import module_from_config
    from penny_slm.pipeline.model_registry import ModelRegistry
    from penny_slm.rules.prohibitions import fix

    guard = module_from_config(cfg, "guard")
    assert guard.rewriter is not None
    guard.rewriter.n_threads = threads
    guard.load(ModelRegistry(cfg.models_dir()))
    rewriter, drafted = guard.rewriter, guard.rewriter.draft_tokens
    texts = [fix(t, guard.persona)[0] for t in _rewrite_prompts(n)]
    runs: dict[int, list[Any]] = {drafted: [], 0: []}
    rewriter.rewrite(texts[0], deadline_s=30)
    for text in texts:
        for draft_tokens in runs:
            runs[draft_tokens].append(rewriter.rewrite(text, deadline_s=30, draft_tokens=draft_tokens))

    def timings(draft_tokens: int) -> dict[str, Any]:
        gens = [r.generation for r in runs[draft_tokens]]
        return {"draft_tokens": draft_tokens, **_decode_timings(gens),
                "tokens_per_pass": round(sum(g.n_tokens for g in gens) / sum(g.forward_passes for g in gens), 2)}

    with_drafts, without = timings(drafted), timings(0)
    return {"calls": len(texts), "with_drafts": with_drafts, "without_drafts": without,
            "speedup_total_p50": round(without["total_ms"]["p50"] / with_drafts["total_ms"]["p50"], 2),
            "same_text": sum(a.text == b.text for a, b in zip(runs[drafted], runs[0]))}


LAYER_RESPONSES = (
    "A decorator wraps a function: `@cache` above `def f():` stores results so repeat calls are free.",
    "*grins* Great question!! The derivative of x³ is 3x². Grab a coffee and try x⁴ next, CJ. Trust me, CJ.",
    "Rome fell for a lot of reasons, mostly money and politics. Historians still argue about the weights.",
    "That sounds like a rough review. Take the two comments that matter, fix those, and let the rest go.",
)


PACED_PAUSE_S = 0.05
"""Idle time between turns in the paced pass: enough for the writer thread to apply the last turn's updates (one turn's
batch takes a few milliseconds). In Penny a main LLM call of a second or more and the user's reading separate turns."""


def _layer(cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    """Per-turn latency the SLM layer adds (main LLM injected and instant, so excluded), all enabled modules; and the
    pre-LLM phase alone (profile read, then research and context side by side), the part the user waits for before
    the main LLM starts. Twice: turns back to back, where the writer thread applies the previous turn's updates while
    the next one runs (the worst case), and ``paced``, ``PACED_PAUSE_S`` apart, as turns arrive in use."""
    import asyncio
    import tempfile
    from pathlib import Path

    from penny_slm.pipeline.layer import SLMLayer

    layer = SLMLayer(cfg, sqlite_path=Path(tempfile.mkdtemp(prefix="penny-bench-")) / "p.db")
    start = time.perf_counter()
    layer.load()
    load_s = time.perf_counter() - start
    if layer.guard is not None and layer.guard.rewriter is not None:
        layer.guard.rewriter = None  # rewrites are benched per generator; see docs/MEASUREMENTS.md
    texts = _texts()
    replies = iter(LAYER_RESPONSES * (2 * (n + WARMUP)))

    async def turns(pause_s: float) -> dict[str, dict[str, float]]:
        added: list[float] = []
        pre_llm: list[float] = []
        for i in range(n + WARMUP):
            turn = await layer.process(f"user{i % 3}", texts[i % len(texts)], llm=lambda _s, _m: next(replies))
            if i >= WARMUP:
                added.append((turn.total_ms - turn.timings_ms["main_llm"]) / 1000)
                pre_llm.append(turn.timings_ms["pre_llm"] / 1000)
            await asyncio.sleep(pause_s)
        return {"slm_added_ms": _summary_ms(added), "pre_llm_ms": _summary_ms(pre_llm)}

    async def both() -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        return await turns(0.0), await turns(PACED_PAUSE_S)

    back_to_back, paced = asyncio.run(both())
    layer.close()
    return {**back_to_back, "paced": {"pause_s": PACED_PAUSE_S, **paced}, "load_s": round(load_s, 3),
            "modules": sorted(layer.modules)}


def _drift(cfg: SLMConfig, threads: int, n: int) -> dict[str, Any]:
    """One drift check per turn (``every_n_turns`` 1) over the packaged test streams, replayed in order: the tone
    head on the new response, the rule detectors, the repetition window and the CUSUM updates."""
    from penny_slm.pipeline.factory import module_from_config
    from penny_slm.pipeline.model_registry import ModelRegistry
    from penny_slm.training.datasets import data_dir  # data only; no torch import

    monitor = module_from_config(cfg, "drift")
    if monitor.tone is not None:
        monitor.tone.intra_op_threads = threads
    start = time.perf_counter()
    monitor.load(ModelRegistry(cfg.models_dir()))
    load_s = time.perf_counter() - start
    streams = [json.loads(line) for line in (data_dir() / "drift_test.jsonl").read_text(encoding="utf-8").splitlines() if line]
    turns = [(i, t["user"], t["response"]) for s in streams for i, t in enumerate(s["turns"])]
    state = monitor.new_state()
    samples = []
    for k in range(WARMUP + n):
        index, user, response = turns[k % len(turns)]
        if index == 0:
            state = monitor.new_state()
        t0 = time.perf_counter()
        monitor.observe(state, user, response)
        if k >= WARMUP:
            samples.append(time.perf_counter() - t0)
    return {"check_ms": _summary_ms(samples), "turns_per_check": 1, "tone_head": monitor.tone_loaded,
            "load_s": round(load_s, 3), "model_version": monitor.model_version}


GENERATORS = ("smollm2-135m", "penny-rewriter")
WORKERS: dict[str, Callable[[SLMConfig, int, int], dict[str, Any]]] = {
    "research": _research, "context": _context, "guard": _guard, "drift": _drift, "layer": _layer,
    **{name: functools.partial(_generator, name) for name in GENERATORS},
    "rewrite": _rewrite,
}
NEEDS = {**{name: name for name in GENERATORS}, "rewrite": "penny-rewriter"}
"""Workers that run only when this ``slm_models`` entry is built."""


def _worker(module: str, threads: int, n: int, config_path: str | None) -> dict[str, Any]:
    result = WORKERS[module](load_config(config_path), threads, n)
    return {"threads": threads, "n": n, **result,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "torch_imported": "torch" in sys.modules}


def run_bench(cfg: SLMConfig, *, n: int = 300, config_path: str | None = None) -> dict[str, Any]:
    """Every bench row as one JSON-ready dict: each worker at 1 and 2 threads, each in its own process; workers whose
    model is not ready are left out, and the research and tone models must be built."""
    from penny_slm.pipeline.model_registry import ModelRegistry

    registry = ModelRegistry(cfg.models_dir())
    for name in ("research", "tone"):
        registry.get_active_version(name)  # ModelNotFoundError with the build hint, before any subprocess
    from penny_slm.pipeline.factory import SLMFactory

    ready = {i.name for i in SLMFactory(cfg, registry).list_available() if i.ready}
    modules: dict[str, list[dict[str, Any]]] = {}
    for module in [m for m in WORKERS if m not in NEEDS or NEEDS[m] in ready]:
        for threads in (1, 2):
            cmd = [sys.executable, "-m", "penny_slm.pipeline.bench", "--worker", module, "--threads", str(threads), "--n", str(n)]
            if config_path:
                cmd += ["--config", config_path]
            env = os.environ | {"PENNY_SLM_MODELS": str(cfg.models_dir())}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"bench worker {module} (threads={threads}) failed: {proc.stderr.strip()[-500:]}")
            modules.setdefault(module, []).append(json.loads(proc.stdout))
    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "warmup": WARMUP,
        "modules": modules,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=sorted(WORKERS), required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--config")
    ns = parser.parse_args()
    print(json.dumps(_worker(ns.worker, ns.threads, ns.n, ns.config)))
