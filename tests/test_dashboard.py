"""``penny-slm dashboard`` in a real headless browser (Playwright driving Debian's Chromium) over a database written
by a real conversation through the layer: what each view shows, the charts, every action's effect on the database,
live updates, the CSRF check, the bind rule and the token. The browser tests take the screenshots in docs/ (with PENNY_SLM_SCREENSHOTS=1).

Chromium comes from Debian's packages (scripts/setup.sh --tests installs it); nothing is downloaded. Without it the
browser tests fail in CI (CI=true) and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from penny_slm.cli import main
from penny_slm.config import load_config
from penny_slm.dashboard.data import Checksums, acknowledge, alerts, model_states
from penny_slm.dashboard.server import DashboardApp, DashboardServer
from penny_slm.errors import InputError
from penny_slm.pipeline import db
from penny_slm.pipeline.controls import LearningControls
from penny_slm.pipeline.layer import SLMLayer
from penny_slm.pipeline.model_registry import ModelRegistry
from penny_slm.pipeline.modules.base import TurnContext
from penny_slm.pipeline.sync import ContextSyncManager
from penny_slm.results import ContextUpdate, PreferenceUpdate

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NO_MODELS = {"research_classifier": {"enabled": False}, "personality_guard": {"enabled": False}}
USER = "cj"
TOKEN = "a-test-token-of-32-characters-xx"
CONVERSATION: list[tuple[str, tuple[PreferenceUpdate, ...]]] = [
    # (message, what a context tracker learns from it): the tracker's heads are not built yet, so a scripted tracker
    # stands in for them inside the layer (as in tests/pipeline/test_layer_controls.py); everything else is real.
    ("hey penny, could you explain how a hash map works?",
     (PreferenceUpdate("formality_level", None, 0.4, "could you explain", "", 0.8, "tracker-v1"),
      PreferenceUpdate("technical_depth", None, 0.5, "how a hash map works", "", 0.7, "tracker-v1"),
      PreferenceUpdate("mood", None, "neutral", "could you explain", "", 0.6, "tracker-v1"))),
    ("ok that's bussin, and what about collisions and open addressing?",
     (PreferenceUpdate("formality_level", 0.4, 0.36, "that's bussin", "", 0.8, "tracker-v1"),
      PreferenceUpdate("technical_depth", 0.5, 0.56, "open addressing", "", 0.7, "tracker-v1"),
      PreferenceUpdate("mood", "neutral", "joy", "that's bussin", "", 0.7, "tracker-v1"),
      PreferenceUpdate("slang:bussin", None, {"gloss": "very good"}, "that's bussin", "", 0.9, "tracker-v1"))),
    ("ugh, my tests failed again",
     (PreferenceUpdate("formality_level", 0.36, 0.33, "ugh", "", 0.8, "tracker-v1"),
      PreferenceUpdate("mood", "joy", "sadness", "ugh, my tests failed again", "", 0.8, "tracker-v1"))),
    ("Dear Penny, I should be grateful for a formal and thorough account of resizing.",
     (PreferenceUpdate("formality_level", 0.33, 0.9, "Dear Penny, I should be grateful", "", 0.9, "tracker-v1"),
      PreferenceUpdate("slang:no cap", None, {"gloss": "honestly", "adopt": True}, "no cap", "", 0.9, "tracker-v1"))),
]


@dataclass
class Rig:
    """``penny-slm dashboard`` serving a database one conversation wrote, in a process of its own (so the page shows
    the dashboard's own memory); ``controls`` and ``sync`` work on that database from the test."""

    url: str
    store: db.PersonalityDB
    controls: LearningControls
    sync: ContextSyncManager
    path: Path


def converse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The conversation through the layer (injected main LLM), plus an alert raised through the sync queue."""
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("PENNY_SLM_MODELS", str(tmp_path / "models"))
    config = tmp_path / "slm_config.json"
    config.write_text(json.dumps({"models": NO_MODELS}))
    layer = SLMLayer(load_config(config), sqlite_path=tmp_path / "p.db").load()
    learned = [updates for _, updates in CONVERSATION]

    def run(turn: TurnContext) -> ContextUpdate:
        return ContextUpdate((), None, {}, None, None, learned.pop(0), "scripted tracker")

    monkeypatch.setattr(layer.modules["context"], "run", run)
    async def talk() -> None:
        for message, _ in CONVERSATION:
            await layer.process(USER, message, llm=lambda s, m: "Here is how that works.")

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop running on this thread
        pool.submit(asyncio.run, talk()).result()
    assert layer.sync is not None
    layer.sync.queue_update("drift", {"kind": "alert", "user_id": USER, "alert_kind": "tone", "severity": "medium",
                                      "detail": json.dumps({"detail": "responses drift towards cheerleading",
                                                            "examples": ["You're amazing!!", "So proud of you!"],
                                                            "recommendation": "review the guard's tone threshold"})})
    layer.close()
    return tmp_path / "p.db"


@contextmanager
def dashboard(path: Path, log: Path, *args: str) -> Iterator[str]:
    """``penny-slm dashboard --db path --port 0 ARGS`` until the block ends (Ctrl-C, as a person stops it); its URL."""
    command = [sys.executable, "-m", "penny_slm.cli", "dashboard", "--db", str(path), "--port", "0", *args]
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        assert proc.stdout is not None
        started = re.search(r"http://\S+?:(\d+)/", proc.stdout.readline())
        try:
            assert started, log.read_text()
            yield f"http://127.0.0.1:{started.group(1)}"
        finally:
            proc.send_signal(signal.SIGINT)
            proc.stdout.close()
            assert proc.wait(timeout=20) == 0, log.read_text()


@pytest.fixture()
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    path = converse(tmp_path, monkeypatch)
    cfg = load_config(None)
    store = db.open_sqlite(path)
    sync = ContextSyncManager(store, learning=cfg.learning)
    with dashboard(path, tmp_path / "dashboard.log") as url:
        yield Rig(url, store, LearningControls(store, sync, cfg.learning), sync, path)
    store.close()


def chromium() -> str | None:
    """Debian's Chromium (or ``$PENNY_CHROMIUM``); None if there is none."""
    given = os.environ.get("PENNY_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        why = "Chromium and Playwright are needed (scripts/setup.sh --tests installs them)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def open_view(page: Any, rig: Rig, view: str) -> None:
    page.goto(f"{rig.url}/#{view}")
    page.wait_for_selector(f"#view-{view}.on")
    page.wait_for_selector("#updated:has-text('live')")


def shot(page: Any, view: str) -> None:
    """Into docs/ with PENNY_SLM_SCREENSHOTS=1 (how the committed ones were made), else a throwaway folder, so a
    test run leaves the checkout clean; either way the PNG must come out non-empty."""
    folder = DOCS if os.environ.get("PENNY_SLM_SCREENSHOTS") else Path(tempfile.gettempdir()) / "penny-slm-screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"dashboard-{view}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def test_the_page_shows_a_real_conversation_and_its_charts(rig: Rig, page: Any) -> None:
    open_view(page, rig, "status")
    models = page.locator("#models tr").all_inner_texts()
    assert any(row.startswith("research") and "not built" in row for row in models)
    modules = {row.split("\t")[0]: row.split("\t") for row in page.locator("#modules tr").all_inner_texts()[1:]}
    assert set(modules) == {"context", "llm"} and modules["llm"][1] == str(len(CONVERSATION))  # one run per turn
    assert "learning on" in page.inner_text("#safe")
    resident = float(re.search(r"([\d.]+) MB resident", page.inner_text("#memory")).group(1))  # type: ignore[union-attr]
    assert 20 < resident < 150  # measured: about 75 MB, most of it the runtime's imports (onnxruntime, numpy)
    shot(page, "status")

    open_view(page, rig, "personality")
    versions = rig.controls.versions(USER)
    chart = page.locator("#evolution-chart")
    assert chart.locator(".series").count() == 3  # formality, technical depth, mood
    assert chart.locator(".version-mark").count() == len(versions)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    formality = [v.profile["dimensions"].get("formality_level") for v in versions]
    points = chart.locator('[data-series="formality_level"] polyline').get_attribute("points")
    assert points is not None and len(points.split()) == sum(f is not None for f in formality) >= 3
    moods = [v.profile["dimensions"].get("mood") for v in versions if v.profile["dimensions"].get("mood")]
    assert chart.locator('[data-series="mood"] circle').count() == len(moods)
    assert chart.locator('[data-series="technical_depth"] circle').count() >= 2
    assert "bussin\tvery good\t1" in page.inner_text("#slang")
    log = rig.controls.log(USER)
    assert page.inner_text("#log-count") == f"{len(log)} of {len(log)} entries"
    page.fill("#log-filter", "mood")
    mood_rows = [e for e in log if "mood" in " ".join((e.key, e.detail, e.evidence, e.message_id)).lower()]
    assert page.inner_text("#log-count") == f"{len(mood_rows)} of {len(log)} entries"
    page.fill("#log-filter", "")
    page.select_option("#log-action", "awaiting_approval")
    assert page.locator("#log tr").count() == 1 + sum(e.action == "awaiting_approval" for e in log)
    page.select_option("#log-action", "")
    shot(page, "personality")

    open_view(page, rig, "alerts")
    row = page.inner_text("#alerts tr:nth-child(2)")
    assert "tone" in row and "medium" in row and "You're amazing!!" in row and "review the guard's tone threshold" in row
    shot(page, "alerts")
    open_view(page, rig, "actions")
    assert page.locator("[data-approve]").count() == len(rig.controls.pending(USER)) == 2
    shot(page, "actions")


def test_actions_change_the_database(rig: Rig, page: Any) -> None:
    c = rig.controls
    pending = {p.key: p.id for p in c.pending(USER)}
    open_view(page, rig, "actions")

    page.click(f"[data-approve='{pending['formality_level']}']")
    page.wait_for_selector(f"[data-approve='{pending['formality_level']}']", state="detached")
    assert c.show(USER)["dimensions"]["formality_level"] == 0.9
    page.click(f"[data-reject='{pending['slang:no cap']}']")
    page.wait_for_selector("[data-reject]", state="detached")
    assert {p.id: p.state for p in c.pending(USER, all_states=True)} == {pending["formality_level"]: "approved",
                                                                         pending["slang:no cap"]: "rejected"}

    before = c.versions(USER)
    page.click("[data-rollback='1']")
    page.wait_for_selector(f"#versions:has-text('v{len(before) + 1}')")
    after = c.versions(USER)
    assert len(after) == len(before) + 1 and after[-1].profile["dimensions"] == before[0].profile["dimensions"]
    assert c.log(USER)[-1].action == "rollback"

    open_view(page, rig, "status")
    page.fill("#reason", "checking the dashboard")
    page.click("#kill")
    page.wait_for_selector("#safe:has-text('SAFE MODE')")
    assert c.status().kill_switch and c.status().reason == "checking the dashboard"
    page.click("#resume")
    page.wait_for_selector("#safe:has-text('learning on')")
    assert not c.status().safe_mode

    open_view(page, rig, "alerts")
    page.click("[data-ack]")
    page.wait_for_selector("#alerts:has-text('acknowledged')")
    assert page.inner_text("#alert-count") == ""

    open_view(page, rig, "actions")
    with page.expect_download() as download:
        page.click("#export")
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported == {**c.export(USER), "exported_at": exported["exported_at"]}
    assert page.is_disabled("#delete")
    page.fill("#delete-confirm", "someone else")
    assert page.is_disabled("#delete")
    page.fill("#delete-confirm", USER)
    page.click("#delete")
    page.wait_for_selector("#message:has-text('deleted')")
    assert rig.store.User.get_or_none(rig.store.User.user_id == USER) is None
    assert c.versions(USER) == [] and c.log(USER) == []


def test_new_turns_and_alerts_appear_without_a_reload(rig: Rig, page: Any) -> None:
    open_view(page, rig, "alerts")
    assert page.inner_text("#alert-count") == "1"
    rig.sync.queue_update("drift", {"kind": "alert", "user_id": USER, "alert_kind": "repetition", "severity": "high",
                                    "detail": "the same opener in 5 of the last 10 responses"})
    rig.sync.queue_update("orchestrator", {"kind": "module_run", "user_id": USER, "module": "guard", "status": "timeout",
                                           "latency_ms": 250.0})
    rig.sync.process_queue()
    page.wait_for_selector("#alerts:has-text('repetition')")
    assert page.inner_text("#alert-count") == "2"
    open_view(page, rig, "status")  # a hash change: the same page, no reload
    page.wait_for_selector("#modules:has-text('guard')")


def fetch(request: urllib.request.Request) -> tuple[int, Any]:
    """(status, JSON body) of a request made outside the browser; the connection is closed either way."""
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def test_state_changing_requests_need_the_csrf_token(rig: Rig, page: Any) -> None:
    open_view(page, rig, "status")
    refused = page.evaluate("""async () => {
        const r = await fetch('/api/kill', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
        return [r.status, (await r.json()).error];
    }""")
    assert refused[0] == 403 and "X-CSRF-Token" in refused[1]
    csrf = page.get_attribute('meta[name="csrf"]', "content")
    for headers in ({"X-CSRF-Token": "forged"},  # a wrong token
                    {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}):  # the right one from another origin
        request = urllib.request.Request(f"{rig.url}/api/kill", b"{}", {"Content-Type": "application/json", **headers})
        assert fetch(request)[0] == 403
    form = urllib.request.Request(f"{rig.url}/api/kill", b"reason=x", {"X-CSRF-Token": csrf,
                                                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert fetch(form)[0] == 403
    assert not rig.controls.status().kill_switch  # nothing changed
    rebound = urllib.request.Request(f"{rig.url}/api/stamp", headers={"Host": "attacker.example"})
    assert fetch(rebound)[0] == 421


def test_a_non_loopback_bind_needs_a_token(rig: Rig, page: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(None)
    app = DashboardApp(cfg, rig.store, rig.controls, ModelRegistry(tmp_path / "models"))
    with pytest.raises(InputError, match="give a token"):
        DashboardServer(app, "0.0.0.0", 0)
    assert main(["dashboard", "--host", "0.0.0.0", "--port", "0", "--db", str(rig.path)]) == 2
    assert "give a token" in capsys.readouterr().err
    with pytest.raises(InputError, match="at least 16"):
        DashboardServer(DashboardApp(cfg, rig.store, rig.controls, app.registry, token="short"), "0.0.0.0", 0)

    with dashboard(rig.path, tmp_path / "guarded.log", "--host", "0.0.0.0", "--token", TOKEN) as url:
        response = page.goto(url + "/")
        assert response is not None and response.status == 401
        page.goto(f"{url}/?token=wrong-token-wrong-token-wrong")
        assert "needs its token" in page.inner_text("body")
        page.goto(f"{url}/?token={TOKEN}")  # once: it becomes a cookie
        page.wait_for_selector("#updated:has-text('live')")
        assert page.url == url + "/" and "research" in page.inner_text("#models")
        bearer = urllib.request.Request(url + "/api/stamp", headers={"Authorization": f"Bearer {TOKEN}"})
        status, body = fetch(bearer)
        assert status == 200 and "stamp" in body


# -- without a browser: what the views read -----------------------------------------------------------------------

def test_checksum_and_load_state_follow_the_registry(tmp_path: Path) -> None:
    """A registered artifact verifies (ready); a changed file fails its checksum (blocked) until it is restored."""
    registry = ModelRegistry(tmp_path / "models")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "model.onnx").write_bytes(b"weights")
    registry.register_version(staging, {"name": "research", "build_key": "k", "data_hash": "d", "metrics": {},
                                        "gate_metrics": ()}, force=True)
    checksums = Checksums(registry)
    cfg = load_config(None)
    research = next(m for m in model_states(cfg, registry, checksums) if m.name == "research")
    assert (research.active_version, research.checksum, research.load_state) == ("v1", "ok", "ready")
    assert research.provider in cfg.execution_providers()
    model = tmp_path / "models" / "research" / "v1" / "model.onnx"
    model.write_bytes(b"tampered")
    research = next(m for m in model_states(cfg, registry, checksums) if m.name == "research")
    assert (research.checksum, research.load_state) == ("mismatch", "blocked") and "does not match" in research.detail
    assert {m.name: m.load_state for m in model_states(cfg, registry, checksums)}["tone"] == "not built"


def test_alerts_show_columns_a_later_migration_adds(tmp_path: Path) -> None:
    """The drift monitor's migration may add columns to ``alert``: they show without a change to the dashboard."""
    store = db.open_sqlite(tmp_path / "p.db")
    sync = ContextSyncManager(store)
    sync.queue_update("drift", {"kind": "alert", "user_id": USER, "alert_kind": "repetition", "severity": "low",
                                "detail": "the same opener twice"})
    sync.process_queue()
    store.database.execute_sql("ALTER TABLE alert ADD COLUMN recommendation TEXT DEFAULT ''")
    store.database.execute_sql("ALTER TABLE alert ADD COLUMN examples TEXT DEFAULT '[]'")
    store.database.execute_sql("""UPDATE alert SET recommendation = 'vary the openers', examples = '["Great question!"]'""")
    (shown,) = alerts(store)
    assert shown["kind"] == "repetition" and shown["recommendation"] == "vary the openers"
    assert shown["examples"] == ["Great question!"] and not shown["acknowledged"]
    acknowledge(store, LearningControls(store, sync), shown["id"])
    assert alerts(store)[0]["acknowledged"]
    with pytest.raises(InputError, match="no alert #99"):
        acknowledge(store, LearningControls(store, sync), 99)
    store.close()


def test_bad_requests_get_one_line_errors(tmp_path: Path) -> None:
    store = db.open_sqlite(tmp_path / "p.db")
    cfg = load_config(None)
    app = DashboardApp(cfg, store, LearningControls(store, ContextSyncManager(store), cfg.learning), ModelRegistry(tmp_path))
    post = {"X-CSRF-Token": app.csrf, "Content-Type": "application/json"}
    assert app.handle("POST", "/api/kill", post, b"{not json").status == 400
    assert app.handle("POST", "/api/nothing", post, b"{}").status == 404
    assert app.handle("GET", "/nothing", {}).status == 404
    assert app.handle("DELETE", "/api/state", {}).status == 405
    refused = app.handle("POST", "/api/delete", post, json.dumps({"user": USER}).encode())
    assert refused.status == 400 and "confirm" in json.loads(refused.body)["error"]
    bad_id = app.handle("POST", "/api/approve", post, json.dumps({"user": USER, "id": "1"}).encode())
    assert bad_id.status == 400 and "is a number" in json.loads(bad_id.body)["error"]
    store.close()


def test_the_page_and_the_cli_agree_on_sqlite_and_postgresql(open_store: Any, database_url: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """What /api/state shows for a profile is what ``penny-slm profile ... --json`` prints, on either backend, and an
    action taken on the page is what the CLI then reads."""
    from penny_slm.pipeline.controls import learning_items

    store = open_store()
    cfg = load_config(None)
    sync = ContextSyncManager(store, learning=cfg.learning)
    app = DashboardApp(cfg, store, LearningControls(store, sync, cfg.learning), ModelRegistry(tmp_path / "models"))
    for i, (message, updates) in enumerate(CONVERSATION):
        sync.queue_updates(learning_items(USER, f"t{i}", updates, message=message, model_version="tracker-v1",
                                          log_message_text="excerpt"))
        sync.queue_update("orchestrator", {"kind": "module_run", "user_id": USER, "module": "context", "status": "ok",
                                           "latency_ms": 1.0 + i})
    sync.process_queue()
    where = database_url.removeprefix("sqlite:///")

    def cli(*argv: str) -> Any:
        assert main([*argv, "--user", USER, "--db", where, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    def state() -> dict[str, Any]:
        response = app.handle("GET", f"/api/state?user={USER}", {})
        assert response.status == 200
        return dict(json.loads(response.body))

    shown = state()
    profile = shown["profile"]
    assert profile["show"] == cli("profile", "show") and profile["log"] == cli("profile", "log")
    assert profile["pending"] == cli("profile", "pending") and len(profile["pending"]) == 2
    assert [v["version"] for v in profile["versions"]] == [v["version"] for v in cli("profile", "versions")]
    assert profile["slang"] == cli("profile", "export")["slang"]
    assert [m["module"] for m in shown["status"]["modules"]] == ["context"] and shown["status"]["modules"][0]["p50"] == 2.0

    change = profile["pending"][0]["id"]
    post = {"X-CSRF-Token": app.csrf, "Content-Type": "application/json"}
    assert app.handle("POST", "/api/approve", post, json.dumps({"user": USER, "id": change}).encode()).status == 200
    assert {p["id"]: p["state"] for p in cli("profile", "pending", "--all")}[change] == "approved"
    assert state()["stamp"] != shown["stamp"]


def test_ctrl_c_stops_the_dashboard_even_when_its_parent_ignored_sigint(tmp_path: Path) -> None:
    """A shell's background job starts with SIGINT ignored, and a child inherits that across exec; the dashboard
    restores the default handler, so Ctrl-C still stops it (before, it ran until SIGKILL)."""
    command = [sys.executable, "-m", "penny_slm.cli", "dashboard", "--db", str(tmp_path / "p.db"), "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout is not None and "Ctrl-C stops it" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.communicate()
