"""The dependency rule (docs/architecture.md), read from the source (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "penny_slm"

ALLOWED = {
    "rules": ("penny_slm.results", "penny_slm.errors", "penny_slm.rules", "penny_slm.config"),  # config: the Persona type
}
FORBIDDEN_AT_RUN_TIME = ("penny_slm.training", "penny_slm.export", "penny_slm.cli")
EXCEPTIONS = {
    # the bench reads the packaged research test split (data files, no torch) as its query set
    ("pipeline/bench.py", "penny_slm.training.datasets"),
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("penny_slm")}


def test_rules_import_only_results_errors_and_config() -> None:
    for path in (PACKAGE / "rules").glob("*.py"):
        bad = [m for m in _imports(path) if not m.startswith(ALLOWED["rules"])]
        assert not bad, f"{path.name} imports {bad}"


def test_nothing_at_run_time_imports_training_export_or_cli() -> None:
    for path in [*(PACKAGE / "pipeline").rglob("*.py"), *(PACKAGE / "rules").glob("*.py"),
                 PACKAGE / "results.py", PACKAGE / "config.py", PACKAGE / "errors.py"]:
        rel = path.relative_to(PACKAGE).as_posix()
        bad = [m for m in _imports(path) if m.startswith(FORBIDDEN_AT_RUN_TIME) and (rel, m) not in EXCEPTIONS]
        assert not bad, f"{rel} imports {bad}"
