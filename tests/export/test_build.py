"""The build's artifact: manifest provenance, int8 graph, parity gate, idempotence."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from penny_slm.errors import ParityError
from penny_slm.export.build import BuildSettings, build_artifact
from penny_slm.export.verify import check_parity, onnx_logits, torch_logits
from penny_slm.pipeline.model_registry import ModelRegistry, sha256_file
from penny_slm.training.datasets import ResearchRow, data_dir
from penny_slm.training.splits import research_data


def test_manifest_records_provenance(built_registry: ModelRegistry) -> None:
    manifest = built_registry.get_active_version("research")
    folder = built_registry.root / "research" / manifest.version
    assert set(manifest.files) == {"model.onnx", "tokenizer.json"}
    assert all(sha256_file(folder / name) == digest for name, digest in manifest.files.items())
    assert manifest.data_hash == research_data(data_dir()).data_hash  # the packaged files plus the imported rows
    assert manifest.details["temperature"] >= 1.0
    assert manifest.details["quantization"]["dtype"] == "int8" and manifest.details["quantization"]["per_channel"] is True
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
    outcome = build_artifact(built_registry, "research", BuildSettings(approaches=("finetune",), epochs=2), log=lambda _m: None)
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


def test_a_graph_refused_by_the_int8_gate_ships_as_fp32(built_registry: ModelRegistry, tmp_path, monkeypatch) -> None:
    """When int8 flips clear decisions the build keeps the fp32 graph and says so, instead of failing or shipping it."""
    import penny_slm.export.build as build
    from penny_slm.export.onnx import export_onnx
    from penny_slm.training.datasets import research_examples
    from penny_slm.training.heads import TrainSettings, train

    rows = [ResearchRow("btc price now", True, "prices_markets"), ResearchRow("write a poem", False, "creative")] * 8
    trained = train(build.SPECS["research"].task, research_examples(rows), research_examples(rows), TrainSettings(approach="frozen"))
    fp32 = tmp_path / "fp32" / "model.onnx"
    export_onnx(trained.model, fp32)
    other_model = built_registry.load("research").file("model.onnx")  # stands in for an int8 graph that disagrees
    monkeypatch.setattr(build, "quantize_int8", lambda _src, out: (out.write_bytes(other_model.read_bytes()), {"name": "x"})[1])
    texts = ["what's the weather today", "explain gravity", "write a poem", "btc price now", "score of the game"]
    said: list[str] = []
    preset, parity = build._quantize_or_keep_fp32("research", fp32, tmp_path / "model.onnx", trained, texts, said.append)
    assert preset["dtype"] == "fp32" and "agrees with torch" in preset["int8_refused"]
    assert parity.overall == {"research": 1.0, "category": 1.0}
    exported, reference = onnx_logits(fp32, trained, texts), torch_logits(trained, texts)  # length-sorted batches, rows in order
    assert all(np.allclose(exported[h], reference[h], atol=1e-4) for h in reference)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert "MatMulInteger" not in ops and "MatMul" in ops
    assert any("int8 refused" in line for line in said)
