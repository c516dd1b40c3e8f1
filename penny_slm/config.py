"""``slm_config.json`` (the framework's shape) → frozen dataclasses, validated in one place.

Unknown keys, wrong types and out-of-range values raise ``ConfigError`` naming the JSON path
(``models -> research_classifier -> confidence_threshold``) and, for unknown keys, the valid ones.
Defaults ship in ``penny_slm/defaults/slm_config.json``; a user file overrides them key by key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, Union

from penny_slm.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResearchClassifierConfig:
    model_type: str = "penny-research"
    model_path: str = "research"
    enabled: bool = True
    inference_timeout: float = 2.0
    confidence_threshold: float = 0.6
    batch_size: int = 1
    max_tokens: int = 128


@dataclass(frozen=True, slots=True)
class PersonalityGuardConfig:
    model_type: str = "penny-tone"
    model_path: str = "tone"
    enabled: bool = True
    inference_timeout: float = 3.0
    enforcement_level: str = "strict"


@dataclass(frozen=True, slots=True)
class ContextTrackerConfig:
    model_type: str = "smollm2-135m"
    model_path: str = ""
    enabled: bool = True
    update_frequency: str = "every_message"
    inference_timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class DriftMonitorConfig:
    model_type: str = "smollm2-135m"
    model_path: str = ""
    enabled: bool = False
    check_frequency: str = "every_10_messages"
    alert_threshold: float = 0.7


@dataclass(frozen=True, slots=True)
class ModelsConfig:
    research_classifier: ResearchClassifierConfig = field(default_factory=ResearchClassifierConfig)
    personality_guard: PersonalityGuardConfig = field(default_factory=PersonalityGuardConfig)
    context_tracker: ContextTrackerConfig = field(default_factory=ContextTrackerConfig)
    drift_monitor: DriftMonitorConfig = field(default_factory=DriftMonitorConfig)


@dataclass(frozen=True, slots=True)
class OrchestrationConfig:
    max_parallel_tasks: int = 3
    total_timeout: float = 10.0
    fallback_on_timeout: bool = True


@dataclass(frozen=True, slots=True)
class ResourceConfig:
    max_memory_mb: int = 8192
    cpu_threads: int = 4
    gpu_enabled: bool = True
    adaptive_scheduling: bool = True


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """penny-slm's additions: where artifacts live and how onnxruntime runs them."""

    models_dir: str = "models"
    execution_providers: tuple[str, ...] = ("CoreMLExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    intra_op_threads: int = 1
    main_llm: str = "smollm2-135m"  # an slm_models name: the local SLM by default, any OpenAI-compatible entry by config
    main_llm_max_tokens: int = 160
    main_llm_timeout: float = 20.0
    searxng_url: str = ""  # e.g. http://127.0.0.1:8888; empty: no live search, the LLM is told its knowledge may be stale
    database_url: str = ""  # empty: SQLite in the per-user data folder ($PENNY_DB_URL wins)


@dataclass(frozen=True, slots=True)
class SLMConfig:
    models: ModelsConfig = field(default_factory=ModelsConfig)
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)
    resource_management: ResourceConfig = field(default_factory=ResourceConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    slm_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Generative models by name: ``{"adapter": kind, "artifact" | "path" | adapter kwargs...}``. The
    adapter's ``__init__`` is the schema; ``pipeline.factory`` checks each entry against it."""

    def models_dir(self) -> Path:
        """``$PENNY_SLM_MODELS`` wins over the config, so tests and CI can point elsewhere."""
        return Path(os.environ.get("PENNY_SLM_MODELS", self.runtime.models_dir)).expanduser()


# Range checks beyond types: (field path suffix) -> (predicate, what is allowed)
_RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "confidence_threshold": (lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1"),
    "alert_threshold": (lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1"),
    "inference_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "total_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "main_llm_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "main_llm_max_tokens": (lambda v: 1 <= v <= 4096, "must be between 1 and 4096"),
    "max_parallel_tasks": (lambda v: v >= 1, "must be >= 1"),
    "batch_size": (lambda v: v >= 1, "must be >= 1"),
    "max_tokens": (lambda v: 8 <= v <= 512, "must be between 8 and 512 (the encoder's position limit)"),
    "intra_op_threads": (lambda v: v >= 0, "must be >= 0 (0 lets onnxruntime choose)"),
    "enforcement_level": (lambda v: v in ("strict", "lenient"), "must be 'strict' or 'lenient'"),
}


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {type(value).__name__}")
        inner = typing.get_args(tp)[0]
        return tuple(_coerce(inner, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:  # slm_models: name -> entry; entries are checked against their adapter by the factory
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected an object, got {type(value).__name__}")
        for key, entry in value.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("adapter"), str):
                raise ConfigError(f"{path} -> {key}", 'expected an object with an "adapter" name')
        return dict(value)
    if origin in (Union, types.UnionType):
        raise ConfigError(path, "union types are not supported in config")  # pragma: no cover
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp in (bool, int, float, str) and (type(value) is not tp):
        raise ConfigError(path, f"expected {tp.__name__}, got {type(value).__name__} {value!r}")
    name = path.rsplit(" -> ", 1)[-1]
    if name in _RANGES and not _RANGES[name][0](value):
        raise ConfigError(path, f"{value!r} {_RANGES[name][1]}")
    return value


def _build(cls: type[T], data: Any, path: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(path or "<root>", f"expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in data:
        if key not in hints:
            where = f"{path} -> {key}" if path else key
            raise ConfigError(where, f"unknown key; valid keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(hints[k], v, f"{path} -> {k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _packaged(name: str) -> dict[str, Any]:
    data = json.loads(resources.files("penny_slm.defaults").joinpath(name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _overlay(defaults: dict[str, Any], path: str | Path | None) -> dict[str, Any]:
    """``defaults`` with a user JSON file merged in key by key; file problems are ``ConfigError``s naming it."""
    if not path:
        return defaults
    try:
        user = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "file not found") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    if not isinstance(user, dict):
        raise ConfigError(str(path), "the top level must be a JSON object")
    return _merge(defaults, user)


def load_config(path: str | Path | None = None) -> SLMConfig:
    """Load the packaged defaults, overlaid with ``path`` (or ``$PENNY_SLM_CONFIG``) if given."""
    return _build(SLMConfig, _overlay(_packaged("slm_config.json"), path or os.environ.get("PENNY_SLM_CONFIG")), "")


@dataclass(frozen=True, slots=True)
class BannedPhrases:
    coffee_reference: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Persona:
    """Penny's persona rules (``config/personality.json``): what the guard enforces."""

    user_name: str = "CJ"
    max_exclamations: int = 1
    max_name_mentions: int = 1
    ban_caps_enthusiasm: bool = True
    tone: str = ""
    banned_phrases: BannedPhrases = field(default_factory=BannedPhrases)
    caps_allowlist: tuple[str, ...] = ()
    warning_words: tuple[str, ...] = ()


_RANGES["max_exclamations"] = (lambda v: v >= 0, "must be >= 0")
_RANGES["max_name_mentions"] = (lambda v: v >= 0, "must be >= 0")
_RANGES["user_name"] = (lambda v: bool(v.strip()) and len(v) <= 40, "must be a non-empty name of at most 40 characters")


def load_persona(path: str | Path | None = None) -> Persona:
    """Packaged persona defaults, overlaid with ``path`` (or ``$PENNY_PERSONA``) if given."""
    return _build(Persona, _overlay(_packaged("personality.json"), path or os.environ.get("PENNY_PERSONA")), "")
