"""``penny-slm profile ...``, ``kill`` and ``resume`` on SQLite and PostgreSQL: JSON and text output, exit codes,
one-line errors, and ``demo --controls``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from penny_slm.cli import main
from penny_slm.pipeline import db
from penny_slm.pipeline.controls import LearningControls
from penny_slm.pipeline.sync import ContextSyncManager

Opener = Callable[[], db.PersonalityDB]


def _where(database_url: str) -> str:
    return database_url.removeprefix("sqlite:///")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _populate(store: db.PersonalityDB) -> None:
    sync = ContextSyncManager(store)
    for values in ({"formality_level": 0.5, "humour": "dry"}, {"formality_level": 0.55}, {"formality_level": 0.95},
                   {"persona.max_exclamations": 2}):
        sync.queue_updates([*(("context", {"kind": "dimension", "user_id": "cj", "key": k, "value": v, "message_id": "m",
                                           "evidence": "the message"}, None) for k, v in values.items()),
                            ("context", {"kind": "snapshot", "user_id": "cj"}, None)])
    sync.queue_update("context", {"kind": "slang", "user_id": "cj", "term": "rizz", "gloss": "charm"})
    sync.process_queue()


def test_profile_commands(open_store: Opener, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store()
    _populate(store)
    where = _where(database_url)
    shown = _json(capsys, "profile", "show", "--user", "cj", "--db", where)
    assert shown["version"] == 2 and shown["dimensions"] == {"formality_level": 0.55, "humour": "dry"}
    assert shown["awaiting_approval"] == 2 and shown["slang"]["rizz"]["gloss"] == "charm" and shown["controls"]["learning"]
    code, out, _ = _run(capsys, "profile", "show", "--user", "cj", "--db", where)
    assert code == 0 and out.startswith("cj: profile v2, 2 awaiting approval") and "humour = 'dry'" in out

    log = _json(capsys, "profile", "log", "--user", "cj", "--db", where)
    assert [e["action"] for e in log].count("awaiting_approval") == 2 and log[0]["evidence"] == "the message"
    assert len(_json(capsys, "profile", "log", "--user", "cj", "--db", where, "--limit", "2")) == 2
    code, out, _ = _run(capsys, "profile", "log", "--user", "cj", "--db", where)
    assert code == 0 and "formality_level 0.55 -> 0.95  awaiting_approval: change #1" in out
    assert [v["version"] for v in _json(capsys, "profile", "versions", "--user", "cj", "--db", where)] == [1, 2]

    pending = _json(capsys, "profile", "pending", "--user", "cj", "--db", where)
    assert [(p["id"], p["key"]) for p in pending] == [(1, "formality_level"), (2, "persona.max_exclamations")]
    code, out, _ = _run(capsys, "profile", "pending", "--user", "cj", "--db", where)
    assert out.startswith("#1 formality_level 0.55 -> 0.95  awaiting_approval (expires ")
    approved = _json(capsys, "profile", "approve", "1", "--user", "cj", "--db", where)
    assert approved == {"change_id": 1, "requested": "approve", "state": "approved", "changed": True, "detail": "change #1 approved"}
    code, out, _ = _run(capsys, "profile", "approve", "#1", "--user", "cj", "--db", where)
    assert code == 0 and out.strip() == "change #1 was already approved (nothing changed)"
    assert _json(capsys, "profile", "reject", "2", "--user", "cj", "--db", where)["state"] == "rejected"
    assert _json(capsys, "profile", "pending", "--user", "cj", "--db", where) == []
    assert len(_json(capsys, "profile", "pending", "--all", "--user", "cj", "--db", where)) == 2

    code, out, _ = _run(capsys, "profile", "rollback", "v1", "--user", "cj", "--db", where)
    assert code == 0 and out.strip() == "cj: restored v1 as v4"
    assert _json(capsys, "profile", "show", "--user", "cj", "--db", where)["dimensions"]["formality_level"] == 0.5

    exported = _json(capsys, "profile", "export", "--user", "cj", "--db", where)
    assert exported["user_id"] == "cj" and len(exported["versions"]) == 4
    assert exported["slang"] == [] and "slang:rizz" in {e["key"] for e in exported["log"]}  # learned after v1: rolled back
    code, _, err = _run(capsys, "profile", "delete", "--user", "cj", "--db", where)
    assert code == 2 and "add --yes" in err and err.count("\n") == 1
    report = _json(capsys, "profile", "delete", "--yes", "--user", "cj", "--db", where)
    assert report["rows"]["user"] == 1 and report["vacuumed"]
    after = _json(capsys, "profile", "export", "--user", "cj", "--db", where)
    assert after["user"] is None and after["log"] == after["versions"] == after["slang"] == after["queued_updates"] == []

    killed = _json(capsys, "kill", "--reason", "testing", "--db", where)
    assert killed["safe_mode"] and killed["reason"] == "testing"
    other = open_store()
    assert LearningControls(other, ContextSyncManager(other)).safe_mode()  # another connection (process) sees it
    code, out, _ = _run(capsys, "profile", "show", "--user", "cj", "--db", where)
    assert "SAFE MODE: learning and generative rewriting stopped (kill switch since" in out and "(testing)" in out
    code, out, _ = _run(capsys, "resume", "--db", where)
    assert code == 0 and out.startswith("learning on; generative rewriting on")


@pytest.mark.parametrize(("argv", "fragment"), [
    (["profile", "show"], "the following arguments are required: --user"),
    (["profile", "show", "--user", " "], "--user must name a user"),
    (["profile", "rollback", "vX", "--user", "cj"], "version must be a number"),
    (["profile", "rollback", "7", "--user", "cj"], "no profile version 7; versions: none yet"),
    (["profile", "approve", "abc", "--user", "cj"], "change id must be a number"),
    (["profile", "approve", "9", "--user", "cj"], "has no change #9"),
    (["profile", "log", "--limit", "0", "--user", "cj"], "expected a positive whole number"),
    (["profile", "delete", "--user", "cj"], "add --yes"),
    (["profile", "frobnicate", "--user", "cj"], "invalid choice"),
    (["kill", "--user", "cj"], "unrecognized arguments: --user"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    db.open_sqlite(tmp_path / "p.db").close()
    code, out, err = _run(capsys, *argv, "--db", str(tmp_path / "p.db"))
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("penny-slm: error: ")
    assert fragment in err, err


def test_the_default_database_and_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PENNY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PENNY_DB_URL", raising=False)
    code, _, err = _run(capsys, "profile", "show", "--user", "cj")
    assert code == 2 and "no personality database at" in err and "personality.db" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "profile", "show", "--user", "cj", "--db", str(tmp_path / "typo.db"))
    assert code == 2 and "typo.db" in err and not (tmp_path / "typo.db").exists()  # never created by a read
    assert _json(capsys, "kill")["safe_mode"]  # the kill switch works before Penny ever ran: it creates the database
    assert (tmp_path / "data" / "personality.db").is_file()
    assert _json(capsys, "profile", "show", "--user", "cj")["controls"]["safe_mode"]
    assert not _json(capsys, "resume")["safe_mode"]


def test_demo_controls(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "demo", "--controls")
    assert code == 0
    for seen in ("formality_level: clipped", "formality_level: awaiting_approval", "slang:bussin: awaiting_approval",
                 "approve #1: change #1 approved", "rollback to v1: now v5, formality_level 0.5",
                 "kill switch: safe_mode=True learning=False; a new update is blocked", "resume: safe_mode=False",
                 "transparency log:"):
        assert seen in out, seen
