"""Small fixture files for the importer tests: the upstream files a public source would hold, written by hand."""

from __future__ import annotations

from pathlib import Path


def write(tmp: Path, rel: str, text: str) -> Path:
    """``text`` at ``tmp/rel`` (folders made as needed), UTF-8; its path."""
    path = tmp / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
