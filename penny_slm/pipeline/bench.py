"""``penny-slm bench``: per-module latency percentiles, throughput, load time and peak RSS → JSON.

Each setting runs in a fresh subprocess so peak RSS is that classifier process alone, not the CLI's.
Queries are the packaged test split's texts, cycled; warm-up calls are not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

from penny_slm.config import SLMConfig, load_config

WARMUP = 30
BATCH = 32
BATCH_ROUNDS = 15


def _texts() -> list[str]:
    from penny_slm.training.datasets import data_dir  # data only; no torch import

    lines = (data_dir() / "research_test.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line]


def _worker(threads: int, n: int, config_path: str | None) -> dict[str, Any]:
    import numpy as np

    from penny_slm.pipeline.model_registry import ModelRegistry
    from penny_slm.pipeline.modules.research import ResearchClassifier

    cfg = load_config(config_path)
    clf = ResearchClassifier.from_config(cfg)
    clf.intra_op_threads = threads
    start = time.perf_counter()
    clf.load(ModelRegistry(cfg.models_dir()))
    load_s = time.perf_counter() - start
    texts = _texts()
    for text in texts[:WARMUP]:
        clf.predict(text)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        clf.predict(texts[i % len(texts)])
        samples.append(time.perf_counter() - t0)
    ms = np.asarray(samples) * 1000
    batches = [texts[(i * BATCH) % len(texts):][:BATCH] for i in range(BATCH_ROUNDS)]
    batches = [b if len(b) == BATCH else (b + texts)[:BATCH] for b in batches]
    t0 = time.perf_counter()
    for batch in batches:
        clf.predict_batch(list(batch))
    batch_s = time.perf_counter() - t0
    return {
        "threads": threads,
        "n": n,
        "latency_ms": {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)} | {"mean": round(float(ms.mean()), 3)},
        "batch32_queries_per_s": round(BATCH * BATCH_ROUNDS / batch_s, 1),
        "load_s": round(load_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_imported": "torch" in sys.modules,
        "model_version": clf.model_version,
        "providers": clf.encoder.session_providers if clf.encoder else [],
    }


def run_bench(cfg: SLMConfig, *, n: int = 300, config_path: str | None = None) -> dict[str, Any]:
    from penny_slm.pipeline.model_registry import ModelRegistry

    ModelRegistry(cfg.models_dir()).get_active_version("research")  # ModelNotFoundError with the build hint
    runs = []
    for threads in (1, 2):
        cmd = [sys.executable, "-m", "penny_slm.pipeline.bench", "--worker", "--threads", str(threads), "--n", str(n)]
        if config_path:
            cmd += ["--config", config_path]
        env = os.environ | {"PENNY_SLM_MODELS": str(cfg.models_dir())}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"bench worker failed (threads={threads}): {proc.stderr.strip().splitlines()[-1:]}")
        runs.append(json.loads(proc.stdout))
    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "warmup": WARMUP,
        "modules": {"research": {"single_query": runs, "input": "packaged test split texts, cycled"}},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--config")
    ns = parser.parse_args()
    print(json.dumps(_worker(ns.threads, ns.n, ns.config)))
