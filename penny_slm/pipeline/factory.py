"""THE extension point: a registry of adapters (one per runtime kind) and of modules, plus the SLM factory.

- Registration happens in one place, :func:`populate`, on first lookup (nothing registers as an
  import side effect). Third parties add entries through the entry-point groups
  ``penny_slm.adapters`` and ``penny_slm.modules``.
- Adding a model is a config entry in ``slm_models``; the adapter's ``__init__`` is its schema.
- Adding a module is one class (``modules.base.Module``) plus one ``models`` block; the module's
  ``__init__`` is the block's schema (:func:`build_modules`).
- :class:`SLMFactory` hands out one shared, lazily loaded instance per model name, unloads idle
  ones, and keeps the total size of loaded local models under ``resource_management.max_memory_mb``.
"""

from __future__ import annotations

import inspect
import threading
import typing
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from penny_slm.config import ENTRY_KEYS as MODULE_ENTRY_KEYS
from penny_slm.config import ModuleEntry, Persona, SLMConfig, coerce_value
from penny_slm.errors import ConfigError, ModelNotFoundError, RegistryError
from penny_slm.pipeline.model_registry import ModelRegistry


class Registry:
    """Name → class, filled by :func:`populate` on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """A class decorator that adds the class under ``name`` (a later registration of the same name replaces it)."""
        def add(cls: type) -> type:
            self._items[name] = cls
            return cls
        return add

    def get(self, name: str) -> type:
        """The class registered under ``name``; ``RegistryError`` lists the known names otherwise."""
        populate()
        if name not in self._items:
            raise RegistryError(f"unknown {self.kind} '{name}'; registered: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        """Every registered name, sorted (built-ins and entry points included)."""
        populate()
        return sorted(self._items)


adapters = Registry("adapter")
modules = Registry("module")
_populated = False
_populate_lock = threading.Lock()


def populate(*, rescan: bool = False) -> None:
    """Register the built-ins, then any entry points (spaCy's ``register_factories()`` pattern).
    ``rescan`` looks at the entry points again (a package installed after the first lookup)."""
    global _populated
    with _populate_lock:
        if _populated and not rescan:
            return
        _populated = True
        from penny_slm.pipeline.adapters.onnx_causal import OnnxCausalLM
        from penny_slm.pipeline.adapters.onnx_encoder import OnnxEncoder
        from penny_slm.pipeline.adapters.openai_compat import OpenAICompatible
        from penny_slm.pipeline.modules.context import ContextTracker
        from penny_slm.pipeline.modules.drift import DriftMonitor
        from penny_slm.pipeline.modules.guard import PersonalityGuard
        from penny_slm.pipeline.modules.research import ResearchClassifier

        adapters.register("onnx-encoder")(OnnxEncoder)
        adapters.register("onnx-causal")(OnnxCausalLM)
        adapters.register("openai-compatible")(OpenAICompatible)
        modules.register("research")(ResearchClassifier)
        modules.register("context")(ContextTracker)
        modules.register("guard")(PersonalityGuard)
        modules.register("drift")(DriftMonitor)
        for group, registry in (("penny_slm.adapters", adapters), ("penny_slm.modules", modules)):
            for ep in entry_points(group=group):
                registry.register(ep.name)(ep.load())


def _injected(cfg: SLMConfig, persona: Persona | None) -> dict[str, Any]:
    """What the layer hands every module that asks for it by parameter name (never a config key)."""
    return {"persona": persona, "execution_providers": cfg.execution_providers(),
            "intra_op_threads": cfg.runtime.intra_op_threads, "generator_threads": cfg.resource_management.cpu_threads}


def build_module(cfg: SLMConfig, entry: ModuleEntry, persona: Persona | None = None) -> Any:
    """The module a ``models`` block describes, constructed (not loaded). Its settings are checked against
    the module's ``__init__``: an unknown key names the valid ones, a wrong type or range names the path."""
    cls = modules.get(entry.module)
    where = f"models -> {entry.block}"
    params = inspect.signature(cls).parameters
    injected = _injected(cfg, persona)
    valid = sorted(p for p in params if p not in injected and p != "self")
    hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    kwargs: dict[str, Any] = {}
    for key, value in entry.options.items():
        if key not in valid:
            raise ConfigError(f"{where} -> {key}", f"unknown key; valid keys: {', '.join([*MODULE_ENTRY_KEYS, *valid])}")
        kwargs[key] = coerce_value(hints.get(key, type(value)), value, f"{where} -> {key}")
    kwargs.update({k: v for k, v in injected.items() if k in params and v is not None})
    return cls(**kwargs)


def module_from_config(cfg: SLMConfig, module: str, persona: Persona | None = None) -> Any:
    """The module ``module`` (a registered name) as its ``models`` block configures it, or with its defaults
    when no block builds it: for commands that use one module on its own (classify, guard, eval, bench)."""
    return build_module(cfg, cfg.module_entry(module) or ModuleEntry(module, module), persona)


def build_modules(cfg: SLMConfig, persona: Persona | None = None) -> list[tuple[ModuleEntry, Any]]:
    """Every enabled ``models`` block as ``(entry, module)``, in config order. Two blocks may not build the
    same module: a turn's outcomes are keyed by module name."""
    built: list[tuple[ModuleEntry, Any]] = []
    for entry in cfg.module_entries():
        if not entry.enabled:
            continue
        module = build_module(cfg, entry, persona)
        taken = [e.block for e, m in built if m.name == module.name]
        if taken:
            raise ConfigError(f"models -> {entry.block}", f"module '{module.name}' is already built by models -> {taken[0]}")
        built.append((entry, module))
    return built


ENTRY_KEYS = ("adapter", "artifact")
"""Keys the factory reads itself; every other key of an ``slm_models`` entry is an adapter argument."""


def adapter_kwargs(name: str, entry: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    """The adapter class and its keyword arguments, checked against its ``__init__`` signature."""
    where = f"slm_models -> {name}"
    cls = adapters.get(entry["adapter"])
    params = inspect.signature(cls).parameters
    valid = sorted(p for p in params if p not in ("name", "providers"))
    kwargs = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    for key in kwargs:
        if key not in valid:
            raise ConfigError(f"{where} -> {key}", f"unknown key; valid keys: {', '.join(valid)}")
    if "artifact" in entry and "path" in entry:
        raise ConfigError(where, "give either 'artifact' (built by penny-slm) or 'path', not both")
    return cls, kwargs


@dataclass(frozen=True, slots=True)
class SLMInfo:
    """One configured model as ``list_available`` reports it: its adapter, whether it could run, and whether it is loaded.
    """
    name: str
    adapter: str
    ready: bool  # local files present (endpoints: configured; reachability is checked on first call)
    detail: str
    loaded: bool


class SLMFactory:
    """``register_slm`` / ``get_slm`` / ``list_available`` as in the framework, over ``slm_models``."""

    def __init__(self, cfg: SLMConfig, registry: ModelRegistry | None = None) -> None:
        self.cfg = cfg
        self.registry = registry or ModelRegistry(cfg.models_dir())
        self.entries: dict[str, dict[str, Any]] = {k: dict(v) for k, v in cfg.slm_models.items()}
        self.idle_unload_s = cfg.runtime.idle_unload_s if cfg.resource_management.adaptive_scheduling else None
        self.max_memory_mb = cfg.resource_management.max_memory_mb
        self._loaded: dict[str, Any] = {}
        self._last_used: dict[str, float] = {}
        self._sizes_mb: dict[str, float] = {}
        self._lock = threading.Lock()
        for name, entry in self.entries.items():
            adapter_kwargs(name, entry)  # fail at start-up, not at first use

    def register_slm(self, name: str, adapter_class: type, **options: Any) -> None:
        """Add a model at run time: the entry, and the adapter class under its class name if it is new."""
        known = [n for n in adapters.names() if adapters.get(n) is adapter_class]
        kind = known[0] if known else adapter_class.__name__
        if not known:
            adapters.register(kind)(adapter_class)
        entry = {"adapter": kind, **options}
        adapter_kwargs(name, entry)
        self.entries[name] = entry

    def _local_path(self, name: str, entry: dict[str, Any]) -> Path | None:
        if "artifact" in entry:
            return self.registry.load(entry["artifact"]).path  # checksums verified here
        return Path(entry["path"]).expanduser() if "path" in entry else None

    def get_slm(self, name: str) -> Any:
        """The shared, loaded instance for ``name`` (loaded on first use)."""
        with self._lock:
            if name not in self.entries:
                raise RegistryError(f"unknown model '{name}'; configured: {', '.join(sorted(self.entries))}")
            if name in self._loaded:
                self._last_used[name] = time.monotonic()
                return self._loaded[name]
            entry = self.entries[name]
            cls, kwargs = adapter_kwargs(name, entry)
            path = self._local_path(name, entry)
            if path is not None:
                if not path.exists():
                    raise ModelNotFoundError(_missing_hint(name, path))
                kwargs["path"] = path
                size = sum(f.stat().st_size for f in path.glob("*.onnx")) / 1e6
                self._make_room(size)
                self._sizes_mb[name] = size
            params = inspect.signature(cls).parameters
            defaults = {"name": name, "providers": self.cfg.execution_providers(),
                        "n_threads": self.cfg.resource_management.cpu_threads}
            kwargs.update({k: v for k, v in defaults.items() if k in params and k not in kwargs})
            instance = cls(**kwargs)
            instance.load()
            self._loaded[name] = instance
            self._last_used[name] = time.monotonic()
            return instance

    def _make_room(self, size_mb: float) -> None:
        """Unload least-recently-used local models until ``size_mb`` more fits under the cap."""
        while self._loaded and sum(self._sizes_mb.get(n, 0.0) for n in self._loaded) + size_mb > self.max_memory_mb:
            self._unload(min(self._loaded, key=lambda n: self._last_used[n]))

    def _unload(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._last_used.pop(name, None)

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Drop models unused for ``runtime.idle_unload_s`` (never, with ``adaptive_scheduling`` off); returns
        their names. The layer calls it after every turn."""
        if self.idle_unload_s is None:
            return []
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [n for n, t in self._last_used.items() if now - t >= self.idle_unload_s]
            for name in idle:
                self._unload(name)
        return idle

    def list_available(self) -> list[SLMInfo]:
        """Every ``slm_models`` entry, checked without loading or contacting anything."""
        out = []
        for name, entry in sorted(self.entries.items()):
            if "artifact" in entry:
                version = self.registry.active_version(entry["artifact"])
                ready, detail = version is not None, f"artifact {entry['artifact']} {version or '(not built)'}"
            elif "path" in entry:
                path = Path(entry["path"]).expanduser()
                ready, detail = path.exists(), str(path)
            else:
                ready, detail = True, f"{entry.get('base_url', '')} model {entry.get('model', '')}".strip()
            out.append(SLMInfo(name, entry["adapter"], ready, detail, name in self._loaded))
        return out


def _missing_hint(name: str, path: Path) -> str:
    return (f"{name}: no model at {path}. Export one there with `optimum-cli export onnx --task "
            f"text-generation-with-past <hub id> {path}` on a machine with internet, or point "
            f"slm_models -> {name} at an OpenAI-compatible endpoint (adapter 'openai-compatible').")
