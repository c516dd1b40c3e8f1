"""The public surface and the import-weight contract (runtime never imports torch & co.)."""

import subprocess
import sys
from pathlib import Path

import penny_slm


def test_all_is_pinned() -> None:
    expected = (Path(__file__).parent / "golden" / "public_api.txt").read_text().split()
    assert sorted(penny_slm.__all__) == expected
    assert all(hasattr(penny_slm, name) for name in penny_slm.__all__)


def test_importing_the_runtime_leaves_training_stacks_out() -> None:
    code = ("import sys, penny_slm, penny_slm.pipeline.bench, penny_slm.pipeline.layer, penny_slm.rules.prohibitions;"
            "print(sorted(m for m in ('torch', 'transformers', 'optimum', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_rules_import_no_model_code() -> None:
    code = "import sys, penny_slm.rules.prohibitions; print('onnxruntime' in sys.modules, 'tokenizers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"
