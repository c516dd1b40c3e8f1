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


FRAMEWORK_MODULES = {"research_classifier": "research", "personality_guard": "guard",
                     "context_tracker": "context", "drift_monitor": "drift"}
"""The framework's ``models`` blocks and the registered module each one builds; any other block names its ``module``."""
ENTRY_KEYS = ("module", "enabled", "inference_timeout")
"""Keys of a ``models`` block the orchestrator reads; every other key is an argument of the module's ``__init__``."""


DEFAULT_MODULE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class ModuleEntry:
    """One ``models`` block: which registered module it builds, whether it runs, its time budget, and the
    module's own settings (checked against the module's ``__init__`` when the layer builds it)."""

    block: str
    module: str
    enabled: bool = True
    inference_timeout: float = DEFAULT_MODULE_TIMEOUT
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrchestrationConfig:
    """The ``orchestration`` section: how many module calls run at once and the time budget of a whole turn."""
    max_parallel_tasks: int = 3
    total_timeout: float = 30.0
    """Bounds everything Penny waits for in one turn: modules, profile read, search, main LLM, guard
    (each stage's share is in ``pipeline/layer.py``)."""
    fallback_on_timeout: bool = True


@dataclass(frozen=True, slots=True)
class ResourceConfig:
    """The ``resource_management`` section: memory, threads and GPU use of the local generative models."""
    max_memory_mb: int = 8192  # loaded local generative models are unloaded (least recently used first) above this
    cpu_threads: int = 2  # threads per local generative model (main LLM, rewriter)
    gpu_enabled: bool = True  # false: only the CPU execution provider is used, whatever runtime.execution_providers lists
    adaptive_scheduling: bool = True  # unload local generative models idle for runtime.idle_unload_s (they reload on use)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """penny-slm's additions: where artifacts live and how onnxruntime runs them."""

    models_dir: str = ""
    """Artifact folder; relative to the config file that sets it; empty: ``models`` in the data folder
    (``$PENNY_DATA_DIR``, else ``$XDG_DATA_HOME/penny``). ``$PENNY_SLM_MODELS`` wins over both."""
    execution_providers: tuple[str, ...] = ("CoreMLExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    intra_op_threads: int = 1
    main_llm: str = "smollm2-135m"  # an slm_models name: the local SLM by default, any OpenAI-compatible entry by config
    main_llm_max_tokens: int = 160
    main_llm_timeout: float = 20.0
    searxng_url: str = ""  # e.g. http://127.0.0.1:8888; empty: no live search, the LLM is told its knowledge may be stale
    search_timeout: float = 3.0
    database_url: str = ""  # empty: SQLite in the per-user data folder ($PENNY_DB_URL wins)
    database_synchronous: str = "normal"  # SQLite: "normal" survives a killed process, "full" also a power cut
    idle_unload_s: float = 600.0


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Days each history table keeps its rows; a prune in the sync writer deletes older ones (hourly, on its own)."""

    outbox: float = 7.0  # applied queue rows (an idempotency key is remembered this long); pending rows are never pruned
    module_runs: float = 30.0
    update_log: float = 365.0  # the transparency log, and decided approval-queue entries
    alerts: float = 365.0  # alerts, and the dead letters they point at
    drift_turns: float = 30.0  # the drift monitor's window of recent turns per user (also bounded by count) and baseline


LOG_MESSAGE_TEXT = ("excerpt", "hash")


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """Privacy and safety controls on what Penny learns about a user (``pipeline/controls.py``)."""

    enabled: bool = True
    """false: nothing is learned (no profile updates are queued, and the writer blocks any that arrive)."""
    kill_switch: bool = False
    """true: safe mode, as ``penny-slm kill``: no learning and no generative rewriting (OR-ed with the database's switch)."""
    rate_limits: dict[str, float] = field(default_factory=lambda: {"formality_level": 0.1, "technical_depth": 0.1})
    """Most a numeric dimension may move (sum of absolute changes) per ``rate_window_hours``; beyond: clipped or deferred."""
    rate_window_hours: float = 24.0
    max_new_slang_per_day: int = 3
    """New terms added to a user's slang lexicon per rolling 24 hours; more are deferred."""
    approval_threshold: float = 0.3
    """A single update moving a numeric dimension by more than this waits for approval."""
    approval_expiry_hours: float = 72.0
    log_message_text: str = "excerpt"
    """What the transparency log keeps of the message a change was learned from: ``excerpt`` (at most 80
    characters) or ``hash`` (its sha256, no text)."""
    retention_days: RetentionConfig = field(default_factory=RetentionConfig)


@dataclass(frozen=True, slots=True)
class SLMConfig:
    """The whole ``slm_config.json``, validated: what :func:`load_config` returns and every part of the layer reads."""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Modules by block name (the framework's four, plus any a third party registers): see :class:`ModuleEntry`."""
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)
    resource_management: ResourceConfig = field(default_factory=ResourceConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    slm_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Generative models by name: ``{"adapter": kind, "artifact" | "path" | adapter kwargs...}``. The
    adapter's ``__init__`` is the schema; ``pipeline.factory`` checks each entry against it."""

    def models_dir(self) -> Path:
        """``$PENNY_SLM_MODELS`` wins over the config, so tests and CI can point elsewhere."""
        configured = os.environ.get("PENNY_SLM_MODELS") or self.runtime.models_dir
        return Path(configured).expanduser() if configured else data_dir() / "models"

    def execution_providers(self) -> tuple[str, ...]:
        """The configured providers, or only the CPU when ``resource_management.gpu_enabled`` is false."""
        return self.runtime.execution_providers if self.resource_management.gpu_enabled else ("CPUExecutionProvider",)

    def module_entries(self) -> tuple[ModuleEntry, ...]:
        """Every ``models`` block, in config order."""
        out = []
        for block, raw in self.models.items():
            options = {k: v for k, v in raw.items() if k not in ENTRY_KEYS}
            out.append(ModuleEntry(block, raw.get("module") or FRAMEWORK_MODULES[block], raw.get("enabled", True),
                                   float(raw.get("inference_timeout", DEFAULT_MODULE_TIMEOUT)), options))
        return tuple(out)

    def module_entry(self, module: str) -> ModuleEntry | None:
        """The block that builds ``module`` (a registered module name such as ``research``), if any."""
        return next((e for e in self.module_entries() if e.module == module), None)


def data_dir() -> Path:
    """``$PENNY_DATA_DIR`` or ``$XDG_DATA_HOME/penny`` (``~/.local/share/penny``): one per OS user."""
    base = os.environ.get("PENNY_DATA_DIR") or Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "penny"
    return Path(base).expanduser()


# Range checks beyond types: (field path suffix) -> (predicate, what is allowed). Module settings are
# checked against the same table when the factory builds the module.
_RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "confidence_threshold": (lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1"),
    "inference_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "total_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "main_llm_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "search_timeout": (lambda v: v > 0, "must be > 0 seconds"),
    "idle_unload_s": (lambda v: v > 0, "must be > 0 seconds"),
    "main_llm_max_tokens": (lambda v: 1 <= v <= 4096, "must be between 1 and 4096"),
    "max_parallel_tasks": (lambda v: v >= 1, "must be >= 1"),
    "max_memory_mb": (lambda v: v >= 1, "must be >= 1"),
    "cpu_threads": (lambda v: v >= 1, "must be >= 1"),
    "max_tokens": (lambda v: 8 <= v <= 512, "must be between 8 and 512 (the encoder's position limit)"),
    "intra_op_threads": (lambda v: v >= 0, "must be >= 0 (0 lets onnxruntime choose)"),
    "enforcement_level": (lambda v: v in ("strict", "lenient"), "must be 'strict' or 'lenient'"),
    "database_synchronous": (lambda v: v in ("normal", "full"), "must be 'normal' or 'full'"),
    "tone_threshold": (lambda v: 0.0 < v < 1.0, "must be between 0 and 1"),
    "rate_window_hours": (lambda v: v > 0, "must be > 0 hours"),
    "max_new_slang_per_day": (lambda v: v >= 1, "must be >= 1"),
    "approval_threshold": (lambda v: v > 0, "must be > 0"),
    "approval_expiry_hours": (lambda v: v > 0, "must be > 0 hours"),
    "log_message_text": (lambda v: v in LOG_MESSAGE_TEXT, "must be 'excerpt' or 'hash'"),
    "outbox": (lambda v: v > 0, "must be > 0 days"),
    "module_runs": (lambda v: v > 0, "must be > 0 days"),
    "update_log": (lambda v: v > 0, "must be > 0 days"),
    "alerts": (lambda v: v > 0, "must be > 0 days"),
    "drift_turns": (lambda v: v > 0, "must be > 0 days"),
}


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {type(value).__name__}")
        inner = typing.get_args(tp)[0]
        items = tuple(_coerce(inner, v, f"{path}[{i}]") for i, v in enumerate(value))
        name = path.rsplit(" -> ", 1)[-1]
        if name in _RANGES and not _RANGES[name][0](items):
            raise ConfigError(path, f"{list(items)!r} {_RANGES[name][1]}")
        return items
    if origin is dict:  # models / slm_models: name -> entry (its own keys are checked by the factory); rate limits
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected an object, got {type(value).__name__}")
        for key, entry in value.items():
            _ENTRY_CHECKS[path](f"{path} -> {key}", key, entry)
        if typing.get_args(tp)[1] is float:
            return {k: float(v) for k, v in value.items()}
        return {k: dict(v) for k, v in value.items()}
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


def _check_slm_entry(path: str, name: str, entry: Any) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("adapter"), str):
        raise ConfigError(path, 'expected an object with an "adapter" name')


def _check_module_block(path: str, block: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise ConfigError(path, f"expected an object, got {type(entry).__name__}")
    if "module" in entry and not isinstance(entry["module"], str):
        raise ConfigError(f"{path} -> module", "expected the name of a registered module")
    if block not in FRAMEWORK_MODULES and "module" not in entry:
        raise ConfigError(path, f'a block other than {", ".join(FRAMEWORK_MODULES)} must name its "module"')
    for key, tp in (("enabled", bool), ("inference_timeout", float)):
        if key in entry:
            coerce_value(tp, entry[key], f"{path} -> {key}")


def _check_rate_limit(path: str, key: str, entry: Any) -> None:
    if isinstance(entry, bool) or not isinstance(entry, int | float) or not entry > 0:
        raise ConfigError(path, f"expected a number > 0 (the most {key} may move per window), got {entry!r}")


_ENTRY_CHECKS = {"models": _check_module_block, "slm_models": _check_slm_entry, "learning -> rate_limits": _check_rate_limit}


def coerce_value(tp: Any, value: Any, path: str) -> Any:
    """``value`` checked against the annotation ``tp`` and the range table (``ConfigError`` naming ``path``);
    the factory checks module and adapter settings with it too."""
    return _coerce(tp, value, path)


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


def _read_user_file(path: Path) -> dict[str, Any]:
    try:
        user = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ConfigError(str(path), "file not found") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "not UTF-8 text") from exc
    if not isinstance(user, dict):
        raise ConfigError(str(path), "the top level must be a JSON object")
    return user


def config_file(name: str, explicit: str | Path | None, env_var: str) -> Path | None:
    """Which user file applies, first found wins: ``explicit`` → ``$env_var`` → ``./config/<name>`` → none
    (the packaged defaults alone). An explicit or environment path that does not exist is an error."""
    chosen = explicit or os.environ.get(env_var)
    if chosen:
        return Path(chosen)
    local = Path("config") / name
    return local.resolve() if local.is_file() else None


def load_config(path: str | Path | None = None) -> SLMConfig:
    """The packaged defaults, overlaid key by key with the user file :func:`config_file` finds
    (``path`` → ``$PENNY_SLM_CONFIG`` → ``./config/slm_config.json``). A relative ``runtime.models_dir``
    in that file is resolved against the file's folder, not the working directory."""
    data = _packaged("slm_config.json")
    source = config_file("slm_config.json", path, "PENNY_SLM_CONFIG")
    if source is not None:
        user = _read_user_file(source)
        runtime = user.get("runtime")
        if isinstance(runtime, dict) and isinstance(runtime.get("models_dir"), str) and runtime["models_dir"]:
            folder = Path(runtime["models_dir"]).expanduser()
            resolved = os.path.normpath(folder if folder.is_absolute() else source.absolute().parent / folder)
            user = {**user, "runtime": {**runtime, "models_dir": resolved}}
        data = _merge(data, user)
    return _build(SLMConfig, data, "")


@dataclass(frozen=True, slots=True)
class BannedPhrases:
    """Persona phrases the coffee rule bans on top of its built-in lexicon (the prompt names them too)."""
    coffee_reference: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Persona:
    """Penny's persona rules (``config/personality.json``): what the guard enforces."""

    user_name: str = "CJ"
    nicknames: tuple[str, ...] = ()
    """Other names the user goes by; mentions of any of them count towards ``max_name_mentions``."""
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
_RANGES["nicknames"] = (lambda v: all(n.strip() and len(n) <= 40 for n in v), "must be non-empty names of at most 40 characters")


def load_persona(path: str | Path | None = None) -> Persona:
    """Packaged persona defaults, overlaid with the user file :func:`config_file` finds
    (``path`` → ``$PENNY_PERSONA`` → ``./config/personality.json``)."""
    data = _packaged("personality.json")
    source = config_file("personality.json", path, "PENNY_PERSONA")
    return _build(Persona, _merge(data, _read_user_file(source)) if source is not None else data, "")
