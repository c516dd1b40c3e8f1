"""Importers: one small function per public source, mapping its cached files to labelled rows.

An importer is ``(source, files) -> Iterator[dict]``: ``files`` maps each pinned path to its verified local
file (``sources.cached``), and every row is ``{"text": str, <task labels>..., "source": name}``. Its
docstring names the source's licence and its label rule (docs/DATA.md). A row counts for
a task when it carries one of that task's label keys (``LABEL_KEYS``), so one importer can feed several
tasks. Importers are looked up by the name in the manifest's ``importer`` field, in ``IMPORTERS``, which
:func:`populate` fills on first use (no registration happens at import time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from penny_slm.errors import DataSourceError, RegistryError
from penny_slm.training.sources import ROLES, TASKS, Manifest, Source, cached, load_manifest

Row = dict[str, Any]
Importer = Callable[[Source, dict[str, Path]], Iterator[Row]]

LABEL_KEYS: dict[str, tuple[str, ...]] = {
    "research": ("needs_research", "category"),
    "guard": ("cheerleader", "violations"),
    "mood": ("mood",),
    "formality": ("formality",),
    "depth": ("technical_depth",),
    "slang": ("slang",),
    "attachment": ("over_attachment",),
}
"""The label keys of each task, as the eval files name them (the framework's contracts; the tone files' ``cheerleader``)."""


class ImporterRegistry:
    """Name → importer, filled by :func:`populate` on first lookup; a miss lists the registered names."""

    def __init__(self) -> None:
        self._items: dict[str, Importer] = {}

    def register(self, name: str) -> Callable[[Importer], Importer]:
        """A decorator that adds an importer under ``name`` (a later one replaces it)."""
        def add(fn: Importer) -> Importer:
            self._items[name] = fn
            return fn
        return add

    def unregister(self, name: str) -> None:
        """Remove an importer if present (tests register their own)."""
        self._items.pop(name, None)

    def get(self, name: str) -> Importer:
        """The importer registered under ``name``; ``RegistryError`` lists the known names otherwise."""
        populate()
        if name not in self._items:
            raise RegistryError(f"unknown importer '{name}'; registered: {', '.join(sorted(self._items)) or 'none'}")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        populate()
        return name in self._items

    def names(self) -> list[str]:
        """Every registered importer name, sorted."""
        populate()
        return sorted(self._items)


IMPORTERS = ImporterRegistry()
_populated = False
_populate_lock = threading.Lock()


def populate() -> None:
    """The one place the built-in importers are registered (spaCy's ``register_factories()`` pattern).

    Each module of this package keeps a ``BY_SOURCE`` map (the manifest's importer name → a function of the
    source's files).
    """
    global _populated
    with _populate_lock:
        if _populated:
            return
        _populated = True
        from penny_slm.training.importers import attachment, cheer, context, guard, register, research

        for name, fn in {**research.BY_SOURCE, **guard.BY_SOURCE, **cheer.BY_SOURCE, **context.BY_SOURCE,
                         **register.BY_SOURCE}.items():
            IMPORTERS.register(name)(_files_only(_chain(fn, attachment.BY_SOURCE.get(name))))
        IMPORTERS.register("model-spec")(_files_only(_model_spec))


def _model_spec(files: dict[str, Path]) -> Iterator[Row]:
    """OpenAI Model Spec (CC0-1.0): its user prompts for research (hand-labelled) and its assistant examples
    for the guard (hand-labelled)."""
    from penny_slm.training.importers import guard, research

    yield from research.model_spec(files)
    yield from guard.importer("model-spec")(files)


def _chain(first: Callable[[dict[str, Path]], Iterator[Row]],
           then: Callable[[dict[str, Path]], Iterator[Row]] | None) -> Callable[[dict[str, Path]], Iterator[Row]]:
    """One importer from a source's rows for one set of tasks followed by its rows for another (a source that feeds
    the guard or the mood head and the attachment head)."""
    if then is None:
        return first

    def both(files: dict[str, Path]) -> Iterator[Row]:
        yield from first(files)
        yield from then(files)
    both.__doc__ = f"{first.__doc__}\n\nThen, for the over-attachment head: {then.__doc__}"
    return both


def _files_only(fn: Callable[[dict[str, Path]], Iterator[Row]]) -> Importer:
    """An importer that needs only the files, not the manifest entry."""
    def importer(source: Source, files: dict[str, Path]) -> Iterator[Row]:
        return fn(files)
    importer.__doc__ = fn.__doc__
    return importer


def import_source(source: Source, files: dict[str, Path]) -> list[Row]:
    """Run the source's importer and check its rows: a string ``text`` each, ``source`` set to the source's name."""
    if not source.importer:
        raise DataSourceError(f"sources -> {source.name} -> importer", "this source has no importer yet")
    out = []
    for n, row in enumerate(IMPORTERS.get(source.importer)(source, files), 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise DataSourceError(f"importer {source.importer}", f"row {n} of {source.name} has no non-empty 'text' string")
        row["source"] = source.name
        out.append(row)
    return out


def for_task(rows: Sequence[Row], task: str) -> list[Row]:
    """The rows that carry a label of ``task``."""
    keys = LABEL_KEYS[task]
    return [r for r in rows if any(k in r for k in keys)]


def rows(task: str, roles: Sequence[str] = ("train",), manifest: Manifest | None = None) -> tuple[list[Row], dict[str, str]]:
    """The rows of every cached source whose role for ``task`` is in ``roles``, and what happened to each such
    source (``"used N rows"``, ``"not cached"``, ``"no importer"``), so a build can say what it trained on."""
    return rows_by_task((task,), roles, manifest)[task]


def rows_by_task(tasks: Sequence[str] = TASKS, roles: Sequence[str] = ("train",),
                 manifest: Manifest | None = None) -> dict[str, tuple[list[Row], dict[str, str]]]:
    """:func:`rows` for several tasks at once, running each source's importer once however many tasks it feeds."""
    for given, valid, what in ((tasks, TASKS, "task"), (roles, ROLES, "role")):
        unknown = [x for x in given if x not in valid]
        if unknown:
            raise DataSourceError(what, f"unknown {what} {unknown[0]!r}; {what}s: {', '.join(valid)}")
    manifest = manifest or load_manifest()
    out: dict[str, tuple[list[Row], dict[str, str]]] = {task: ([], {}) for task in tasks}
    for source in manifest.sources:
        mine = [task for task in tasks if source.role(task) in roles]
        if not mine:
            continue
        state, files = status(source)
        imported = import_source(source, files) if files is not None else []
        for task in mine:
            task_rows = for_task(imported, task)
            out[task][0].extend(task_rows)
            out[task][1][source.name] = f"used {len(task_rows)} rows" if files is not None else state
    return out


def status(source: Source) -> tuple[str, dict[str, Path] | None]:
    """``("ready", files)`` when the source is cached and its importer registered; else why not, and ``None``."""
    files = cached(source)
    if files is None:
        return "not cached", None
    if not source.importer:
        return "no importer", None
    if source.importer not in IMPORTERS:
        return f"importer '{source.importer}' is not registered", None
    return "ready", files


def row_counts(source: Source) -> dict[str, int] | None:
    """Rows per task the source feeds, when it is cached and its importer is registered; else ``None``."""
    _state, files = status(source)
    if files is None:
        return None
    imported = import_source(source, files)
    return {task: len(for_task(imported, task)) for task in source.uses}
