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
    monkeypatch.setattr(build, "quantize_int8", lambda _src, out, preset: (out.write_bytes(other_model.read_bytes()), {"name": preset.name})[1])
    texts = ["what's the weather today", "explain gravity", "write a poem", "btc price now", "score of the game"]
    said: list[str] = []
    preset, parity = build._quantize_or_keep_fp32("research", fp32, tmp_path / "model.onnx", trained, texts, said.append)
    assert preset["dtype"] == "fp32" and len(preset["int8_refused"]) == len(build.INT8_LADDER) == 2
    assert all("agrees with torch" in reason for reason in preset["int8_refused"])
    assert parity.overall == {"research": 1.0, "category": 1.0}
    exported, reference = onnx_logits(fp32, trained, texts), torch_logits(trained, texts)  # length-sorted batches, rows in order
    assert all(np.allclose(exported[h], reference[h], atol=1e-4) for h in reference)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert "MatMulInteger" not in ops and "MatMul" in ops
    assert any("int8 preset" in line and "refused" in line for line in said) and any("keeping the fp32 graph" in line for line in said)


def test_the_second_int8_preset_ships_when_only_the_default_is_refused(built_registry: ModelRegistry, tmp_path, monkeypatch) -> None:
    """The ladder (issue 23): a graph the default preset spoils is quantized again with the FFN output projections in
    fp32, and that int8 graph ships when it passes; the manifest names the preset and the refusal."""
    import penny_slm.export.build as build
    from penny_slm.export.onnx import export_onnx
    from penny_slm.export.quantize import DEFAULT_PRESET, quantize_int8
    from penny_slm.training.datasets import research_examples
    from penny_slm.training.heads import TrainSettings, train

    rows = [ResearchRow("btc price now", True, "prices_markets"), ResearchRow("write a poem", False, "creative")] * 8
    trained = train(build.SPECS["research"].task, research_examples(rows), research_examples(rows), TrainSettings(approach="frozen"))
    fp32 = tmp_path / "fp32" / "model.onnx"
    export_onnx(trained.model, fp32)
    other_model = built_registry.load("research").file("model.onnx")

    def spoil_default(src, out, preset):
        if preset == DEFAULT_PRESET:  # stands in for a default-preset graph that flips decisions
            out.write_bytes(other_model.read_bytes())
            return {"name": preset.name}
        return quantize_int8(src, out, preset)

    monkeypatch.setattr(build, "quantize_int8", spoil_default)
    texts = ["what's the weather today", "explain gravity", "write a poem", "btc price now", "score of the game"]
    preset, parity = build._quantize_or_keep_fp32("research", fp32, tmp_path / "model.onnx", trained, texts, lambda _m: None)
    assert preset["dtype"] == "int8" and preset["name"] == "ffn_output_fp32" and preset["fp32_nodes"] == 12 + 2 * 2 + 6  # attention scores, two heads (two spellings), FFN outputs
    assert preset["int8_refused"][0].startswith(DEFAULT_PRESET.name) and parity.overall["research"] >= 0.98
    ops = [node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 36 - 6  # each layer's FFN output projection stays fp32


def test_parity_scoring_stops_once_the_gate_cannot_pass(built_registry: ModelRegistry) -> None:
    """A graph that disagrees is refused after the first batches that make passing impossible, not after all rows."""
    from penny_slm.export.build import SPECS
    from penny_slm.training.datasets import research_examples
    from penny_slm.training.heads import TrainSettings, train

    rows = [ResearchRow("btc price now", True, "prices_markets"), ResearchRow("write a poem", False, "creative")] * 8
    trained = train(SPECS["research"].task, research_examples(rows), research_examples(rows), TrainSettings(approach="frozen"))
    texts = [f"{t} {i}" for i in range(100) for t in ("btc price now", "write a poem", "what's the weather today", "explain gravity")]
    with pytest.raises(ParityError, match=r"texts scored \(of 400\)") as info:
        check_parity(built_registry.load("research").file("model.onnx"), trained, texts)
    assert "of 400 texts scored" not in str(info.value)  # stopped early


def test_a_frozen_candidate_trains_only_on_a_small_split() -> None:
    """Attachment tries the frozen encoder only on a split the size of the packaged rows (where it won on dev); on the
    public sources' thousands of rows it fine-tunes alone. A build asking only for the frozen head still gets it, and
    the two sizes get different build keys."""
    from penny_slm.export.build import SPECS

    spec, both, quick = SPECS["attachment"], BuildSettings(), BuildSettings(approaches=("frozen",))
    assert spec.frozen_max_rows is not None
    assert both.approaches_for(spec, 103) == ("frozen", "finetune")
    assert both.approaches_for(spec, spec.frozen_max_rows + 1) == ("finetune",)
    assert quick.approaches_for(spec, 4908) == ("frozen",)
    assert both.key(spec, "d", 103) != both.key(spec, "d", 4908)
    assert both.approaches_for(SPECS["research"], 10) == ("finetune",)  # no limit: its listed approaches


def test_the_parity_check_samples_large_dev_sets() -> None:
    from penny_slm.export.build import parity_texts

    texts = [f"text {i}" for i in range(100)]
    assert parity_texts(texts + texts[:10], limit=200) == texts  # distinct, in order
    sample = parity_texts(texts, limit=30)
    assert len(sample) == 30 and sample == sorted(sample, key=texts.index) and sample == parity_texts(texts, limit=30)


def test_the_parity_reference_reuses_the_dev_logits_training_computed() -> None:
    """Dev texts take the logits training scored them with, other texts are scored afresh; both equal what the model
    gives now, in the order asked, at the length it was trained with."""
    from penny_slm.export.build import SPECS
    from penny_slm.training.datasets import research_examples
    from penny_slm.training.heads import TrainSettings, predict_logits, train

    rows = [ResearchRow("btc price now", True, "prices_markets"), ResearchRow("write a poem", False, "creative"),
            ResearchRow("gold price today", True, "prices_markets"), ResearchRow("write a haiku about rain", False, "creative")] * 4
    trained = train(SPECS["research"].task, research_examples(rows[:8]), research_examples(rows[:4]),
                    TrainSettings(approach="frozen", max_length=16))
    assert trained.dev_texts == [r.text for r in rows[:4]] and set(trained.dev_logits) == {"research", "category"}
    texts = ["write a haiku about rain", "what's the weather today", "btc price now", "what's the weather today"]
    reference, now = torch_logits(trained, texts), predict_logits(trained.model, trained.tokenizer, texts, 16)
    assert all(np.allclose(reference[h], now[h], atol=1e-5) for h in ("research", "category"))
