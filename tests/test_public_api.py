"""The public surface and the import-weight contract (runtime never imports torch & co.)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.issue(24)
def test_public_names_are_visible_to_type_checkers() -> None:
    """Every name in ``__all__`` is bound by an import or assignment in ``__init__`` (no lazy ``__getattr__``),
    the package ships ``py.typed``, and ``__version__`` is the installed version."""
    from importlib.metadata import version

    init = Path(penny_slm.__file__)
    tree = ast.parse(init.read_text())
    bound = {a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom) for a in node.names}
    bound |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert set(penny_slm.__all__) <= bound
    assert not any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body)
    assert (init.parent / "py.typed").is_file() and penny_slm.__version__ == version("penny-slm")


@pytest.mark.issue(24)
def test_the_library_logger_has_only_a_null_handler() -> None:
    code = ("import logging, penny_slm; root = logging.getLogger(); lib = logging.getLogger('penny_slm');"
            "print([type(h).__name__ for h in lib.handlers], root.handlers == [], logging.getLogger('optimum').level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['NullHandler'] True 0"
