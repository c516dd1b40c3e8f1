"""penny-slm: small local models around Penny's main LLM (research routing, persona guard, rewrites).

The public surface is what ``__all__`` lists (pinned by tests/test_public_api.py). Importing the
package loads the runtime (onnxruntime, tokenizers, peewee), never torch, transformers or optimum.
The library logs to the ``penny_slm`` logger and adds only a ``NullHandler``: configure logging in
your application to see fallbacks, timeouts, discarded rewrites and dead-lettered updates.
"""

from __future__ import annotations

import logging

from penny_slm.config import Persona, SLMConfig, load_config, load_persona
from penny_slm.errors import (
    ChecksumError,
    ConfigError,
    EndpointError,
    GenerationError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
    NotLoadedError,
    ParityError,
    PennySLMError,
    RegistryError,
)
from penny_slm.pipeline.controls import LearningControls
from penny_slm.pipeline.factory import SLMFactory, module_from_config
from penny_slm.pipeline.layer import SLMLayer
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import Module, TurnContext
from penny_slm.pipeline.modules.guard import PersonalityGuard
from penny_slm.pipeline.modules.research import ResearchClassifier
from penny_slm.pipeline.modules.rewriter import Rewriter
from penny_slm.results import (
    Change,
    ContextUpdate,
    GuardResult,
    ModuleOutcome,
    PreferenceUpdate,
    ResearchClassification,
    TurnResult,
)

__version__ = "0.2.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Change", "ChecksumError", "ConfigError", "ContextUpdate", "EndpointError", "GenerationError", "GuardResult",
    "InputError", "LearningControls", "MissingDependencyError", "Module", "ModelNotFoundError", "ModelRegistry",
    "ModuleOutcome", "NotLoadedError", "ParityError", "PennySLMError", "Persona", "PersonalityGuard", "PreferenceUpdate",
    "RegistryError",
    "ResearchClassification", "ResearchClassifier", "Rewriter", "SLMConfig", "SLMFactory", "SLMLayer", "TurnContext",
    "TurnResult", "__version__", "load_config", "load_persona", "module_from_config",
]
