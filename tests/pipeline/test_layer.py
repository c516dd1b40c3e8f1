"""The integrated layer on real modules: orchestrator deadlines and fallbacks, prompt, guard, DB writes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from penny_slm.config import load_config
from penny_slm.pipeline import db
from penny_slm.pipeline.layer import LLM_APOLOGY, SLMLayer
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.orchestrator import SLMOrchestrator, SLMTask
from penny_slm.pipeline.research_provider import STALE_NOTICE, SearxngProvider
from penny_slm.results import ResearchClassification


def _config(tmp_path: Path, **blocks: object) -> Path:
    path = tmp_path / "slm_config.json"
    path.write_text(json.dumps(blocks))
    return path


@pytest.fixture()
def layer(models_env: Path, tmp_path: Path) -> Iterator[SLMLayer]:
    lay = SLMLayer(sqlite_path=tmp_path / "p.db").load()
    yield lay
    lay.close()


def test_orchestrator_runs_in_parallel_and_falls_back_on_a_hang() -> None:
    orch = SLMOrchestrator(load_config())
    tasks = [SLMTask("a", lambda: time.sleep(0.3) or "a", 2.0), SLMTask("b", lambda: time.sleep(0.3) or "b", 2.0),
             SLMTask("hang", lambda: time.sleep(3) or "late", 0.2, lambda reason: f"fallback ({reason})")]
    start = time.perf_counter()
    a, b, hang = asyncio.run(orch.run_parallel(tasks))
    assert time.perf_counter() - start < 0.6  # a and b overlapped; the hang did not hold the turn
    assert (a.status, a.result, b.result) == ("ok", "a", "b")
    assert hang.status == "fallback" and hang.result.startswith("fallback (timed out") and hang.error.startswith("timeout")
    orch.close()


def test_errors_fall_back_and_the_total_deadline_bounds_everything() -> None:
    orch = SLMOrchestrator(load_config())

    def boom() -> str:
        raise RuntimeError("model file vanished")

    (err,) = asyncio.run(orch.run_sequential([SLMTask("x", boom, 1.0, lambda reason: "safe")]))
    assert err.status == "fallback" and err.result == "safe" and "RuntimeError: model file vanished" in (err.error or "")
    outcomes = asyncio.run(orch.run_sequential([SLMTask("s1", lambda: time.sleep(0.3), 5.0),
                                                SLMTask("s2", lambda: time.sleep(0.3), 5.0, lambda r: "late")],
                                               deadline=time.monotonic() + 0.4))
    assert outcomes[0].status == "ok" and outcomes[1].status == "fallback"
    orch.close()


def test_no_fallback_on_timeout_when_configured_off(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, orchestration={"fallback_on_timeout": False}))
    orch = SLMOrchestrator(cfg)
    (out,) = asyncio.run(orch.run_parallel([SLMTask("hang", lambda: time.sleep(1), 0.1, lambda r: "fb")]))
    assert out.status == "timeout" and out.result is None
    orch.close()


def test_execution_plan_follows_enabled_modules(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, models={"context_tracker": {"enabled": False}}))
    plan = SLMOrchestrator(cfg).get_execution_plan("what's new with the mars rover")
    assert plan.parallel == ("research",) and plan.after == ("guard",) and plan.disabled == ("context",)
    assert SLMOrchestrator(cfg).get_execution_plan("   ").parallel == ()


def test_a_turn_with_an_injected_llm(layer: SLMLayer) -> None:
    seen = {}

    def llm(system_prompt: str, message: str) -> str:
        seen["prompt"], seen["message"] = system_prompt, message
        return "*grins* Great question!! Grab a coffee first. Bitcoin moves fast, CJ. Check an exchange, CJ."

    turn = asyncio.run(layer.process("cj", "what's the bitcoin price right now", llm=llm))
    assert turn.research.status == "ok" and turn.research.result.needs_research
    assert turn.research_notes == STALE_NOTICE and STALE_NOTICE in seen["prompt"]
    assert "Penny" in turn.system_prompt and seen["message"] == "what's the bitcoin price right now"
    assert turn.guard.status == "ok" and {"asterisk_action", "coffee_reference", "name_overuse"} <= set(turn.guard.result.violations_detected)
    assert turn.final_response == turn.guard.result.rewritten_response and "coffee" not in turn.final_response.lower()
    assert turn.context.result.context_markers["topic"] == "prices_markets" and "not built yet" in turn.context.result.note
    assert set(turn.timings_ms) >= {"pre_llm", "main_llm", "guard"} and turn.total_ms > 0
    layer.sync.stop()  # drain the writer
    profile = layer.sync.get_latest_context("cj")
    assert profile.dimensions["recent_topic"] == "prices_markets" and profile.pending_updates == 0
    assert {r.module for r in db.ModuleRun.select()} == {"research", "context", "llm", "guard"}


def test_a_hanging_llm_and_classifier_get_their_fallbacks(models_env: Path, tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, runtime={"main_llm_timeout": 0.3},
                              models={"research_classifier": {"inference_timeout": 0.05}}))
    layer = SLMLayer(cfg, sqlite_path=tmp_path / "p.db").load()
    assert layer.classifier is not None
    real_predict = layer.classifier.predict

    def slow_predict(text: str) -> ResearchClassification:
        time.sleep(0.5)
        return real_predict(text)

    layer.classifier.predict = slow_predict  # type: ignore[method-assign]
    turn = asyncio.run(layer.process("cj", "latest news on the election", llm=lambda s, m: time.sleep(3) or "late"))
    layer.close()
    assert turn.research.status == "fallback" and turn.research.result.needs_research  # keyword baseline: "latest", "news"
    assert "keyword" in turn.research.result.reasoning.lower() or "timed out" in turn.research.result.reasoning
    assert turn.llm.status == "fallback" and turn.final_response == LLM_APOLOGY
    assert turn.total_ms < 2000


def test_a_hanging_context_step_and_guard_get_their_fallbacks(models_env: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from penny_slm.pipeline import layer as layer_module

    def hang(*_args: object) -> None:
        time.sleep(1.0)

    cfg = load_config(_config(tmp_path, models={"context_tracker": {"inference_timeout": 0.05},
                                                "personality_guard": {"inference_timeout": 0.05}}))
    monkeypatch.setattr(layer_module, "_measure_context", hang)
    layer = SLMLayer(cfg, sqlite_path=tmp_path / "p.db").load()
    assert layer.guard is not None
    monkeypatch.setattr(layer.guard, "predict", hang)
    turn = asyncio.run(layer.process("cj", "explain recursion", llm=lambda s, m: "*grins* Recursion calls itself!!! CJ, CJ."))
    layer.close()
    assert turn.context.status == "fallback" and turn.context.result.updates == () and "timed out" in turn.context.result.note
    assert turn.guard.status == "fallback" and "tone not checked" in turn.guard.result.rewrite_status
    assert turn.final_response == "Recursion calls itself! CJ."  # rules only: the absolute prohibitions are still fixed


def test_disabled_modules_are_not_loaded(models_env: Path, tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, models={"research_classifier": {"enabled": False}, "personality_guard": {"enabled": False}}))
    layer = SLMLayer(cfg, sqlite_path=tmp_path / "p.db").load()
    turn = asyncio.run(layer.process("cj", "hi there", llm=lambda s, m: "Hello!! CJ CJ"))
    layer.close()
    assert layer.classifier is None and layer.guard is None
    assert turn.research.status == "disabled" and turn.guard.status == "disabled" and turn.final_response == "Hello!! CJ CJ"


def test_a_real_turn_with_the_local_slm(slm_registry: ModelRegistry, models_env: Path, tmp_path: Path) -> None:
    layer = SLMLayer(sqlite_path=tmp_path / "p.db").load()
    turn = asyncio.run(layer.process("cj", "explain what a python list is in one sentence"))
    layer.close()
    assert turn.llm.status == "ok" and turn.llm.model_version == "smollm2-135m" and turn.llm.result
    assert turn.research.result is not None and not turn.research.result.needs_research
    assert turn.guard.result is not None and turn.final_response == turn.guard.result.rewritten_response


class _Searx(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"results": [{"title": "BTC", "content": "Bitcoin at 97,000 USD", "url": "https://ex.org/btc"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_searxng_provider_against_a_local_server() -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Searx)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        notes = SearxngProvider(f"http://127.0.0.1:{srv.server_address[1]}").search("bitcoin price", 2.0)
    finally:
        srv.shutdown()
        srv.server_close()
    assert notes.sources == ("https://ex.org/btc",) and "Bitcoin at 97,000 USD" in notes.text


def test_demo_and_chat_commands_run_the_whole_layer(slm_registry: ModelRegistry, models_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from penny_slm.cli import DEMO_TURNS, main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("penny> ") == len(DEMO_TURNS) and "needs_research=True prices_markets" in out
    assert "learned profile after 5 turns" in out and "recent_topic" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("what is 2 + 2?\nquit\nnever read\n"))
    assert main(["chat", "--user", "t"]) == 0
    assert capsys.readouterr().out.count("penny> ") == 1
