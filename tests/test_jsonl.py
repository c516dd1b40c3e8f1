"""The one line-numbered JSONL reader (penny_slm/jsonl.py) and the two drift loaders built on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penny_slm.errors import InputError
from penny_slm.jsonl import jsonl_objects
from penny_slm.pipeline.modules.drift import load_history
from penny_slm.training.drift_eval import load_streams


def test_line_numbers_count_blank_lines_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert jsonl_objects(path) == [(1, {"a": 1}), (4, {"a": 2})]


@pytest.mark.parametrize(("content", "message"), [
    ('{"a": 1}\n\n{not json\n', ":3: not valid JSON"),
    ('{"a": 1}\n[1, 2]\n', ":2: expected a JSON object"),
    ("\n\n", ": no rows"),
])
def test_a_bad_line_names_the_file_and_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=f"b.jsonl{message}"):
        jsonl_objects(path)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        jsonl_objects(tmp_path / "nope.jsonl")
    (tmp_path / "latin.jsonl").write_bytes(b'{"a": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        jsonl_objects(tmp_path / "latin.jsonl")


def test_drift_history_and_streams_report_the_line_of_a_bad_row(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text(json.dumps({"user": "hi", "response": "hello"}) + "\n\n" + json.dumps({"user": "x"}) + "\n")
    with pytest.raises(InputError, match=r"h.jsonl:3: expected \{\"user\": str, \"response\": str\}; got keys \['user'\]"):
        load_history(history)
    history.write_text(json.dumps({"user": "hi", "response": 3}) + "\n")
    with pytest.raises(InputError, match="h.jsonl:1: user and response must be strings"):
        load_history(history)
    history.write_text("\n")
    with pytest.raises(InputError, match="h.jsonl: no turns"):
        load_history(history)
    streams = tmp_path / "s.jsonl"
    good = {"stream_id": "a", "turns": [{"user": "u", "response": "r"}], "drift": {"type": "tone", "onset": 0}}
    streams.write_text(json.dumps(good) + "\n" + json.dumps({**good, "turns": ["not a turn"]}) + "\n")
    with pytest.raises(InputError, match="s.jsonl:2: expected stream_id"):
        load_streams(streams)
    streams.write_text(json.dumps(good) + "\n")
    assert load_streams(streams) == [good]
    streams.write_text("")
    with pytest.raises(InputError, match="s.jsonl: no streams"):
        load_streams(streams)
