"""Session fixtures: one real, small research artifact built once (frozen encoder + LR heads, ~1 min)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from penny_slm.pipeline.model_registry import ModelRegistry


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow (full training)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """A registry holding real research, tone and tone-screen artifacts, trained, exported, quantized and verified (~2.5 min).

    research: frozen encoder + logistic-regression heads on all rows (~40 s, passes the 99.5% int8 gate).
    tone: a 2-epoch fine-tune (~90 s); its frozen variant sits too close to the boundary for the int8 gate.
    """
    from penny_slm.export.build import BuildSettings, build_artifact
    from penny_slm.training.tone_screen import build_tone_screen

    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    build_artifact(registry, "research", BuildSettings(approaches=("frozen",)), log=lambda _msg: None)
    build_artifact(registry, "tone", BuildSettings(approaches=("finetune",), epochs=2), log=lambda _msg: None)
    build_tone_screen(registry, log=lambda _msg: None)
    return registry


@pytest.fixture()
def models_env(built_registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PENNY_SLM_MODELS", str(built_registry.root))
    yield built_registry.root


@pytest.fixture(scope="session")
def slm_registry(built_registry: ModelRegistry) -> ModelRegistry:
    """Adds ``smollm2-135m`` (the packaged GGUF exported to ONNX int8, no training, ~2 min) to the registry."""
    from penny_slm.export.build_generators import build_base_slm

    build_base_slm(built_registry, log=lambda _msg: None)
    return built_registry
