"""Fit the tone screen (``pipeline/modules/tone_screen.py``) on the tone head's data and register it.

The same rows as the tone head (``splits.tone_data``): packaged and real training rows, the dev part to
choose the regularisation and the clear threshold, both test parts to report.

Logistic regression (scikit-learn) over the screen's hashed features; the regularisation is picked
on dev by log-loss. ``clear_below`` is set from dev too: half the lowest probability any dev
cheerleading example gets, capped at ``MAX_CLEAR``, so no known cheerleading is waved through.
Seconds on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from penny_slm.compat import require
from penny_slm.pipeline.model_registry import Manifest, ModelRegistry
from penny_slm.pipeline.modules.tone_screen import N_FEATURES, SCREEN_ARTIFACT, screen_features, screen_probability
from penny_slm.training.datasets import Example, data_dir
from penny_slm.training.splits import tone_data

SCREEN_FORMAT = 2  # 2: fitted on the tone head's assembled data (real responses too)
REGULARISATION = (1.0, 4.0, 16.0)  # sklearn's C
MAX_CLEAR = 0.2


@dataclass(frozen=True, slots=True)
class FittedScreen:
    """A fitted tone screen: its weights and bias, the regularisation chosen, the clearing threshold and its dev log loss.
    """
    weights: np.ndarray
    bias: float
    c: float
    clear_below: float
    dev_log_loss: float


def _matrix(texts: list[str]) -> Any:
    sparse = require("scipy.sparse")
    rows, cols, values = [], [], []
    for row, text in enumerate(texts):
        features = screen_features(text)
        rows += [row] * len(features)
        cols += features.tolist()
        values += [1.0 / np.sqrt(max(1, len(features)))] * len(features)
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(texts), N_FEATURES))


def _labels(rows: list[Example]) -> np.ndarray:
    return np.array([r.labels["tone"] for r in rows])


def fit_screen(train: list[Example], dev: list[Example]) -> FittedScreen:
    """Fit a logistic regression per regularisation strength on ``train``, keep the best on ``dev`` by log loss, and set
    the clearing threshold at half the lowest dev cheerleading score (capped)."""
    linear = require("sklearn.linear_model")
    metrics = require("sklearn.metrics")
    x_train, y_train = _matrix([r.text for r in train]), _labels(train)
    x_dev, y_dev = _matrix([r.text for r in dev]), _labels(dev)
    fits = []
    for c in REGULARISATION:
        model = linear.LogisticRegression(C=c, max_iter=5000).fit(x_train, y_train)
        p_dev = model.predict_proba(x_dev)[:, 1]
        fits.append((float(metrics.log_loss(y_dev, p_dev)), c, model, p_dev))
    loss, c, model, p_dev = min(fits, key=lambda f: f[0])
    clear_below = min(MAX_CLEAR, 0.5 * float(p_dev[y_dev == 1].min()))
    return FittedScreen(model.coef_[0].astype(np.float32), float(model.intercept_[0]), c, round(clear_below, 4), round(loss, 4))


def screen_metrics(p: np.ndarray, y: np.ndarray, clear_below: float) -> dict[str, Any]:
    """Accuracy, the share of clean rows the screen answers alone, and the cheerleading rows it would wave through (must be
    0)."""
    cleared = p < clear_below
    return {
        "n": len(y),
        "accuracy": round(float(np.mean((p >= 0.5) == y)), 4),
        "clean_cleared_share": round(float(np.mean(cleared[y == 0])), 4),  # answered without the head
        "cheerleading_cleared": int(np.sum(cleared[y == 1])),  # waved through: must stay 0
        "cheerleading_kept": round(float(1 - np.mean(cleared[y == 1])), 4),
    }


def build_tone_screen(registry: ModelRegistry, *, force: bool = False, log: Callable[[str], None] = print) -> tuple[Manifest, bool]:
    """Fit on the tone head's training rows, choose on its dev part, report on its test parts, register ``tone-screen``."""
    start = time.perf_counter()
    data = tone_data(data_dir())
    key = hashlib.sha256(json.dumps({"format": SCREEN_FORMAT, "data": data.data_hash, "c": REGULARISATION,
                                     "max_clear": MAX_CLEAR}, sort_keys=True).encode()).hexdigest()
    if not force and (existing := registry.existing_build(SCREEN_ARTIFACT, key)):
        log(existing[1])
        return existing[0], True
    fitted = fit_screen(data.train, data.dev)
    metrics: dict[str, Any] = {}
    for prefix, rows in (("", data.test), ("real_", data.real_test)):
        if rows:
            p = np.array([screen_probability(fitted.weights, fitted.bias, r.text) for r in rows])
            metrics |= {prefix + k: v for k, v in screen_metrics(p, _labels(rows), fitted.clear_below).items()}
    log(f"{SCREEN_ARTIFACT}: C={fitted.c}, clear below {fitted.clear_below}, test {metrics}")
    registry.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.root))
    try:
        np.save(staging / "weights.npy", fitted.weights)
        manifest = registry.register_version(staging, {
            "name": SCREEN_ARTIFACT, "build_key": key, "data_hash": data.data_hash,
            "metrics": {"test": metrics, "dev": {"log_loss": fitted.dev_log_loss}},
            "gate_metrics": ("accuracy", "cheerleading_kept", *(("real_cheerleading_kept",) if data.real_test else ())),
            "details": {"bias": fitted.bias, "clear_below": fitted.clear_below, "c": fitted.c,
                        "n_features": N_FEATURES, "train_rows": len(data.train), "data_sources": data.sources,
                        "build_seconds": round(time.perf_counter() - start, 1)},
        }, force=force)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    log(f"{SCREEN_ARTIFACT}: registered {manifest.version}")
    return manifest, False
