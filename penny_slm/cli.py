"""``penny-slm``: models build|list|rollback, classify, guard, rewrite, eval research|guard|rewriter|drift|attachment, data fetch|list|check,
bench, demo, chat, profile show|log|versions|rollback|export|delete|pending|approve|reject, kill, resume, dashboard.

Exit codes: 0 success, 2 bad input or any ``PennySLMError`` (one line on stderr); ``data fetch`` exits 1
when a requested source is not in the cache at the end, ``data check`` when it finds an overlap. Heavy
imports (torch via training/export) happen only inside the commands that need them.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import os
import sys
import time
import typing
from pathlib import Path
from typing import Any

from penny_slm.compat import require
from penny_slm.config import SLMConfig, load_config
from penny_slm.errors import InputError, PennySLMError

ALL_ARTIFACTS = ("research", "tone", "tone-screen", "mood", "attachment", "smollm2-135m", "rewriter")
"""What ``models build`` builds, in order (the rewriter is evaluated with the tone head)."""
NEEDS_SOURCES = ("mood",)
"""Artifacts built from public sources alone (no hand-written data): with none cached, ``models build`` says so and goes
on without them (the context step then runs without mood)."""
TRAINED_ON = {"tone": "guard", "tone-screen": "guard"}
"""The data-manifest task whose sources an artifact trains on, where it is not the artifact's name."""


def _registry(cfg: SLMConfig) -> Any:
    from penny_slm.pipeline.model_registry import ModelRegistry

    return ModelRegistry(cfg.models_dir())


