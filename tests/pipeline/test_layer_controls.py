"""The learning controls through the layer: safe mode in every turn (the kill switch), learning off by config,
PreferenceUpdates on their way to the profile, and no network connection but to the endpoints the user configured."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from penny_slm.config import load_config
from penny_slm.errors import NotLoadedError
from penny_slm.pipeline.layer import SLMLayer
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.modules.guard import SAFE_MODE
from penny_slm.results import ContextUpdate, PreferenceUpdate

ROOT = Path(__file__).resolve().parents[2]
NO_MODELS = {"research_classifier": {"enabled": False}, "personality_guard": {"enabled": False}}
ANSWER = "The loop skips the last item; use `range(len(xs))` instead."
GUSHING = f"Oh my gosh, you're amazing, I'm so incredibly proud of you!! {ANSWER} Keep shining, superstar, nobody does it better."


def _config(tmp_path: Path, **blocks: object) -> Path:
    path = tmp_path / "slm_config.json"
    path.write_text(json.dumps(blocks))
    return path


def _learned(layer: SLMLayer, user: str) -> list[tuple[str, str]]:
    assert layer.sync is not None
    layer.sync.process_queue()
    return [(e.key, e.action) for e in layer.controls.log(user)]


def test_the_kill_switch_puts_every_turn_in_safe_mode_until_resumed(models_env: Path, tmp_path: Path) -> None:
    layer = SLMLayer(sqlite_path=tmp_path / "p.db").load()
    normal = asyncio.run(layer.process("cj", "why does my loop skip the last item?", llm=lambda s, m: GUSHING))
    assert not normal.safe_mode and normal.guard.result.rewrite_status == "trimmed"
    assert ("recent_topic", "applied") in _learned(layer, "cj")
    learned_before = len(_learned(layer, "cj"))

    layer.controls.kill("testing")
    turn = asyncio.run(layer.process("cj", "why does my loop skip the last item?", llm=lambda s, m: GUSHING))
    guard = turn.guard.result
    assert turn.safe_mode and guard.rewrite_status == SAFE_MODE and "cheerleader_tone" in guard.violations_detected
    assert "excess_exclamation" in guard.violations_detected and "!!" not in turn.final_response  # the rules still fix
    assert "superstar" in turn.final_response  # no trim, no rewrite
    assert len(_learned(layer, "cj")) == learned_before  # nothing learned, nothing queued
    runs = layer.store.ModuleRun.select().count()  # type: ignore[union-attr]
    assert runs >= 8  # module runs are still recorded
    layer.close()

    restarted = SLMLayer(sqlite_path=tmp_path / "p.db").load()  # the switch survives a restart
    assert asyncio.run(restarted.process("cj", "hi", llm=lambda s, m: "Hello.")).safe_mode
    restarted.controls.resume()
    after = asyncio.run(restarted.process("cj", "why does my loop skip the last item?", llm=lambda s, m: GUSHING))
    assert not after.safe_mode and after.guard.result.rewrite_status == "trimmed"
    restarted.close()

    configured = SLMLayer(load_config(_config(tmp_path, learning={"kill_switch": True})), sqlite_path=tmp_path / "q.db").load()
    turn = asyncio.run(configured.process("cj", "why does my loop skip the last item?", llm=lambda s, m: GUSHING))
    assert turn.safe_mode and turn.guard.result.rewrite_status == SAFE_MODE and _learned(configured, "cj") == []
    assert configured.controls.resume().safe_mode  # the config flag holds until the config changes
    configured.close()


def test_learning_off_in_the_config_learns_nothing_and_keeps_the_guard(tmp_path: Path) -> None:
    layer = SLMLayer(load_config(_config(tmp_path, models=NO_MODELS, learning={"enabled": False})), sqlite_path=tmp_path / "p.db")
    with pytest.raises(NotLoadedError, match="before load"):
        layer.controls  # noqa: B018
    layer.load()
    turn = asyncio.run(layer.process("cj", "hi there", llm=lambda s, m: "Hello."))
    assert not turn.safe_mode and turn.to_dict()["safe_mode"] is False
    assert _learned(layer, "cj") == [] and layer.store.ModuleRun.select().count() == 2  # type: ignore[union-attr]
    assert layer.controls.status().learning is False
    layer.close()


def test_preference_updates_reach_the_profile_through_the_controls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = SLMLayer(load_config(_config(tmp_path, models=NO_MODELS, learning={"log_message_text": "excerpt"})),
                     sqlite_path=tmp_path / "p.db").load()
    queue: list[tuple[PreferenceUpdate, ...]] = [
        (PreferenceUpdate("formality_level", None, 0.4, "could you kindly", "", 0.8, "tracker-v2"),),
        (PreferenceUpdate("formality_level", 0.4, 0.95, "Dear Penny", "", 0.9),
         PreferenceUpdate("slang:bussin", None, {"gloss": "very good", "adopt": True}, "this is bussin", "", 0.9)),
    ]

    def run(turn: TurnContext) -> ContextUpdate:
        return ContextUpdate((), None, {}, None, None, queue.pop(0), "test tracker")

    monkeypatch.setattr(layer.modules["context"], "run", run)
    first = asyncio.run(layer.process("cj", "could you kindly explain closures?", llm=lambda s, m: "Sure."))
    asyncio.run(layer.process("cj", "Dear Penny, this is bussin, explain monads", llm=lambda s, m: "Sure."))
    assert _learned(layer, "cj") == [("formality_level", "applied"), ("recent_topic", "applied"), ("profile_version", "version"),
                                     ("formality_level", "awaiting_approval"), ("slang:bussin", "awaiting_approval"),
                                     ("recent_topic", "applied")]
    log = layer.controls.log("cj")  # read after _learned drained the writer's queue: before, it can be partial
    assert log[0].evidence == "could you kindly" and log[0].model_version == "tracker-v2" and log[0].message_id
    assert log[1].evidence == "could you kindly explain closures?"  # a dict update's evidence is the message
    assert first.context.result.updates[0].key == "formality_level"
    assert [p.key for p in layer.controls.pending("cj")] == ["formality_level", "slang:bussin"]
    assert layer.sync is not None and layer.sync.get_latest_context("cj").dimensions["formality_level"] == 0.4
    layer.close()


EGRESS = r'''
import asyncio, json, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

allowed, seen, violations = set(), [], []


def audit(event, args):
    if event == "socket.connect":
        address = args[1]
        target = (address[0], address[1]) if isinstance(address, tuple) else address
        if target in allowed:
            seen.append(list(target))
        else:
            violations.append(["connect", repr(target)])
            raise PermissionError(f"egress test: connection to {target!r} refused")
    elif event == "socket.getaddrinfo":
        if args[0] not in ("127.0.0.1", b"127.0.0.1"):
            violations.append(["getaddrinfo", repr(args[0])])
            raise PermissionError(f"egress test: name lookup of {args[0]!r} refused")


sys.addaudithook(audit)  # from here on, every connection attempt of this process is checked


class Search(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = json.dumps({"results": [{"title": "BTC", "content": "Bitcoin at 97,000 USD", "url": "https://ex.org/btc"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Llm(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ("It is ", "about 97,000 dollars."):
            self.wfile.write(f"data: {json.dumps({'choices': [{'delta': {'content': piece}, 'finish_reason': None}]})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for handler in (Search, Llm)]
for srv in servers:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    allowed.add(("127.0.0.1", srv.server_address[1]))
search_port, llm_port = (srv.server_address[1] for srv in servers)
config_path, db_path = sys.argv[1], sys.argv[2]
with open(config_path, "w") as f:
    json.dump({"runtime": {"searxng_url": f"http://127.0.0.1:{search_port}", "main_llm": "local-llm"},
               "slm_models": {"local-llm": {"adapter": "openai-compatible", "base_url": f"http://127.0.0.1:{llm_port}/v1",
                                            "model": "local"}}}, f)

from pathlib import Path
from penny_slm import SLMLayer, load_config  # imported under the hook too

layer = SLMLayer(load_config(config_path), sqlite_path=Path(db_path)).load()  # model loading, the database, the writer
injected = lambda system_prompt, message: "*grins* Great question!! Bitcoin moves fast, CJ. Check an exchange, CJ."
turns = []
for message in ("hey penny, explain what a python decorator is", "what's the bitcoin price right now",
                "ugh, today was long", "who won the match last night?", "thanks. what's 15% of 240?"):
    turns.append(asyncio.run(layer.process("cj", message, llm=injected)))
turns.append(asyncio.run(layer.process("cj", "what's the bitcoin price right now")))  # the configured main LLM
layer.controls.kill("egress test")
turns.append(asyncio.run(layer.process("cj", "what's the bitcoin price right now", llm=injected)))
layer.controls.resume()
layer.sync.process_queue()
exported = layer.controls.export("cj")
layer.controls.rollback("cj", 1)
layer.controls.delete("cj")
layer.close()

negative = []
probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
probe.settimeout(0.5)
for attempt in (lambda: probe.connect(("192.0.2.1", 443)), lambda: socket.getaddrinfo("example.com", 443)):
    try:
        attempt()
    except PermissionError as exc:
        negative.append(str(exc))
probe.close()
caught = violations[-2:]
print(json.dumps({"violations": violations[:-2], "negative": negative, "caught": caught, "seen": seen,
                  "notes": [t.research_notes for t in turns], "llm": [t.llm.status for t in turns],
                  "final": turns[5].final_response, "safe": [t.safe_mode for t in turns], "log": len(exported["log"])}))
'''


def test_a_whole_conversation_makes_no_connection_but_to_the_configured_endpoints(models_env: Path, tmp_path: Path) -> None:
    """A subprocess (audit hooks cannot be removed) loads the layer and its models, talks through seven turns (an
    injected LLM, the configured main LLM endpoint, the configured search service, safe mode), builds, exports,
    rolls back and deletes the profile, all under an audit hook that refuses and records any connection or name
    lookup other than the two local endpoints it configured. The hook is shown to work by two refused attempts at
    the end."""
    env = {k: v for k, v in os.environ.items() if k != "PENNY_DB_URL"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", EGRESS, str(tmp_path / "cfg.json"), str(tmp_path / "p.db")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["violations"] == []
    assert [kind for kind, _ in report["caught"]] == ["connect", "getaddrinfo"] and len(report["negative"]) == 2
    ports = {port for _, port in report["seen"]}
    assert len(ports) == 2  # both configured endpoints were really used (the hook saw them)
    assert any("Bitcoin at 97,000 USD" in notes for notes in report["notes"])
    assert report["llm"] == ["ok"] * 7 and "97,000" in report["final"]
    assert report["safe"] == [False] * 6 + [True] and report["log"] > 0
