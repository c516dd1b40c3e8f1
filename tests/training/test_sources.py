"""Data by manifest (issue 25): real git repositories and a real HTTP server on loopback, no mocks.

A small repository is built in a temporary folder and pinned by a test manifest; it is fetched from a
folder of mirrors (plain, bare, and in a ``repo`` subfolder) and over HTTP, tampered with, cached,
listed and checked for overlap through the same functions and CLI that ``penny-slm data`` uses.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from penny_slm.cli import main
from penny_slm.errors import DataSourceError
from penny_slm.training import importers
from penny_slm.training.datasets import data_dir
from penny_slm.training.overlap import find_overlap, jaccard, normalise, shingles
from penny_slm.training.sources import (
    TASKS,
    Manifest,
    Source,
    cache_dir,
    cached,
    fetch,
    load_manifest,
    source_dir,
    tree_digest,
)

pytestmark = pytest.mark.issue(25)

REPO = "acme/chat-data"
LONG = ("could you walk me through how the tides depend on the moon and the sun over a month, "
        "with the spring and neap cycle explained simply")
RESEARCH_ROWS = [
    {"text": "what's the score in the lakers game right now", "needs_research": True, "category": "sports"},
    {"text": "explain recursion like I'm five", "needs_research": False, "category": "concept_explanation"},
    {"text": LONG, "needs_research": False, "category": "concept_explanation"},
]
MOOD_ROWS = [{"text": "I can't believe they cancelled it again", "mood": "anger", "formality": 0.2},
             {"text": "that made my whole week", "mood": "joy"}]
SLANG_ROWS = [{"text": "that fit is bussin no cap", "slang": ["bussin", "no cap"]}]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


CONTENT = {
    "data/a.jsonl": _jsonl(RESEARCH_ROWS),
    "data/b.jsonl": _jsonl(MOOD_ROWS),
    "notes/x.txt": b"first note\n",
    "notes/deep/y.txt": b"second note\n",
    "LICENSE": b"MIT License\n\nCopyright (c) acme\n",
}


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The upstream repository (a normal one, with a work tree) and its commit."""
    root = tmp_path_factory.mktemp("upstream") / "src"
    root.mkdir()
    for path, body in CONTENT.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(body)
    _git("init", "-q", cwd=root)
    _git("add", ".", cwd=root)
    _git("commit", "-q", "-m", "fixture", cwd=root)
    return root, _git("rev-parse", "HEAD", cwd=root)


def _mirrors(upstream: Path, into: Path, layout: str) -> Path:
    """A --from folder holding the repository as OWNER+NAME in one of the three shapes fetch accepts."""
    target = into / REPO.replace("/", "+")
    if layout == "plain":
        _git("clone", "-q", str(upstream), str(target))
    elif layout == "bare":
        _git("clone", "-q", "--bare", str(upstream), str(target))
    else:
        target.mkdir(parents=True)
        _git("clone", "-q", "--bare", str(upstream), str(target / "repo"))
    return into


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _pin(path: str) -> dict[str, Any]:
    return {"sha256": _sha(CONTENT[path]), "size": len(CONTENT[path])}


NOTES_DIGEST = tree_digest({p: _sha(b) for p, b in CONTENT.items() if p.startswith("notes/")})


