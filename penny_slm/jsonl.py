"""The one line-numbered JSONL reader: every ``--data``/``--history`` file and packaged data file is read through it.

Run-time code (``pipeline``) and training code both use it, so it lives outside both (it imports only ``errors``).
A bad line raises ``InputError`` naming the file and the line (``FILE:N: ...``), so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from penny_slm.errors import InputError


def jsonl_objects(path: str | Path, *, what: str = "rows") -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line, numbered from 1 as an editor shows them; ``InputError`` names the
    file and line of any line that is not a JSON object, and the file when it is missing, not UTF-8 or has no rows
    (``what`` names them in that message: ``no turns``, ``no streams``)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise InputError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{n}: expected a JSON object")
        out.append((n, obj))
    if not out:
        raise InputError(f"{path}: no {what}")
    return out
