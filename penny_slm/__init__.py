"""penny-slm: small local models around Penny's main LLM (research routing, persona guard, rewrites).

The public surface is what ``__all__`` lists (pinned by tests/test_public_api.py). Names resolve lazily,
so ``import penny_slm.rules`` stays free of onnxruntime, and nothing here imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Change": "penny_slm.results", "GuardResult": "penny_slm.results", "ResearchClassification": "penny_slm.results",
    "ContextUpdate": "penny_slm.results", "ModuleOutcome": "penny_slm.results", "TurnResult": "penny_slm.results",
    "SLMLayer": "penny_slm.pipeline.layer", "SLMFactory": "penny_slm.pipeline.factory",
    "Rewriter": "penny_slm.pipeline.modules.rewriter",
    "EndpointError": "penny_slm.errors", "GenerationError": "penny_slm.errors",
    "Persona": "penny_slm.config", "SLMConfig": "penny_slm.config", "load_config": "penny_slm.config",
    "load_persona": "penny_slm.config",
    "ChecksumError": "penny_slm.errors", "ConfigError": "penny_slm.errors", "InputError": "penny_slm.errors",
    "MissingDependencyError": "penny_slm.errors", "ModelNotFoundError": "penny_slm.errors",
    "NotLoadedError": "penny_slm.errors", "ParityError": "penny_slm.errors", "PennySLMError": "penny_slm.errors",
    "RegistryError": "penny_slm.errors",
    "ModelRegistry": "penny_slm.pipeline.model_registry",
    "PersonalityGuard": "penny_slm.pipeline.modules.guard",
    "ResearchClassifier": "penny_slm.pipeline.modules.research",
}
__all__ = [
    "Change", "ChecksumError", "ConfigError", "ContextUpdate", "EndpointError", "GenerationError", "GuardResult",
    "InputError", "MissingDependencyError", "ModelNotFoundError", "ModelRegistry", "ModuleOutcome", "NotLoadedError",
    "ParityError", "PennySLMError", "Persona", "PersonalityGuard", "RegistryError", "ResearchClassification",
    "ResearchClassifier", "Rewriter", "SLMConfig", "SLMFactory", "SLMLayer", "TurnResult", "load_config",
    "load_persona",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'penny_slm' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