def _manifest(tmp: Path, commit: str, http_base: str = "", **changes: dict[str, Any]) -> Path:
    """alpha (research train, with a tree), beta (mood train, research test), ghost (no such repository),
    gamma (http, only with ``http_base``); ``changes`` overrides keys of a source."""
    common = {"kind": "git", "repo": REPO, "commit": commit, "licence": "MIT",
              "licence_evidence": [{"path": "LICENSE", "quote": "MIT License"}], "importer": "fixture-jsonl"}
    sources: list[dict[str, Any]] = [
        {"name": "alpha", "title": "Alpha", **common, "files": {"data/a.jsonl": _pin("data/a.jsonl"), "LICENSE": _pin("LICENSE")},
         "trees": [{"prefix": "notes/", "count": 2, "digest": NOTES_DIGEST}], "uses": {"research": "train"}},
        {"name": "beta", "title": "Beta", **common, "files": {"data/b.jsonl": _pin("data/b.jsonl")},
         "uses": {"mood": "train", "research": "test"}},
        {"name": "ghost", "title": "Ghost", **common, "repo": "acme/nowhere", "files": {"x.txt": _pin("LICENSE")},
         "uses": {"guard": "train"}},
    ]
    if http_base:
        body = _jsonl(SLANG_ROWS)
        sources.append({"name": "gamma", "title": "Gamma", "kind": "http", "licence": "CC0-1.0",
                        "licence_evidence": [{"url": f"{http_base}/files/README", "quote": "CC0"}], "importer": "fixture-jsonl",
                        "files": {"c.jsonl": {"sha256": _sha(body), "size": len(body), "url": f"{http_base}/files/c.jsonl"}},
                        "uses": {"slang": "train"}})
    for source in sources:
        source.update(changes.get(str(source["name"]), {}))
    path = tmp / "sources.json"
    path.write_text(json.dumps({"version": 1, "sources": sources}))
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PENNY_SLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("PENNY_SLM_GIT_RAW_BASE", "http://127.0.0.1:9/raw")  # nothing listens: no test reaches GitHub
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def fixture_importer() -> Iterator[None]:
    """Every JSONL file of the source, row by row (the real importers come with their issues)."""
    def read_jsonl(source: Source, files: dict[str, Path]) -> Iterator[dict[str, Any]]:
        for path in sorted(p for p in files if p.endswith(".jsonl")):
            for line in files[path].read_text().splitlines():
                yield json.loads(line)

    importers.IMPORTERS.register("fixture-jsonl")(read_jsonl)
    yield
    importers.IMPORTERS.unregister("fixture-jsonl")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def server(tmp_path: Path, upstream: tuple[Path, str]) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server laid out like raw.githubusercontent.com (raw/), the GitHub API's tree listing (api/)
    and a plain file host (files/)."""
    root, commit = upstream
    www = tmp_path / "www"
    for path, body in CONTENT.items():
        (www / "raw" / REPO / commit / path).parent.mkdir(parents=True, exist_ok=True)
        (www / "raw" / REPO / commit / path).write_bytes(body)
    blobs = {p: _git("rev-parse", f"{commit}:{p}", cwd=root) for p in CONTENT}
    listing = {"sha": commit, "truncated": False, "tree": [{"path": "notes", "type": "tree"}] +
               [{"path": p, "type": "blob", "sha": sha} for p, sha in blobs.items()]}
    (www / "api" / "repos" / REPO / "git" / "trees").mkdir(parents=True)
    (www / "api" / "repos" / REPO / "git" / "trees" / commit).write_text(json.dumps(listing))
    (www / "files").mkdir()
    (www / "files" / "c.jsonl").write_bytes(_jsonl(SLANG_ROWS))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _states(results: list[Any]) -> dict[str, str]:
    return {r.name: r.state for r in results}


@pytest.mark.parametrize("layout", ["plain", "bare", "repo-subfolder"])
def test_fetch_from_a_folder_of_mirrors_in_each_shape(tmp_path: Path, upstream: tuple[Path, str], layout: str) -> None:
    root, commit = upstream
    manifest = load_manifest(_manifest(tmp_path, commit))
    mirrors = _mirrors(root, tmp_path / "mirrors", layout)
    results = fetch(manifest.select(["alpha", "beta"]), mirrors)
    assert _states(results) == {"alpha": "fetched", "beta": "fetched"}
    files = cached(manifest.get("alpha"))
    assert files is not None and set(files) == {"data/a.jsonl", "LICENSE", "notes/x.txt", "notes/deep/y.txt"}
    assert all(files[p].read_bytes() == CONTENT[p] for p in files)
    assert files["LICENSE"] == cache_dir() / "sources" / "alpha" / commit / "LICENSE"
    # cached: not fetched again, even with no mirror and no network left
    again = fetch(manifest.select(["alpha", "beta"]), tmp_path / "empty")
    assert _states(again) == {"alpha": "cached", "beta": "cached"}


def test_fetch_over_http_git_raw_and_plain_urls(tmp_path: Path, upstream: tuple[Path, str], server: tuple[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _root, commit = upstream
    base, _www = server
    monkeypatch.setenv("PENNY_SLM_GIT_RAW_BASE", f"{base}/raw")
    monkeypatch.setenv("PENNY_SLM_GITHUB_API_BASE", f"{base}/api")
    manifest = load_manifest(_manifest(tmp_path, commit, http_base=base))
    results = fetch(manifest.select(["alpha", "gamma"]))
    assert _states(results) == {"alpha": "fetched", "gamma": "fetched"}
    assert results[0].files == 4 and results[0].bytes == sum(map(len, CONTENT.values())) - len(CONTENT["data/b.jsonl"])
    alpha, gamma = cached(manifest.get("alpha")), cached(manifest.get("gamma"))
    assert alpha is not None and alpha["notes/deep/y.txt"].read_bytes() == CONTENT["notes/deep/y.txt"]
    assert gamma is not None and gamma["c.jsonl"] == cache_dir() / "sources" / "gamma" / "http" / "c.jsonl"


def _leftovers(name: str) -> list[str]:
    folder = cache_dir() / "sources" / name
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_tampered_file_is_refused_and_leaves_nothing(tmp_path: Path, upstream: tuple[Path, str], server: tuple[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root, commit = upstream
    mirrors = _mirrors(root, tmp_path / "mirrors", "bare")
    wrong = {**_pin("data/a.jsonl"), "sha256": "0" * 64}
    manifest = load_manifest(_manifest(tmp_path, commit, alpha={"files": {"data/a.jsonl": wrong}},
                                       beta={"trees": [{"prefix": "notes/", "count": 2, "digest": "f" * 64}]}))
    results = fetch(manifest.select(["alpha", "beta"]), mirrors)
    assert _states(results) == {"alpha": "mismatch", "beta": "mismatch"}
    assert "data/a.jsonl" in results[0].detail and "notes/" in results[1].detail
    assert results[0].line().startswith("alpha: checksum mismatch: data/a.jsonl")
    assert _leftovers("alpha") == [] and _leftovers("beta") == []  # no revision folder, no staging folder
    # over HTTP: the server now serves changed bytes for a correctly pinned file
    base, www = server
    monkeypatch.setenv("PENNY_SLM_GIT_RAW_BASE", f"{base}/raw")
    (www / "raw" / REPO / commit / "data" / "b.jsonl").write_bytes(CONTENT["data/b.jsonl"].replace(b"joy", b"yoj"))
    results = fetch([load_manifest(_manifest(tmp_path, commit)).get("beta")])
    assert _states(results) == {"beta": "mismatch"} and _leftovers("beta") == []


def test_an_unreachable_source_is_reported_and_the_others_still_fetch(tmp_path: Path, upstream: tuple[Path, str],
                                                                      server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root, commit = upstream
    mirrors = _mirrors(root, tmp_path / "mirrors", "plain")
    manifest_path = _manifest(tmp_path, commit)
    code = main(["data", "fetch", "--manifest", str(manifest_path), "--from", str(mirrors), "--only", "ghost", "alpha"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1 and out[0].startswith("ghost: unreachable: no git mirror at") and out[1].startswith("alpha: fetched 4 files")
    assert main(["data", "fetch", "--manifest", str(manifest_path), "--from", str(mirrors), "--only", "alpha", "beta"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "alpha: cached" and lines[1].startswith("beta: fetched 1 files")
    # over HTTP: a 404 for the missing repository, and a server that is not there at all
    base, _www = server
    monkeypatch.setenv("PENNY_SLM_GIT_RAW_BASE", f"{base}/raw")
    results = fetch(load_manifest(manifest_path).select(["ghost"]))
    assert results[0].state == "unreachable" and "HTTP 404" in results[0].detail
    monkeypatch.setenv("PENNY_SLM_GIT_RAW_BASE", "http://127.0.0.1:9/raw")
    assert fetch(load_manifest(manifest_path).select(["ghost"]))[0].state == "unreachable"


def test_a_changed_cache_file_is_verified_again_and_fetched_again(tmp_path: Path, upstream: tuple[Path, str]) -> None:
    root, commit = upstream
    mirrors = _mirrors(root, tmp_path / "mirrors", "bare")
    manifest = load_manifest(_manifest(tmp_path, commit))
    alpha = manifest.get("alpha")
    assert _states(fetch([alpha], mirrors)) == {"alpha": "fetched"}
    assert cached(alpha) is not None  # from the stamp
    target = source_dir(alpha) / "data" / "a.jsonl"
    st = target.stat()
    target.write_bytes(CONTENT["data/a.jsonl"].replace(b"five", b"nine"))  # same size, other bytes
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old modification time
    assert cached(alpha) is None
    refetched = fetch([alpha], mirrors)[0]
    assert refetched.state == "fetched" and refetched.files == 1  # only the changed file; the rest reused
    assert cached(alpha) is not None and target.read_bytes() == CONTENT["data/a.jsonl"]
    (source_dir(alpha) / "notes" / "extra.txt").write_text("not pinned")  # a tree gains a file: no longer verified
    assert cached(alpha) is None


def test_rows_come_from_cached_sources_by_role_with_provenance(tmp_path: Path, upstream: tuple[Path, str]) -> None:
    root, commit = upstream
    manifest = load_manifest(_manifest(tmp_path, commit))
    fetch(manifest.select(["alpha", "beta"]), _mirrors(root, tmp_path / "mirrors", "bare"))
    rows, provenance = importers.rows("research", ("train",), manifest)
    assert [r["text"] for r in rows] == [r["text"] for r in RESEARCH_ROWS] and {r["source"] for r in rows} == {"alpha"}
    assert provenance == {"alpha": "used 3 rows"}  # beta is research *test*: not trained on
    assert importers.rows("research", ("test",), manifest)[1] == {"beta": "used 0 rows"}
    assert importers.rows("mood", manifest=manifest)[0][1]["mood"] == "joy"
    assert importers.rows("guard", manifest=manifest)[1] == {"ghost": "not cached"}
    with pytest.raises(DataSourceError, match="unknown task 'vibes'"):
        importers.rows("vibes", manifest=manifest)


def test_data_list_json_shows_cache_states_and_rows_per_task(tmp_path: Path, upstream: tuple[Path, str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, commit = upstream
    path = _manifest(tmp_path, commit)
    fetch(load_manifest(path).select(["alpha", "beta"]), _mirrors(root, tmp_path / "mirrors", "bare"))
    assert main(["data", "list", "--manifest", str(path), "--json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed["alpha"]["cache"] == "cached" and listed["alpha"]["rows"] == {"research": 3} and listed["alpha"]["files"] == 4
    assert listed["beta"]["rows"] == {"mood": 2, "research": 0} and listed["beta"]["licence"] == "MIT"
    assert listed["ghost"]["cache"] == "not cached" and listed["ghost"]["rows"] is None
    assert main(["data", "list", "--manifest", str(path)]) == 0
    assert "alpha" in capsys.readouterr().out


def test_data_check_finds_exact_and_near_overlap_and_passes_a_clean_file(tmp_path: Path, upstream: tuple[Path, str],
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, commit = upstream
    path = _manifest(tmp_path, commit)
    fetch(load_manifest(path).select(["alpha"]), _mirrors(root, tmp_path / "mirrors", "bare"))
    packaged = json.loads((data_dir() / "tone_train.jsonl").read_text().splitlines()[0])["text"]
    checked = tmp_path / "checked.jsonl"
    checked.write_text("".join(json.dumps({"text": t}) + "\n" for t in [
        "EXPLAIN recursion -- like I'm five!!",  # exact after normalising: alpha (a public source, train role)
        LONG.replace("simply", "plainly"),  # near: alpha
        packaged.upper(),  # exact: a packaged hand-written training file
        "which planet has the most moons these days",  # clean
    ]))
    assert main(["data", "check", "--manifest", str(path), "--against", str(checked), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 4 and report["exact"]["count"] == 2 and report["near"]["count"] == 1
    assert report["exact"]["examples"][0]["origins"] == ["research: source alpha"] and report["exact"]["examples"][0]["line"] == 1
    assert "tone: tone_train.jsonl" in report["exact"]["examples"][1]["origins"]
    near = report["near"]["examples"][0]
    assert near["line"] == 2 and near["training_text"] == LONG and 0.8 <= near["similarity"] < 1
    assert report["training_sources"] == {"alpha": "used 3 rows", "beta": "not cached", "ghost": "not cached"}
    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps({"text": "which planet has the most moons these days"}) + "\n")
    assert main(["data", "check", "--manifest", str(path), "--against", str(clean)]) == 0
    assert "exact overlaps (after normalising): 0" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "no text here"}\n')
    assert main(["data", "check", "--manifest", str(path), "--against", str(bad)]) == 2
    assert "bad.jsonl:1: 'text' must be a string" in capsys.readouterr().err


def test_data_check_skips_training_rows_the_build_drops_for_overlapping_a_held_out_source(
        tmp_path: Path, upstream: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """beta holds alpha's rows as research *test*: the build drops them from training (``splits.py``), so checking
    them against training reports nothing (it reported every one of them before: 653 exact hits for XED against
    GoEmotions rows that no build trained on)."""
    root, commit = upstream
    path = _manifest(tmp_path, commit, beta={"files": {"data/a.jsonl": _pin("data/a.jsonl")}, "uses": {"research": "test"}})
    fetch(load_manifest(path).select(["alpha", "beta"]), _mirrors(root, tmp_path / "mirrors", "bare"))
    checked = tmp_path / "held_out.jsonl"
    checked.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in RESEARCH_ROWS))
    assert main(["data", "check", "--manifest", str(path), "--against", str(checked), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exact"]["count"] == report["near"]["count"] == 0 and report["checked"] == 3


def test_data_check_leaves_out_tasks_that_train_nothing(tmp_path: Path, upstream: tuple[Path, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A source feeding mood and formality: its rows are training texts for mood, not for formality, which no artifact
    trains (``overlap.UNTRAINED_TASKS``)."""
    root, commit = upstream
    path = _manifest(tmp_path, commit, beta={"files": {"data/b.jsonl": _pin("data/b.jsonl")},
                                             "uses": {"mood": "train", "formality": "train"}})
    fetch(load_manifest(path).select(["beta"]), _mirrors(root, tmp_path / "mirrors", "bare"))
    assert len(importers.rows("formality", ("train",), load_manifest(path))[0]) == 1
    checked = tmp_path / "checked.jsonl"
    checked.write_text(json.dumps({"text": MOOD_ROWS[0]["text"]}) + "\n")
    assert main(["data", "check", "--manifest", str(path), "--against", str(checked), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["exact"]["examples"][0]["origins"] == ["mood: source beta"]


def test_near_duplicates_are_found_at_the_stated_similarity() -> None:
    """Every pair at Jaccard >= 0.85 is found (LSH recall 0.99999 there), none below 0.8 is reported, and each
    reported similarity is the exact Jaccard of the character 5-gram sets."""
    import random

    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(3000)]
    training = [" ".join(rng.choice(words) for _ in range(rng.randint(12, 40))) for _ in range(4000)]
    checked, expected = [], {}
    for i, base in enumerate(rng.sample(training, 300)):
        tokens = base.split()
        tokens[rng.randrange(len(tokens))] = rng.choice(words)  # one word changed: from ~0.75 to 1.0
        variant = " ".join(tokens)
        checked.append(variant)
        expected[i] = jaccard(shingles(normalise(variant)), shingles(normalise(base)))
    report = find_overlap(checked, [("test", "synthetic", t) for t in training])
    found = {c.index: c.similarity for c in report.near} | {c.index: 1.0 for c in report.exact}
    assert all(i in found for i, s in expected.items() if s >= 0.85)
    assert all(s >= 0.8 for s in found.values()) and all(expected[i] >= 0.8 for i in found if found[i] < 1)
    assert sum(1 for s in expected.values() if s < 0.8) > 10  # the sample does cross the threshold
    assert normalise("  Ｈｅｌｌｏ,\tWORLD!! ") == "hello world" and find_overlap(["!!!"], [("t", "o", "?")]).clean


@pytest.mark.parametrize(("change", "fragment"), [
    ({"commit": "abc"}, "sources -> alpha -> commit: must be a full commit id"),
    ({"licence": "CC-BY-NC-4.0"}, "sources -> alpha -> licence: 'CC-BY-NC-4.0' is not an accepted licence"),
    ({"uses": {"research": "tune"}}, "sources -> alpha -> uses -> research: unknown role 'tune'"),
    ({"uses": {"vibes": "train"}}, "sources -> alpha -> uses -> vibes: unknown task"),
    ({"files": {"../escape.txt": {"sha256": "0" * 64, "size": 1}}}, "sources -> alpha -> files -> ../escape.txt: must be a relative path"),
    ({"files": {"a.txt": {"sha256": "xyz", "size": 1}}}, "sources -> alpha -> files -> a.txt -> sha256"),
    ({"files": {"a.txt": {"sha256": "0" * 64, "size": -1}}}, "sources -> alpha -> files -> a.txt -> size"),
    ({"trees": [{"prefix": "notes", "count": 2, "digest": "0" * 64}]}, "sources -> alpha -> trees -> 0 -> prefix"),
    ({"licence_evidence": []}, "sources -> alpha -> licence_evidence: must be a non-empty list"),
    ({"licence_evidnce": []}, "sources -> alpha -> licence_evidnce: unknown key"),
    ({"name": "Alpha Source"}, "sources -> 0 -> name: must be a short id"),
])
def test_a_malformed_manifest_names_the_bad_field(tmp_path: Path, change: dict[str, Any], fragment: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _manifest(tmp_path, "a" * 40, alpha=change)
    with pytest.raises(DataSourceError) as info:
        load_manifest(path)
    assert fragment in str(info.value)
    assert main(["data", "list", "--manifest", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("penny-slm: error: ") and err.count("\n") == 1 and fragment in err


def test_the_packaged_manifest_keeps_held_out_and_reserved_data_out_of_training() -> None:
    manifest = load_manifest(None)
    assert isinstance(manifest, Manifest) and len(manifest.sources) >= 20
    for task in TASKS:  # every task has a source to train on and one held out at the source level
        roles = {s.role(task) for s in manifest.sources}
        assert {"train", "test"} <= roles, task
    for source in manifest.sources:  # a source held out for one task is trained on for none
        assert not ({"test", "probe"} & set(source.uses.values()) and "train" in source.uses.values()), source.name
        assert source.licence_evidence
    paths = {p.path for s in manifest.sources for p in s.files}
    reserved = ("goemotions", "test.tsv"), ("gsm8k", "test.jsonl"), ("gsm8k", "example_model_solutions"), \
               ("self-instruct", "seed_tasks"), ("fastchat", "alpaca"), ("cefr", "SCoRE")
    for name_part, path_part in reserved:
        for source in manifest.sources:
            if name_part in source.name:
                assert not [p.path for p in source.files if path_part in p.path], (source.name, path_part)
    assert not [p for p in paths if "alpaca" in p.lower()]
    medquad = manifest.get("medquad")
    assert sum(t.count for t in medquad.trees) == 11274


def test_eval_context_real_scores_the_cached_held_out_source_of_one_task(tmp_path: Path, upstream: tuple[Path, str],
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``eval context --real formality``: the held-out rows of that task alone, each cut to its own label (beta's rows
    also carry moods, which must not turn into a mood block)."""
    root, commit = upstream
    path = _manifest(tmp_path, commit, beta={"uses": {"formality": "test", "mood": "train"}})
    monkeypatch.setenv("PENNY_SLM_SOURCES", str(path))
    empty = str(tmp_path / "no-models")
    assert main(["--models-dir", empty, "eval", "context", "--real", "formality", "--json"]) == 2
    assert "penny-slm data fetch" in capsys.readouterr().err  # nothing cached yet
    fetch(load_manifest(path).select(["beta"]), _mirrors(root, tmp_path / "mirrors", "bare"))
    assert main(["--models-dir", empty, "eval", "context", "--real", "formality", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1 and report["formality"]["n"] == 1 and "mood" not in report and "formality" in report["baseline"]
    assert main(["--models-dir", empty, "eval", "context", "--real", "formality", "--data", str(path), "--json"]) == 2
    assert "either --data" in capsys.readouterr().err
