"""The build's artifact: manifest provenance, int8 graph, parity gate, idempotence."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from penny_slm.errors import ParityError
from penny_slm.export.build import BuildSettings, build_artifact
from penny_slm.export.verify import check_parity
from penny_slm.pipeline.model_registry import ModelRegistry, sha256_file
from penny_slm.training.datasets import ResearchRow, data_dir, file_hash


def test_manifest_records_provenance(built_registry: ModelRegistry) -> None:
    manifest = built_registry.get_active_version("research")
    folder = built_registry.root / "research" / manifest.version
    assert set(manifest.files) == {"model.onnx", "tokenizer.json"}
    assert all(sha256_file(folder / name) == digest for name, digest in manifest.files.items())
    files = [data_dir() / f"research_{s}.jsonl" for s in ("train", "dev", "test")]
    assert manifest.data_hash == file_hash(*files)
    assert manifest.details["temperature"] >= 1.0
    assert manifest.details["quantization"]["per_channel"] is True
    parity = manifest.details["parity"]
    assert parity["agreement"]["research"] >= 0.995 and parity["overall"]["research"] >= 0.98  # clear decisions / all rows
    assert parity["agreement"]["category"] >= 0.98
    test = manifest.metrics["test"]
    assert {"accuracy", "precision", "recall", "f1", "false_positive_rate", "category_accuracy", "latency_ms", "baseline"} <= set(test)


def test_model_is_int8_and_small(built_registry: ModelRegistry) -> None:
    artifact = built_registry.load("research")
    graph = onnx.load(str(artifact.file("model.onnx"))).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("MatMulInteger") == 36  # 6 layers x (Q, K, V, O, FF1, FF2) weight matmuls
    assert ops.count("MatMul") == 14  # fp32 by the preset: 6 layers x 2 attention-score matmuls + 2 heads
    assert artifact.file("model.onnx").stat().st_size < 30e6
    assert {o.name for o in graph.output} == {"research_logits", "category_logits"}


def test_rebuild_with_same_data_is_skipped(built_registry: ModelRegistry) -> None:
    before = built_registry.active_version("research")
    outcome = build_artifact(built_registry, "research", BuildSettings(approaches=("frozen",)), log=lambda _m: None)
    assert outcome.skipped and built_registry.active_version("research") == before


def test_parity_gate_rejects_a_graph_that_disagrees(built_registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory) -> None:
    from penny_slm.export.build import SPECS
    from penny_slm.training.datasets import research_examples
    from penny_slm.training.heads import TrainSettings, train

    rows = [ResearchRow("btc price now", True, "prices_markets"), ResearchRow("write a poem", False, "creative")] * 8
    examples = research_examples(rows)
    trained = train(SPECS["research"].task, examples, examples, TrainSettings(approach="frozen"))
    texts = ["what's the weather today", "explain gravity", "write a poem", "btc price now", "score of the game"]
    onnx_path = built_registry.load("research").file("model.onnx")  # a different model's graph
    with pytest.raises(ParityError, match="agrees with torch") as info:
        check_parity(onnx_path, trained, texts)
    assert set(info.value.max_diff) == {"research", "category"}
    assert np.isfinite(list(info.value.max_diff.values())).all()
