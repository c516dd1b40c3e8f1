"""The docs cannot rot: their Python examples run, their generated reference covers the code, nothing in the
repository points outside it. (scripts/test.sh also builds the site with ``mkdocs build --strict``.)"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest

import penny_slm
from penny_slm.config import SLMConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SKIP_MARK = "<!-- not run"
"""A line starting with this, just above a fenced ``python`` block, keeps the block out of the tests (it says why)."""
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The page's ``python`` blocks, in order, except those marked not run."""
    blocks = []
    for match in FENCE.finditer(text):
        above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if not above.startswith(SKIP_MARK):
            blocks.append(match.group(1))
    return blocks


PAGES_WITH_EXAMPLES = [p for p in [*PAGES, ROOT / "README.md"] if python_blocks(p.read_text(encoding="utf-8"))]


def test_the_pages_that_promise_runnable_examples_have_them() -> None:
    names = {p.name for p in PAGES_WITH_EXAMPLES}
    assert {"architecture.md", "configuration.md", "privacy.md", "troubleshooting.md"} <= names


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: p.name)
def test_examples_run(page: Path, tmp_path: Path) -> None:
    """A page's blocks run in order in one fresh interpreter (like a doctest session), outside the repository
    (no ./config), with an empty model folder, data folder and data cache: no model is built or needed."""
    script = tmp_path / f"{page.stem}_examples.py"
    script.write_text("\n\n".join(python_blocks(page.read_text(encoding="utf-8"))), encoding="utf-8")
    for name in ("models", "data", "cache", "work"):
        (tmp_path / name).mkdir()
    drop = {"PENNY_SLM_CONFIG", "PENNY_PERSONA", "PENNY_DB_URL", "PENNY_SLM_SOURCES"}
    env = {k: v for k, v in os.environ.items() if k not in drop} | {
        "PYTHONPATH": str(ROOT), "PENNY_SLM_MODELS": str(tmp_path / "models"), "PENNY_DATA_DIR": str(tmp_path / "data"),
        "PENNY_SLM_CACHE": str(tmp_path / "cache"), "PYTHONWARNINGS": "error"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path / "work", env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, f"{page.name} examples failed:\n{proc.stderr[-4000:]}"


def test_every_public_name_is_on_the_api_page() -> None:
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = {line.split(":::", 1)[1].strip().rsplit(".", 1)[-1] for line in api.splitlines() if line.startswith(":::")}
    missing = sorted(set(penny_slm.__all__) - documented - {"__version__"})
    assert not missing, f"add to docs/api.md: {missing}"


def _gen_ref() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_ref", DOCS / "gen_ref.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if dataclasses.is_dataclass(hints[f.name]):
            keys += _leaf_keys(hints[f.name], f"{prefix}{f.name}.")
        elif f.name not in ("models", "slm_models"):
            keys.append(f"{prefix}{f.name}")
    return keys


def test_generated_config_reference_has_every_key() -> None:
    page = _gen_ref().on_page_markdown("<!-- generated: config -->")
    missing = [key for key in _leaf_keys(SLMConfig) if f"| `{key}` |" not in page]
    assert not missing
    for needle in ("`confidence_threshold`", "`enforcement_level`", "adapter `openai-compatible`", "`mistral-tiny`"):
        assert needle in page


def test_generated_cli_reference_has_every_command() -> None:
    from penny_slm.cli import COMMANDS

    page = _gen_ref().on_page_markdown("<!-- generated: cli -->")
    for command in COMMANDS:
        assert f"### `penny-slm {command}`" in page
    assert "### `penny-slm models build`" in page and "### `penny-slm profile delete`" in page


# Built from pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "/" + "work/", "DESIGN" + ".md", "STYLE" + ".md", "FRAMEWORK" + ".md", "ml-stack" + ".md")
CHECKED = ("penny_slm", "tests", "docs", "scripts", "config", ".ci")


def test_nothing_in_the_repository_points_outside_it() -> None:
    # every top-level file but .git (in a git worktree it is a file that names the main checkout)
    files = [p for p in ROOT.iterdir() if p.is_file() and p.name != ".git"]
    files += [p for top in CHECKED for p in (ROOT / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    hits = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="ignore")
        hits += [f"{path.relative_to(ROOT)}: {needle}" for needle in OUTSIDE if needle in text]
    assert not hits, hits


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in t and not t.startswith("#")]
    assert targets, "the README links into docs/"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing


def test_every_public_name_has_its_own_docstring() -> None:
    """The API page renders docstrings: a public class or function without one would be an empty entry."""
    import inspect

    missing = []
    for name in set(penny_slm.__all__) - {"__version__"}:
        obj = getattr(penny_slm, name)
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        if not (doc or "").strip():
            missing.append(name)
    assert not missing, sorted(missing)


def _public_without_docstring(path: Path) -> list[str]:
    """The module, its public classes and functions, and the public methods of those classes that have no docstring
    of their own (read from the source, so no optional dependency is imported; dunders and dataclass-made methods
    are not in it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = str(path.relative_to(ROOT))
    missing = [] if ast.get_docstring(tree) else [f"{where} (module)"]
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in tree.body:
        if not isinstance(node, defs) or node.name.startswith("_"):
            continue
        members = [m for m in node.body if isinstance(m, defs) and not m.name.startswith("_")] if isinstance(node, ast.ClassDef) else []
        for n, name in [(node, node.name), *((m, f"{node.name}.{m.name}") for m in members)]:
            if not ast.get_docstring(n):
                missing.append(f"{where}:{n.lineno} {name}")
    return missing


def test_every_public_module_class_function_and_method_has_a_docstring() -> None:
    """Not only the API page's names: everything public in penny_slm (modules whose path has no ``_`` part)."""
    files = [p for p in (ROOT / "penny_slm").rglob("*.py")
             if not any(part.startswith("_") and part != "__init__.py" for part in p.relative_to(ROOT).parts)]
    assert len(files) > 50
    missing = [hit for path in sorted(files) for hit in _public_without_docstring(path)]
    assert not missing, missing


DATA_FILES = ROOT / "penny_slm" / "training" / "data"
COUNT_ROW = re.compile(r"^\| `([^`]+\.jsonl?)` \| ([\d,]+) \|", re.M)


def _rows(path: Path) -> int:
    """Non-empty lines of a JSONL file; entries of a JSON list."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return len(json.loads(text))
    return sum(1 for line in text.splitlines() if line.strip())


def test_data_md_states_the_row_count_of_every_committed_data_file() -> None:
    """DATA.md's table of row counts is hand-written (readable on GitHub too); this keeps it equal to the files."""
    stated = {path: int(rows.replace(",", "")) for path, rows in COUNT_ROW.findall((DOCS / "DATA.md").read_text(encoding="utf-8"))}
    packaged = {str(p.relative_to(ROOT)) for p in DATA_FILES.rglob("*.json*") if p.name != "sources.json"}
    assert packaged, "no packaged data files found"
    missing = sorted(packaged - set(stated))
    assert not missing, f"add to the row-count table of docs/DATA.md: {missing}"
    wrong = {path: (rows, _rows(ROOT / path)) for path, rows in stated.items() if _rows(ROOT / path) != rows}
    assert not wrong, f"docs/DATA.md states (stated, actual): {wrong}"
