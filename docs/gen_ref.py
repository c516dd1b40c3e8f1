"""MkDocs hook: fills the generated parts of the docs from the code, so they cannot drift from it.

A page asks for a part with a marker line; the hook replaces it when the site is built:

- ``<!-- generated: config -->``: every key of ``slm_config.json`` (the dataclasses in
  ``penny_slm/config.py``, the modules' and adapters' ``__init__`` arguments), with type, default, allowed range;
- ``<!-- generated: cli -->``: the help of every ``penny-slm`` command, from ``penny_slm.cli.build_parser``;
- ``<!-- generated: sources -->``: every public source in ``sources.json``: licence, task and role, importer.

Run ``python docs/gen_ref.py config|cli|sources`` to print one part.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import os
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, not another install of penny_slm

from penny_slm import config as config_module  # noqa: E402
from penny_slm.cli import build_parser  # noqa: E402
from penny_slm.pipeline import factory  # noqa: E402

MARKER = "<!-- generated: {} -->"


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return "object" if dataclasses.is_dataclass(tp) else tp.__name__
    return str(tp).replace("typing.", "").replace("pathlib.", "")


def _field_docs(cls: type) -> dict[str, str]:
    """Each field's attribute docstring, else its trailing ``# comment`` (what the source says about it)."""
    source = inspect.getsource(cls)
    lines = source.splitlines()
    body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, [*body[1:], None]):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(after.value.value.split())
        elif "  # " in lines[node.lineno - 1]:
            docs[node.target.id] = lines[node.lineno - 1].split("  # ", 1)[1].strip()
    return docs


def _default(value: Any) -> str:
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def _range(name: str) -> str:
    if name not in config_module._RANGES:
        return ""
    return config_module._RANGES[name][1].removeprefix("must be ")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _dataclass_rows(cls: type, prefix: str) -> list[str]:
    rows: list[str] = []
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows += _dataclass_rows(tp, f"{prefix}{f.name}.")  # type: ignore[arg-type]
            continue
        if f.name in ("models", "slm_models"):
            continue  # their own sections below
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append(f"| `{prefix}{f.name}` | `{_type_name(tp)}` | {_default(default)} | {_range(f.name)} "
                    f"| {_cell(docs.get(f.name, ''))} |")
    return rows


def _init_rows(cls: type, skip: set[str]) -> list[str]:
    hints = typing.get_type_hints(cls.__init__)
    rows = []
    for name, param in inspect.signature(cls).parameters.items():
        if name in skip or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        default = "required" if param.default is param.empty else _default(param.default)
        rows.append(f"| `{name}` | `{_type_name(hints.get(name, Any))}` | {default} | {_range(name)} |")
    return rows


HEADER = "| key | type | default | allowed | meaning |\n|---|---|---|---|---|"
SHORT_HEADER = "| key | type | default | allowed |\n|---|---|---|---|"


def config_reference() -> str:
    packaged = config_module._packaged("slm_config.json")
    out = ["### Sections `orchestration`, `resource_management`, `runtime`, `learning`", "",
           "Key paths are dotted here; in the file each level is a JSON object.", "", HEADER,
           *_dataclass_rows(config_module.SLMConfig, ""), ""]
    out += ["### `models`: one block per module", "",
            ("Every block takes the keys the orchestrator reads; every other key is an argument of the module's "
            "`__init__`. A block other than the framework's four must name its `module`."), "",
            SHORT_HEADER,
            "| `module` | `str` | the block's framework module | a registered module name |",
            "| `enabled` | `bool` | `true` |  |",
            f"| `inference_timeout` | `float` | `{config_module.DEFAULT_MODULE_TIMEOUT}` | {_range('inference_timeout')} |", ""]
    injected = set(factory._injected(config_module.SLMConfig(), None)) | {"self"}
    for block, module_name in config_module.FRAMEWORK_MODULES.items():
        if module_name not in factory.modules.names():
            out += [f"#### `{block}`", "", f"Module `{module_name}` is not built yet: keep `enabled: false`.", ""]
            continue
        cls = factory.modules.get(module_name)
        shipped = {k: v for k, v in packaged["models"].get(block, {}).items() if k not in config_module.ENTRY_KEYS}
        out += [f"#### `{block}` (module `{module_name}`, `{cls.__module__}.{cls.__qualname__}`)", ""]
        rows = _init_rows(cls, injected)
        out += [SHORT_HEADER, *rows] if rows else ["No settings of its own."]
        if shipped:
            out += ["", f"The packaged defaults set: `{json.dumps(shipped)}`."]
        out.append("")
    out += ["### `slm_models`: one entry per generative model", "",
            ("Each entry names an `adapter` and either `artifact` (a model `penny-slm models build` registers) or "
            "`path` (a folder you provide); every other key is an argument of the adapter's `__init__`."), ""]
    for name in factory.adapters.names():
        cls = factory.adapters.get(name)
        out += [f"#### adapter `{name}` (`{cls.__module__}.{cls.__qualname__}`)", "", SHORT_HEADER,
                *_init_rows(cls, {"self", "name", "providers"}), ""]
    out += ["#### Entries in the packaged defaults", "", "| name | entry |", "|---|---|"]
    out += [f"| `{name}` | `{json.dumps(entry)}` |" for name, entry in packaged["slm_models"].items()]
    return "\n".join(out) + "\n"


def _commands(parser: argparse.ArgumentParser, words: list[str]) -> list[tuple[list[str], argparse.ArgumentParser]]:
    found = [(words, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, [*words, name])
    return found


def cli_reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width; make the page the same everywhere
    out = []
    for words, parser in _commands(build_parser(), ["penny-slm"]):
        parser.prog = " ".join(words)
        title = " ".join(words)
        out += [f"### `{title}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(out)


DATA = ROOT / "penny_slm" / "training" / "data"


def sources() -> str:
    manifest = json.loads((DATA / "sources.json").read_text(encoding="utf-8"))
    out = ["| source | licence | feeds (task: role) | importer |", "|---|---|---|---|"]
    for source in manifest["sources"]:
        uses = ", ".join(f"{task}: {role}" for task, role in source["uses"].items())
        importer = f"`{source['importer']}`" if source.get("importer") else "none yet (not used)"
        out.append(f"| `{source['name']}` ({source['title']}) | {source['licence']} | {uses} | {importer} |")
    return "\n".join(out) + "\n"


PARTS = {"config": config_reference, "cli": cli_reference, "sources": sources}


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    """MkDocs calls this for every page: replace each marker with its part."""
    for name, make in PARTS.items():
        if MARKER.format(name) in markdown:
            markdown = markdown.replace(MARKER.format(name), make())
    return markdown


if __name__ == "__main__":
    print(PARTS[sys.argv[1]]())