def _classifier(cfg: SLMConfig, threshold: float | None = None) -> Any:
    from penny_slm.pipeline.factory import module_from_config

    clf = module_from_config(cfg, "research")
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"--threshold must be between 0 and 1, got {threshold}")
        clf.confidence_threshold = threshold
    clf.load(_registry(cfg))
    return clf


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def cmd_models(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Build, list or roll back the models in the registry."""
    registry = _registry(cfg)
    if args.models_command == "build":
        return _build(args, registry)
    if args.models_command == "list":
        rows = []
        for name in registry.names():
            active = registry.active_version(name)
            for m in registry.list_versions(name):
                test = m.metrics.get("test", {})
                rows.append({"name": name, "version": m.version, "active": m.version == active, "created": m.created,
                             "parent": m.parent, "gate_metrics": {k: test[k] for k in m.gate_metrics if k in test}})
        if args.json:
            _print_json(rows)
        elif not rows:
            print(f"no models in {registry.root}; build them with: penny-slm models build")
        for r in [] if args.json else rows:
            gate = "  ".join(f"{k} {v}" for k, v in r["gate_metrics"].items()) or "no gate metrics"
            print(f"{'*' if r['active'] else ' '} {r['name']:<12} {r['version']:<4} {r['created']}  parent {r['parent']}  {gate}")
        return 0
    manifest = registry.rollback(args.name, args.version)
    print(f"{manifest.name} is now {manifest.version}")
    return 0


def _build(args: argparse.Namespace, registry: Any) -> int:
    """Build each requested artifact; a gate refusal or failure of one does not stop the others. Exit 0 when
    every requested artifact has an active version at the end (a refused rebuild leaves the previous one)."""
    from penny_slm.errors import RegistryError

    require("torch")  # before anything else imports part of the training stack
    from penny_slm.export.build import SPECS, BuildSettings, build_artifact
    from penny_slm.export.plan import QUICK_TABLE, TABLE, BuildPlan

    log = functools.partial(print, "[build]", flush=True)
    names = tuple(args.only) if args.only else ALL_ARTIFACTS
    seeds = {"seed": args.seed} if args.seed is not None else {}
    settings = BuildSettings(approaches=tuple(args.approach), epochs=args.epochs, limit_rows=args.limit_rows, **seeds)
    quick = tuple(n for n in names if n in QUICK_TABLE) if args.quick else ()

    def build_one(name: str) -> bool:
        """Build ``name``; True if it was already up to date (or is skipped: its sources are not cached)."""
        if name in uncached:
            log(f"{name}: not built: its training sources are not cached (penny-slm data fetch); the layer runs without it")
            return True
        if name in quick and registry.active_version(name) is not None:
            log(f"{name}: {registry.active_version(name)} is active; --quick builds only heads that have none")
            return True
        if name in SPECS:
            own = dataclasses.replace(settings, approaches=("frozen",)) if name in quick else settings
            outcome = build_artifact(registry, name, own, force=args.force, log=log)
            state = "up to date" if outcome.skipped else "built"
            print(f"{name} {outcome.manifest.version}: {state} in {outcome.seconds:.1f}s -> {registry.root / name}")
            return outcome.skipped
        if name == "tone-screen":
            from penny_slm.training.tone_screen import build_tone_screen

            return build_tone_screen(registry, force=args.force, log=log)[1]
        if name == "smollm2-135m":
            from penny_slm.export.build_generators import build_base_slm

            return build_base_slm(registry, force=args.force, log=log)[1]
        from penny_slm.export.build_generators import build_rewriter

        return build_rewriter(registry, force=args.force, limit_rows=args.limit_rows, log=log, **seeds)[1]

    without = tuple(n for n in names if n in TABLE and TABLE[n].packaged and not _sources_cached(TRAINED_ON.get(n, n)))
    uncached = tuple(n for n in names if n in NEEDS_SOURCES and registry.active_version(n) is None and not _sources_cached(n))
    plan = BuildPlan.of(registry, names, quick=quick, uncached=uncached, packaged=without)
    for line in plan.lines():
        log(line)
    plan.start()
    for name in names:
        started, skipped = time.perf_counter(), False
        try:
            skipped = build_one(name)
        except RegistryError as exc:  # the gate refused this build: say so, build the rest
            print(f"penny-slm: {name}: {exc}", file=sys.stderr)
        log(plan.finished(name, time.perf_counter() - started, skipped))
    missing = [n for n in names if registry.active_version(n) is None and n not in uncached]
    if missing:
        print(f"penny-slm: no active version of {', '.join(missing)}", file=sys.stderr)
    return 1 if missing else 0


def _sources_cached(task: str) -> bool:
    """True if a public source that trains ``task`` is in the cache (read from the cache's stamps; nothing imported)."""
    from penny_slm.training.sources import cached, load_manifest

    return any(cached(s) is not None for s in load_manifest().sources if s.role(task) == "train")


def cmd_classify(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Print the research classifier's answer for one message as JSON."""
    _print_json(_classifier(cfg, args.threshold).predict(args.text).to_dict())
    return 0


def _guard(cfg: SLMConfig, persona_path: str | None) -> Any:
    from penny_slm.config import load_persona
    from penny_slm.pipeline.factory import module_from_config

    guard = module_from_config(cfg, "guard", load_persona(persona_path))
    guard.load(_registry(cfg))
    return guard


def cmd_rewrite(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Rewrite one response, as given, with the rewriter as the guard runs it (tone flags wired); print it with its
    timings."""
    from penny_slm.config import load_persona
    from penny_slm.pipeline.modules.guard import PersonalityGuard

    guard = PersonalityGuard(persona=load_persona(args.persona))  # the rewriter as the guard runs it: tone flags wired
    rewriter, registry = guard.rewriter, _registry(cfg)
    assert rewriter is not None
    rewriter.load(registry)  # first, so a missing rewriter is the error the user sees
    guard.tone.load(registry)
    result = rewriter.rewrite(args.text, deadline_s=args.timeout)
    g = result.generation
    _print_json({"original": args.text, "rewritten": result.text, "model_version": rewriter.model_version,
                 "stop_reason": g.stop_reason, "tokens": g.n_tokens, "first_token_ms": round(g.first_token_s * 1000, 1),
                 "total_ms": round(g.seconds * 1000, 1), "tokens_per_s": round(g.tokens_per_s, 1)})
    return 0


def cmd_guard(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Print the guard's full result for one response as JSON."""
    _print_json(_guard(cfg, args.persona).predict(args.text).to_dict())
    return 0


def cmd_context(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Print the context step's ``ContextUpdate`` for one message as JSON (learned against an empty profile)."""
    from penny_slm.pipeline.modules.base import TurnContext

    _print_json(_context_tracker(cfg).run(TurnContext.of(args.text)).to_dict())
    return 0


def _context_tracker(cfg: SLMConfig) -> Any:
    """The context step as configured, loaded: with the mood head when its artifact is built."""
    from penny_slm.pipeline.factory import module_from_config

    tracker = module_from_config(cfg, "context")
    tracker.load(_registry(cfg))
    return tracker


def _eval_context(args: argparse.Namespace, cfg: SLMConfig) -> int:
    from penny_slm.training.evaluate_context import evaluate_context, held_out_rows, load_context_jsonl

    if bool(args.data) == bool(args.real):
        raise InputError("give either --data FILE.jsonl or --real TASK (formality, depth, mood or slang: its cached held-out source)")
    rows = held_out_rows(args.real) if args.real else load_context_jsonl(args.data)
    tracker = _context_tracker(cfg)
    result = evaluate_context(rows, tracker.run, version=tracker.model_version)
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def cmd_eval(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Measure a built model (or the context rules, or the drift monitor) on a data file and print the report."""
    if args.eval_command == "context":
        return _eval_context(args, cfg)
    if args.eval_command == "guard":
        return _eval_guard(args, cfg)
    if args.eval_command == "rewriter":
        return _eval_rewriter(args, cfg)
    if args.eval_command == "drift":
        return _eval_drift(args, cfg)
    if args.eval_command == "attachment":
        return _eval_attachment(args, cfg)
    from penny_slm.training.datasets import load_research_jsonl, research_rows
    from penny_slm.training.evaluate import evaluate_research, write_report

    if bool(args.data) == bool(args.real):
        raise InputError("give either --data FILE.jsonl or --real (the cached sources held out for testing)")
    if args.real:
        from penny_slm.training import importers

        rows = _real_part(research_rows(importers.rows("research", ("test",))[0]), args.part)
        if not rows:
            raise InputError("no real-world test part is cached; fetch it with: penny-slm data fetch")
    else:
        rows = load_research_jsonl(args.data)
    clf = _classifier(cfg, args.threshold)
    result = evaluate_research(clf.predict, rows)
    result["model_version"] = clf.model_version
    if args.out:
        path = write_report(result, rows, Path(args.out))
        print(f"report: {path}", file=sys.stderr)
    result.pop("_predictions")
    if args.json:
        _print_json(result)
    else:
        base = result["baseline"]
        print(f"n={result['n']} accuracy={result['accuracy']} (baseline {base['accuracy']}) "
              f"fpr={result['false_positive_rate']} (baseline {base['false_positive_rate']}) "
              f"fp_reduction={result['false_positive_reduction']} p50={result['latency_ms']['p50']}ms")
    return 0


def _real_part(held_out: list[Any], part: str) -> list[Any]:
    """The ``--part`` of held-out rows (each with a ``text``): the test half (reported, never used to change
    anything), the dev half (calibration, selection, error analysis) or both; one hash split for every task."""
    from penny_slm.training.datasets import held_out_parts

    dev_half, test_half = held_out_parts(held_out, lambda r: r.text)
    return {"dev": dev_half, "test": test_half, "all": held_out}[part]


def _add_part_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--part", choices=("test", "dev", "all"), default="test",
                        help="with --real: the test half (reported, never used to change anything; default), the dev "
                             "half (calibration, selection, error analysis) or both")


def _eval_guard(args: argparse.Namespace, cfg: SLMConfig) -> int:
    from penny_slm.training.evaluate import GuardRow, evaluate_guard, load_guard_jsonl

    if bool(args.data) == bool(args.real):
        raise InputError("give either --data FILE.jsonl or --real (the cached response sources held out for testing)")
    if args.real:
        from penny_slm.training import importers

        held_out = [GuardRow(r["text"], frozenset(r["violations"]), r["source"]) for r in importers.rows("guard", ("test",))[0]]
        rows = _real_part(held_out, args.part)
        if not rows:
            raise InputError("no real-world guard test part is cached; fetch it with: penny-slm data fetch")
    else:
        rows = load_guard_jsonl(args.data)
    result = evaluate_guard(_guard(cfg, args.persona).predict, rows)
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def _eval_rewriter(args: argparse.Namespace, cfg: SLMConfig) -> int:
    require("torch")  # the sentence embedder that scores meaning kept
    from penny_slm.export.build_generators import evaluate_rewriter_dir
    from penny_slm.pipeline.modules.rewriter import REWRITER_ARTIFACT
    from penny_slm.training.datasets import data_dir, file_hash

    if args.record and (args.data or args.limit):
        raise InputError("--record stores a measurement of the whole packaged test split; drop --data and --limit")
    registry = _registry(cfg)
    artifact = registry.load(REWRITER_ARTIFACT, args.version)
    data = Path(args.data) if args.data else data_dir() / "rewriter_test.jsonl"
    result = evaluate_rewriter_dir(registry, artifact.path, data, functools.partial(print, file=sys.stderr),
                                   args.limit, artifact.manifest.version)
    if args.record:
        registry.record_test_metrics(REWRITER_ARTIFACT, artifact.manifest.version, result, file_hash(data))
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def _eval_attachment(args: argparse.Namespace, cfg: SLMConfig) -> int:
    from penny_slm.pipeline.modules.attachment import AttachmentScorer
    from penny_slm.training.evaluate import evaluate_attachment
    from penny_slm.training.splits import AttachmentRow, load_attachment_jsonl

    if bool(args.data) == bool(args.real):
        raise InputError("give either --data FILE.jsonl or --real (the cached source held out for testing: Spiral-Bench)")
    if args.real:
        from penny_slm.training import importers

        rows = [AttachmentRow(r["text"], r["role"], bool(r["over_attachment"]), r["source"])
                for r in importers.rows("attachment", ("test",))[0]]
        if not rows:
            raise InputError("no real-world attachment test part is cached; fetch it with: penny-slm data fetch --only spiral-bench")
    else:
        rows = load_attachment_jsonl(args.data)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be between 0 and 1, got {args.threshold}")
    scorer = AttachmentScorer(intra_op_threads=cfg.runtime.intra_op_threads)
    scorer.load(_registry(cfg))
    result = evaluate_attachment(scorer.p_over_attachment, rows, scorer.threshold if args.threshold is None else args.threshold)
    result["model_version"] = scorer.model_version
    if args.json:
        _print_json(result)
    else:
        print(f"n={result['n']} precision={result['precision']} recall={result['recall']} f1={result['f1']} "
              f"fpr={result['false_positive_rate']} threshold={result['threshold']} p50={result['latency_ms']['p50']}ms")
    return 0


def _drift_monitor(cfg: SLMConfig) -> Any:
    """The drift monitor as ``models -> drift_monitor`` configures it, with the tone head if one is built."""
    from penny_slm.pipeline.factory import module_from_config

    monitor = module_from_config(cfg, "drift")
    monitor.load(_registry(cfg))
    return monitor


def _eval_drift(args: argparse.Namespace, cfg: SLMConfig) -> int:
    from penny_slm.training.drift_eval import evaluate_drift, load_streams

    result = evaluate_drift(_drift_monitor(cfg), load_streams(Path(args.data)))
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def cmd_drift(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """The drift report for one conversation (JSONL of {user, response}): the first alert's, else the last turn's."""
    from penny_slm.pipeline.modules.drift import load_history

    _print_json(_drift_monitor(cfg).check(load_history(Path(args.history))).to_dict())
    return 0


def cmd_bench(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Time every module, the generative models and the whole layer, and print (or save) the figures."""
    from penny_slm.pipeline.bench import run_bench

    result = run_bench(cfg, n=args.n, config_path=args.config)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def cmd_data(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Public datasets by manifest: fill the cache, list the sources, check a file for overlap with training text."""
    from penny_slm.training.sources import load_manifest

    manifest = load_manifest(args.manifest)
    if args.data_command == "fetch":
        return _data_fetch(args, manifest)
    if args.data_command == "list":
        return _data_list(args, manifest)
    return _data_check(args, manifest)


def _data_fetch(args: argparse.Namespace, manifest: Any) -> int:
    from penny_slm.training.sources import fetch

    if args.from_dir and not Path(args.from_dir).is_dir():
        raise InputError(f"--from {args.from_dir}: not a folder (expected one holding OWNER+NAME git mirrors)")
    sources = manifest.select(args.only)  # an unknown name fails here, before anything is fetched
    log = functools.partial(print, "[data]", file=sys.stderr, flush=True)
    ok = True
    for source in sources:  # one line per source as soon as it is done
        result = fetch([source], args.from_dir, log=log)[0]
        print(result.line(), flush=True)
        ok = ok and result.ok
    return 0 if ok else 1


def _data_list(args: argparse.Namespace, manifest: Any) -> int:
    from penny_slm.training.importers import row_counts
    from penny_slm.training.sources import cached

    rows = []
    for source in manifest.sources:
        in_cache = cached(source) is not None
        rows.append({"name": source.name, "title": source.title, "licence": source.licence, "kind": source.kind,
                     "repo": source.repo or None, "commit": source.commit or None, "uses": source.uses,
                     "files": len(source.files) + sum(t.count for t in source.trees),
                     "cache": "cached" if in_cache else "not cached", "importer": source.importer,
                     "rows": row_counts(source) if in_cache else None})
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'name':<26} {'licence':<20} {'kind':<4} {'cache':<10} {'uses (task:role)':<40} rows")
    for r in rows:
        uses = " ".join(f"{task}:{role}" for task, role in r["uses"].items())
        counts = " ".join(f"{task} {n}" for task, n in (r["rows"] or {}).items()) or (
            "no importer" if r["cache"] == "cached" else "")
        print(f"{r['name']:<26} {r['licence']:<20} {r['kind']:<4} {r['cache']:<10} {uses:<40} {counts}".rstrip())
    return 0


def _data_check(args: argparse.Namespace, manifest: Any) -> int:
    from penny_slm.jsonl import jsonl_objects
    from penny_slm.training.importers import status
    from penny_slm.training.overlap import find_overlap, training_texts

    lines, texts = [], []
    for n, obj in jsonl_objects(args.against):
        if not isinstance(obj.get("text"), str):
            raise InputError(f"{args.against}:{n}: 'text' must be a string")
        lines.append(n)
        texts.append(obj["text"])
    training = list(training_texts(manifest))
    report = find_overlap(texts, training)
    used: dict[str, int] = {}
    for _artifact, origin, _text in training:
        if origin.startswith("source "):
            used[origin[7:]] = used.get(origin[7:], 0) + 1
    sources = {s.name: f"used {used[s.name]} rows" if s.name in used else status(s)[0]
               for s in manifest.sources if "train" in s.uses.values()}
    result = report.to_dict(args.examples)
    for block in ("exact", "near"):
        for example in result[block]["examples"]:
            example["line"] = lines[example.pop("index")]
    result = {"file": str(args.against), **result, "training_sources": sources}
    if args.json:
        _print_json(result)
    else:
        print(f"checked {report.checked} texts of {args.against} against {report.training_texts} distinct training texts")
        for block, title in (("exact", "exact overlaps (after normalising)"),
                             ("near", f"near overlaps (Jaccard of character 5-grams >= {report.threshold})")):
            print(f"{title}: {result[block]['count']}")
            for ex in result[block]["examples"]:
                sim = "" if block == "exact" else f" ({ex['similarity']:.2f})"
                print(f"  line {ex['line']}{sim}: {ex['text'][:80]!r} ~ {ex['training_text'][:80]!r} in {'; '.join(ex['origins'])}")
        imported = sum(state.startswith("used") for state in sources.values())
        others = collections.Counter(state for state in sources.values() if not state.startswith("used"))
        print("public training sources: " + ", ".join([f"{imported} imported", *(f"{n} {st}" for st, n in sorted(others.items()))]))
    return 0 if report.clean else 1


def _print_turn(turn: Any) -> None:
    r, c, g, llm = turn.research, turn.context, turn.guard, turn.llm
    print(f"user> {turn.message}")
    if r.result:
        print(f"  research  [{r.status}] needs_research={r.result.needs_research} {r.result.category} "
              f"conf={r.result.confidence:.2f} {r.latency_ms:.1f} ms: {r.result.reasoning}")
    if c.result:
        print(f"  context   [{c.status}] {c.result.context_markers} ({c.result.note})")
    if turn.research_notes:
        print(f"  search    {turn.research_notes.splitlines()[0][:110]}")
    print(f"  llm       [{llm.status}] {llm.latency_ms:.0f} ms: {(llm.result or '')[:160]!r}")
    if g.result:
        print(f"  guard     [{g.status}] violations={list(g.result.violations_detected)} rewrite={g.result.rewrite_status} "
              f"{g.latency_ms:.1f} ms")
    slm_ms = turn.total_ms - turn.timings_ms.get("main_llm", 0.0)
    print(f"penny> {turn.final_response}\n  timings   {turn.timings_ms} | SLM layer {slm_ms:.1f} ms (main LLM excluded)\n")


def _layer(cfg: SLMConfig, db_path: str | None) -> Any:
    import tempfile

    from penny_slm.pipeline.layer import SLMLayer

    path = Path(db_path) if db_path else Path(tempfile.mkdtemp(prefix="penny-demo-")) / "personality.db"
    return SLMLayer(cfg, sqlite_path=path).load()


def cmd_demo(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """A scripted conversation through the whole layer (``penny_slm/demo.py``; main-LLM replies recorded unless
    ``--llm``); ``--controls``: the learning controls instead (no model needed); ``--drift``: the drift monitor on a
    recorded drifting conversation."""
    if args.controls:
        return _demo_controls(cfg, args.db)
    if args.drift:
        from penny_slm.demo import run_drift_demo

        return run_drift_demo(cfg)
    from penny_slm.demo import run_demo

    return run_demo(cfg, llm=args.llm, llm_model=args.llm_model, db_path=args.db)


def _demo_controls(cfg: SLMConfig, db_path: str | None) -> int:
    """The learning controls on a throwaway profile: a clipped change, one deferred for approval, an approval, a
    rollback and the kill switch. The updates are fed as the context tracker yields them (PreferenceUpdates), through
    the same path the layer queues them on; no model is needed."""
    import tempfile

    from penny_slm.pipeline import db
    from penny_slm.pipeline.controls import LearningControls, learning_items
    from penny_slm.pipeline.sync import ContextSyncManager
    from penny_slm.results import PreferenceUpdate

    path = Path(db_path) if db_path else Path(tempfile.mkdtemp(prefix="penny-demo-")) / "personality.db"
    store = db.open_sqlite(path)
    sync = ContextSyncManager(store, learning=cfg.learning)
    controls = LearningControls(store, sync, cfg.learning)
    user = "demo-user"
    turns = [("can you please walk me through it properly", PreferenceUpdate("formality_level", None, 0.5, "please walk me through it properly", "t1", 0.8)),
             ("kindly explain the details", PreferenceUpdate("formality_level", 0.5, 0.58, "kindly explain", "t2", 0.8)),
             ("I would appreciate a thorough, formal answer", PreferenceUpdate("formality_level", 0.58, 0.75, "a thorough, formal answer", "t3", 0.8)),
             ("Dear Penny, I write to request a formal reply", PreferenceUpdate("formality_level", 0.6, 0.95, "Dear Penny, I write to request", "t4", 0.9)),
             ("that answer was bussin fr", PreferenceUpdate("slang:bussin", None, {"gloss": "very good", "adopt": True}, "was bussin fr", "t5", 0.9))]
    try:
        print(f"learning controls on a throwaway profile ({path})\n")
        for message, update in turns:
            sync.queue_updates(learning_items(user, update.source_turn, (update,), message=message, model_version="demo",
                                              log_message_text=cfg.learning.log_message_text))
            sync.process_queue()
            entry = next(e for e in reversed(controls.log(user)) if e.key == update.key)
            print(f"user> {message}\n  {entry.key}: {entry.action}{': ' + entry.detail if entry.detail else ''}")
        print("\nwaiting for approval:")
        for waiting in controls.pending(user):
            print(f"  {waiting.line()}")
        decision = controls.approve(user, controls.pending(user)[0].id)
        print(f"\napprove #{decision.change_id}: {decision.detail}; formality_level is now "
              f"{sync.get_latest_context(user).dimensions['formality_level']}")
        print("versions: " + ", ".join(f"v{v.version} ({v.note})" for v in controls.versions(user)))
        made = controls.rollback(user, 1)
        print(f"rollback to v1: now v{made.version}, formality_level {made.profile['dimensions']['formality_level']}")
        status = controls.kill("demo")
        sync.queue_updates(learning_items(user, "t6", (PreferenceUpdate("technical_depth", None, 0.7, "explain the internals", "t6"),),
                                          message="explain the internals", model_version="demo", log_message_text="excerpt"))
        sync.process_queue()
        print(f"kill switch: safe_mode={status.safe_mode} learning={status.learning}; "
              f"a new update is {controls.log(user)[-1].action}: {controls.log(user)[-1].detail}")
        print(f"resume: safe_mode={controls.resume('demo over').safe_mode}\n\ntransparency log:")
        for entry in controls.log(user):
            print(f"  {entry.line()}")
    finally:
        store.close()
    return 0


# -- profile, kill, resume --------------------------------------------------------------------------------------------

def _open_controls(cfg: SLMConfig, where: str | None, *, create: bool = False) -> tuple[Any, Any]:
    """(store, LearningControls) on ``--db`` (a SQLite file, or a postgresql:// URL) or the layer's default database."""
    from penny_slm.pipeline import db
    from penny_slm.pipeline.controls import LearningControls
    from penny_slm.pipeline.sync import ContextSyncManager

    synchronous = cfg.runtime.database_synchronous
    if where and where.startswith(("postgres://", "postgresql://")):
        store = db.connect(where)
    else:
        url = None if where else (cfg.runtime.database_url or os.environ.get("PENNY_DB_URL"))
        path = Path(where) if where else db.default_sqlite_path()
        if not url and not create and not path.is_file():
            raise InputError(f"no personality database at {path} (Penny has not run with it yet); give --db PATH")
        store = db.connect(url) if url else db.open_sqlite(path, synchronous=synchronous)  # type: ignore[arg-type]
    sync = ContextSyncManager(store, learning=cfg.learning)
    return store, LearningControls(store, sync, cfg.learning)


def cmd_profile(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """What Penny learned about a user, and the controls over it (see pipeline/controls.py)."""
    if not args.user.strip():
        raise InputError("--user must name a user")
    store, controls = _open_controls(cfg, args.db)
    try:
        return _profile(args, controls)
    finally:
        store.close()


def _profile(args: argparse.Namespace, controls: Any) -> int:
    command, user = args.profile_command, args.user
    if command == "show":
        shown = controls.show(user)
        if args.json:
            _print_json(shown)
            return 0
        print(f"{user}: profile v{shown['version']}, {shown['awaiting_approval']} awaiting approval, {shown['deferred']} deferred, "
              f"{shown['pending_updates']} queued")
        for key, value in sorted(shown["dimensions"].items()):
            print(f"  {key} = {value!r} (confidence {shown['confidence'].get(key, 0):.2f})")
        if shown["slang"]:
            print("  slang: " + ", ".join(f"{t} ({e['gloss']})" if e["gloss"] else t for t, e in shown["slang"].items())
                  + "".join(f"; {t} adopted into Penny's voice" for t, e in shown["slang"].items() if e["adopted"]))
        print(f"  {_status_line(controls.status())}")
    elif command == "log":
        entries = controls.log(user, args.limit)
        _print_json([e.to_dict() for e in entries]) if args.json else print("\n".join(e.line() for e in entries) or f"nothing logged for {user}")
    elif command == "versions":
        versions = controls.versions(user)
        if args.json:
            _print_json([v.to_dict() for v in versions])
        for v in [] if args.json else versions:
            print(f"v{v.version}  {v.at[:19].replace('T', ' ')}  {v.note or '-'}  {json.dumps(v.profile['dimensions'], sort_keys=True)}")
        if not versions and not args.json:
            print(f"no profile versions for {user}")
    elif command == "rollback":
        made = controls.rollback(user, args.version)
        _print_json(made.to_dict()) if args.json else print(f"{user}: restored v{args.version} as v{made.version}")
    elif command == "export":
        _print_json(controls.export(user))
    elif command == "delete":
        if not args.yes:
            raise InputError(f"this deletes everything stored about {user!r} for good; add --yes to do it (export it first: "
                             f"penny-slm profile export --user {user})")
        report = controls.delete(user)
        if args.json:
            _print_json(report.to_dict())
        else:
            print(f"{user}: deleted {sum(report.rows.values())} rows ({', '.join(f'{t} {n}' for t, n in report.rows.items() if n) or 'none'}); "
                  f"{'vacuumed' if report.vacuumed else 'nothing to vacuum'}. {report.note}")
    elif command == "pending":
        entries = controls.pending(user, all_states=args.all)
        _print_json([e.to_dict() for e in entries]) if args.json else print("\n".join(e.line() for e in entries) or f"nothing waits for {user}")
    else:
        decision = controls.approve(user, args.id) if command == "approve" else controls.reject(user, args.id)
        _print_json(decision.to_dict()) if args.json else print(decision.detail + ("" if decision.changed else " (nothing changed)"))
    return 0


def _status_line(status: Any) -> str:
    if not status.safe_mode:
        return "learning " + ("on" if status.learning else "off (learning.enabled: false)") + "; generative rewriting on"
    why = "learning.kill_switch in the config" if status.config_kill_switch and not status.kill_switch else (
        f"kill switch since {(status.changed_at or '')[:19].replace('T', ' ')}" + (f" ({status.reason})" if status.reason else ""))
    return f"SAFE MODE: learning and generative rewriting stopped ({why})"


def cmd_kill(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Stop all learning and all generative rewriting (safe mode) until ``resume``; kept in the database."""
    store, controls = _open_controls(cfg, args.db, create=True)
    try:
        status = controls.kill(args.reason) if args.command == "kill" else controls.resume(args.reason)
    finally:
        store.close()
    _print_json(status.to_dict()) if args.json else print(_status_line(status))
    return 0


def cmd_dashboard(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Serve the local dashboard (penny_slm/dashboard) from the layer's database until interrupted."""
    from penny_slm.dashboard.server import TOKEN_ENV, DashboardApp, DashboardServer, check_bind

    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_bind(args.host, token)  # before the database is opened
    store, controls = _open_controls(cfg, args.db, create=True)
    server = DashboardServer(DashboardApp(cfg, store, controls, _registry(cfg), token=token), args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"penny-slm dashboard on http://{host}:{server.port}/" + ("?token=..." if token else "") + " (Ctrl-C stops it)", flush=True)
    import signal

    # Ctrl-C stops it even when started from a background job or script, whose shell leaves SIGINT ignored
    # (inherited across exec: the dashboard then could not be stopped but by SIGKILL).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
    return 0


def cmd_chat(args: argparse.Namespace, cfg: SLMConfig) -> int:
    """Interactive: one turn per line, until EOF or 'quit'."""
    import asyncio

    layer = _layer(cfg, args.db)
    try:
        for line in sys.stdin:
            if line.strip().lower() in ("quit", "exit"):
                break
            if line.strip():
                _print_turn(asyncio.run(layer.process(args.user, line.rstrip("\n"))))
    finally:
        layer.close()
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit code 2, like every other bad input."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"penny-slm: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``penny-slm`` parser with every command (the docs' command-line reference is generated from it)."""
    parser = _Parser(prog="penny-slm", description="Small local models around Penny's main LLM: build, run, evaluate and inspect them.")
    parser.add_argument("--config", help="slm_config.json overriding the packaged defaults (or $PENNY_SLM_CONFIG)")
    parser.add_argument("--models-dir", help="artifact folder (default: runtime.models_dir, or $PENNY_SLM_MODELS)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="build, list and roll back model artifacts")
    msub = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    build = msub.add_parser("build", help="train and export every missing artifact")
    build.add_argument("--force", action="store_true", help="rebuild and activate even if up to date or regressing")
    build.add_argument("--approach", action="append", choices=["frozen", "finetune"], help="training approach(es) to compare")
    build.add_argument("--quick", action="store_true",
                       help="first run: the research head, if it has no active version yet, is built on the frozen encoder "
                            "(1.5-3 minutes instead of 2.5-8); the next full build replaces it through the gate")
    build.add_argument("--epochs", type=int, help="fine-tuning epochs (default: 2 for research, 3 for tone and mood)")
    build.add_argument("--seed", type=int, help="training seed (default: 13 for the encoder heads, 17 for the rewriter)")
    build.add_argument("--limit-rows", type=int, default=0, help="train on a sample (tests, quick checks)")
    build.add_argument("--only", action="append", choices=ALL_ARTIFACTS, help="build only this artifact")
    lst = msub.add_parser("list", help="list versions")
    lst.add_argument("--json", action="store_true")
    rb = msub.add_parser("rollback", help="make an earlier version active")
    rb.add_argument("name")
    rb.add_argument("version")

    classify = sub.add_parser("classify", help="research classification of one message, as JSON")
    classify.add_argument("text")
    classify.add_argument("--threshold", type=float, help="override confidence_threshold")

    ev = sub.add_parser("eval", help="accuracy/latency regression eval")
    esub = ev.add_subparsers(dest="eval_command", required=True, parser_class=_Parser)
    er = esub.add_parser("research", help="evaluate the research classifier against the keyword baseline")
    er.add_argument("--data", help="JSONL of {text, needs_research, category?, source?}")
    er.add_argument("--real", action="store_true", help="evaluate on the cached public sources held out for testing")
    _add_part_option(er)
    er.add_argument("--json", action="store_true")
    er.add_argument("--out", help="folder for report.md and PNG plots")
    er.add_argument("--threshold", type=float)

    eg = esub.add_parser("guard", help="evaluate the personality guard on labelled responses")
    eg.add_argument("--data", help='JSONL of {"text", "violations": [...]}')
    eg.add_argument("--real", action="store_true", help="evaluate on the cached response sources held out for testing")
    _add_part_option(eg)
    eg.add_argument("--json", action="store_true")
    eg.add_argument("--persona", help="personality.json (default: packaged, or $PENNY_PERSONA)")

    ec = esub.add_parser("context", help="evaluate the context step (formality, depth, mood, slang) against its baselines")
    ec.add_argument("--data", help='JSONL of {"text", "formality"?, "technical_depth"?, "mood"?, "slang"?: [...], "pair"?: id}')
    ec.add_argument("--real", choices=("formality", "depth", "mood", "slang"),
                    help="the cached source held out for this task instead (GenPlus pairs, CEFR-SP, XED, GenPlus slang)")
    ec.add_argument("--json", action="store_true")

    ew = esub.add_parser("rewriter", help="evaluate a rewriter version on held-out pairs (alone and through the guard)")
    ew.add_argument("--data", help='JSONL of {"source", "target", "families"} (default: the packaged test split)')
    ew.add_argument("--version", help="registry version (default: the active one)")
    ew.add_argument("--limit", type=int, default=0, help="first N pairs only")
    ew.add_argument("--record", action="store_true",
                    help="store the result as the version's test metrics (the gate compares builds with them)")
    ew.add_argument("--json", action="store_true")

    ed = esub.add_parser("drift", help="replay conversation streams through the drift monitor: detection, delay, false alarms")
    ed.add_argument("--data", required=True, help='JSONL of {"stream_id", "turns": [{"user", "response"}], "drift": null | {"type", "onset"}}')
    ed.add_argument("--json", action="store_true")

    ea = esub.add_parser("attachment", help="evaluate the over-attachment head on labelled user and assistant messages")
    ea.add_argument("--data", help='JSONL of {"text", "role": "user"|"assistant", "over_attachment": bool}')
    ea.add_argument("--real", action="store_true", help="evaluate on the cached source held out for testing (Spiral-Bench)")
    ea.add_argument("--threshold", type=float, help="decision threshold (default: the one the build chose on dev)")
    ea.add_argument("--json", action="store_true")

    drift = sub.add_parser("drift", help="the behaviour drift report for one conversation, as JSON")
    drift.add_argument("--history", required=True, help='JSONL, one turn per line: {"user", "response"}')

    rewrite = sub.add_parser("rewrite", help="rewrite one response in Penny's voice with the fine-tuned SLM, as JSON")
    rewrite.add_argument("text")
    rewrite.add_argument("--timeout", type=float, default=10.0, help="seconds before generation is stopped")
    rewrite.add_argument("--persona", help="personality.json (default: packaged, or $PENNY_PERSONA)")

    context = sub.add_parser("context", help="what the context step learns from one message (ContextUpdate), as JSON")
    context.add_argument("text")

    guard = sub.add_parser("guard", help="check and fix one LLM response against the persona, as JSON")
    guard.add_argument("text")
    guard.add_argument("--persona", help="personality.json (default: packaged, or $PENNY_PERSONA)")

    bench = sub.add_parser("bench", help="latency percentiles, throughput and peak RSS")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--n", type=int, default=300, help="timed single queries per setting (after warm-up)")
    bench.add_argument("--out", help="also write the JSON here")

    data = sub.add_parser("data", help="public datasets by manifest: fetch into the cache, list, check for overlap")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    manifest = _Parser(add_help=False)
    manifest.add_argument("--manifest", help="sources.json to use (default: $PENNY_SLM_SOURCES, else the packaged one)")
    fetch = dsub.add_parser("fetch", parents=[manifest], help="fetch and verify sources into the cache ($PENNY_SLM_CACHE)")
    fetch.add_argument("--from", dest="from_dir", metavar="DIR",
                       help="a folder of local git mirrors, DIR/OWNER+NAME (default: over HTTPS)")
    fetch.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="fetch only these sources")
    dlist = dsub.add_parser("list", parents=[manifest], help="licence, uses, cache state and rows per task of each source")
    dlist.add_argument("--json", action="store_true")
    check = dsub.add_parser("check", parents=[manifest],
                            help="exact and near-duplicate overlap of a file's texts with every training text")
    check.add_argument("--against", required=True, metavar="FILE.jsonl", help='JSONL with a "text" per line')
    check.add_argument("--examples", type=int, default=10, help="examples shown per kind of overlap")
    check.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="a scripted conversation through the whole layer on the embedded defaults")
    demo.add_argument("--db", help="SQLite file for the profile (default: a throwaway one)")
    demo.add_argument("--llm", default="recorded", metavar="recorded|local|URL",
                      help="main LLM: replay recorded replies (default), the local SLM live, or an OpenAI-compatible URL")
    demo.add_argument("--llm-model", help="model name to ask the --llm URL endpoint for")
    demo.add_argument("--controls", action="store_true",
                      help="show the learning controls instead: a clipped change, an approval, a rollback, the kill switch")
    demo.add_argument("--drift", action="store_true",
                      help="show the drift monitor instead: a recorded conversation that drifts, its alerts and recommendations")

    where = _Parser(add_help=False)
    where.add_argument("--db", metavar="PATH", help="the SQLite file (or a postgresql:// URL); default: the layer's database "
                                                    "(runtime.database_url, $PENNY_DB_URL, else personality.db in the data folder)")
    where.add_argument("--json", action="store_true")
    profile = sub.add_parser("profile", help="what Penny learned about a user: show, log, versions, rollback, export, delete, approvals")
    psub = profile.add_subparsers(dest="profile_command", required=True, parser_class=_Parser)
    who = _Parser(add_help=False, parents=[where])
    who.add_argument("--user", required=True, help="the user id Penny passes to the layer")
    psub.add_parser("show", parents=[who], help="the learned profile, its version and what waits")
    plog = psub.add_parser("log", parents=[who], help="the transparency log: what was learned, when, from which message, what a control did")
    plog.add_argument("--limit", type=_positive, help="the last N entries only")
    psub.add_parser("versions", parents=[who], help="every profile version")
    prb = psub.add_parser("rollback", parents=[who], help="restore an earlier version as a new one")
    prb.add_argument("version", type=_number("version"), metavar="VERSION", help="a version number (3 or v3)")
    psub.add_parser("export", parents=[who], help="everything stored about the user, as JSON")
    pdel = psub.add_parser("delete", parents=[who], help="delete everything stored about the user, and scrub the database files")
    pdel.add_argument("--yes", action="store_true", help="really delete")
    ppend = psub.add_parser("pending", parents=[who], help="changes waiting for approval or for a rate limit's window")
    ppend.add_argument("--all", action="store_true", help="also entries already decided, expired or released")
    for name, text in (("approve", "apply a change waiting for approval"), ("reject", "drop a change waiting for approval")):
        decide = psub.add_parser(name, parents=[who], help=text)
        decide.add_argument("id", type=_number("change id"), metavar="ID", help="the change's number (see: profile pending)")
    for name, text in (("kill", "stop all learning and all generative rewriting (safe mode) until resume"),
                       ("resume", "end safe mode (learning.kill_switch in the config, if set, still holds)")):
        switch = sub.add_parser(name, parents=[where], help=text)
        switch.add_argument("--reason", default="", help="recorded with the switch")
    dash = sub.add_parser("dashboard", help="a local web page: status, personality evolution, alerts and the learning controls")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; any other needs a token)")
    dash.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    dash.add_argument("--db", metavar="PATH", help="the SQLite file (or a postgresql:// URL); default: the layer's database")
    dash.add_argument("--token", help="required to bind beyond loopback (or $PENNY_DASHBOARD_TOKEN; at least 16 characters)")
    chat = sub.add_parser("chat", help="talk to Penny through the layer, one message per line")
    chat.add_argument("--db", help="SQLite file for the profile (default: a throwaway one)")
    chat.add_argument("--user", default="me", help="user id for the profile")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _number(what: str) -> typing.Callable[[str], int]:
    def parse(text: str) -> int:
        digits = text.lstrip("v#")
        if not digits.isdigit():
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}")
        return int(digits)

    parse.__name__ = what  # argparse names the type in its message
    return parse


COMMANDS = {"models": cmd_models, "classify": cmd_classify, "guard": cmd_guard, "rewrite": cmd_rewrite, "eval": cmd_eval,
            "context": cmd_context, "data": cmd_data, "bench": cmd_bench, "demo": cmd_demo, "chat": cmd_chat, "profile": cmd_profile,
            "kill": cmd_kill, "resume": cmd_kill, "dashboard": cmd_dashboard, "drift": cmd_drift}


def main(argv: list[str] | None = None) -> int:
    """Run ``penny-slm`` with ``argv``; returns the exit code (2, with one ``penny-slm: error:`` line, for a
    ``PennySLMError``, a missing extra or an unreadable path)."""
    args = build_parser().parse_args(argv)
    if args.command == "models" and args.models_command == "build":
        if args.quick and args.approach:
            return _fail("--quick trains the frozen approach only; drop --approach")
        args.approach = args.approach or ["frozen", "finetune"]
    try:
        if args.models_dir:
            os.environ["PENNY_SLM_MODELS"] = args.models_dir
        cfg = load_config(args.config)
        return COMMANDS[args.command](args, cfg)
    except PennySLMError as exc:
        return _fail(str(exc))
    except ImportError as exc:  # an optional dependency imported directly by a training or export module
        return _fail(f"{exc.name or exc} is not installed; this command needs the training extra: pip install -e '.[train]'")
    except OSError as exc:  # a path the user gave that cannot be read or written
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))


def _fail(message: str) -> int:
    print(f"penny-slm: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
