"""``penny-slm``: models build|list|rollback, classify, guard, eval research|guard, bench, demo.

Exit codes: 0 success, 2 bad input or any ``PennySLMError`` (one line on stderr). Heavy imports
(torch via training/export) happen only inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from penny_slm.config import SLMConfig, load_config
from penny_slm.errors import InputError, PennySLMError

DEMO_QUERIES = (
    "what's bitcoin trading at right now?",
    "write a python function that returns today's date",
    "who won the lakers game last night",
    "explain how compound interest works",
    "is it going to rain in seattle tomorrow",
    "i'm feeling kind of burnt out this week",
    "can you double-check whether the museum is still free on sundays",
    "what's the latest version of numpy",
    "if a jacket costs $80 and it's 25% off, what's the price",
    "write a haiku about the current state of my inbox",
)


DEMO_RESPONSES = (
    "*adjusts glasses* Great question!! Grab a coffee and let's dive in. The loop skips the last item, CJ.",
    "Oh my gosh, you're a total rockstar, I'm SO proud of you, superstar. Your tests pass now.",
    "Fine. Use `x != y` there; the API returns JSON and a 429 means slow down. Do NOT commit the key.",
)


def _registry(cfg: SLMConfig) -> Any:
    from penny_slm.pipeline.model_registry import ModelRegistry

    return ModelRegistry(cfg.models_dir())


def _classifier(cfg: SLMConfig, threshold: float | None = None) -> Any:
    from penny_slm.pipeline.modules.research import ResearchClassifier

    clf = ResearchClassifier.from_config(cfg)
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"--threshold must be between 0 and 1, got {threshold}")
        clf.confidence_threshold = threshold
    clf.load(_registry(cfg))
    return clf


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def cmd_models(args: argparse.Namespace, cfg: SLMConfig) -> int:
    registry = _registry(cfg)
    if args.models_command == "build":
        from penny_slm.export.build import SPECS, BuildSettings, build_all

        settings = BuildSettings(approaches=tuple(args.approach), epochs=args.epochs, seed=args.seed, limit_rows=args.limit_rows)
        names = tuple(args.only) if args.only else tuple(SPECS)
        for outcome in build_all(registry, settings, force=args.force, names=names):
            state = "up to date" if outcome.skipped else "built"
            print(f"{outcome.name} {outcome.manifest.version}: {state} in {outcome.seconds:.1f}s -> {registry.root / outcome.name}")
        return 0
    if args.models_command == "list":
        rows = []
        for name in registry.names():
            active = registry.active_version(name)
            for m in registry.list_versions(name):
                test = m.metrics.get("test", {})
                rows.append({"name": name, "version": m.version, "active": m.version == active, "created": m.created,
                             "parent": m.parent, "accuracy": test.get("accuracy"), "f1": test.get("f1"),
                             "false_positive_rate": test.get("false_positive_rate")})
        if args.json:
            _print_json(rows)
        elif not rows:
            print(f"no models in {registry.root}; build them with: penny-slm models build")
        for r in [] if args.json else rows:
            print(f"{'*' if r['active'] else ' '} {r['name']:<10} {r['version']:<5} {r['created']}  "
                  f"acc {r['accuracy']}  f1 {r['f1']}  fpr {r['false_positive_rate']}  parent {r['parent']}")
        return 0
    manifest = registry.rollback(args.name, args.version)
    print(f"{manifest.name} is now {manifest.version}")
    return 0


def cmd_classify(args: argparse.Namespace, cfg: SLMConfig) -> int:
    _print_json(_classifier(cfg, args.threshold).predict(args.text).to_dict())
    return 0


def _guard(cfg: SLMConfig, persona_path: str | None) -> Any:
    from penny_slm.config import load_persona
    from penny_slm.pipeline.modules.guard import PersonalityGuard

    guard = PersonalityGuard.from_config(cfg, load_persona(persona_path))
    guard.load(_registry(cfg))
    return guard


def cmd_guard(args: argparse.Namespace, cfg: SLMConfig) -> int:
    _print_json(_guard(cfg, args.persona).predict(args.text).to_dict())
    return 0


def cmd_eval(args: argparse.Namespace, cfg: SLMConfig) -> int:
    if args.eval_command == "guard":
        return _eval_guard(args, cfg)
    from penny_slm.training.datasets import load_research_jsonl
    from penny_slm.training.evaluate import evaluate_research, write_report

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


def _eval_guard(args: argparse.Namespace, cfg: SLMConfig) -> int:
    from penny_slm.training.evaluate import evaluate_guard, load_guard_jsonl

    rows = load_guard_jsonl(args.data)
    result = evaluate_guard(_guard(cfg, args.persona).predict, rows)
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def cmd_bench(args: argparse.Namespace, cfg: SLMConfig) -> int:
    from penny_slm.pipeline.bench import run_bench

    result = run_bench(cfg, n=args.n, config_path=args.config)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_json(result) if args.json else print(json.dumps(result))
    return 0


def cmd_demo(args: argparse.Namespace, cfg: SLMConfig) -> int:
    import time

    clf, guard = _classifier(cfg), _guard(cfg, None)
    print(f"research classifier {clf.model_version} (threshold {clf.confidence_threshold}), "
          f"tone head {guard.model_version}\n\n== user messages -> research classifier ==")
    searches = 0
    for query in DEMO_QUERIES:
        start = time.perf_counter()
        result = clf.predict(query)
        ms = (time.perf_counter() - start) * 1000
        searches += result.needs_research
        flag = "SEARCH" if result.needs_research else "direct"
        print(f"[{flag}] {query}\n         {result.category}, confidence {result.confidence:.2f}, {ms:.1f} ms: {result.reasoning}")
    print(f"\n{searches}/{len(DEMO_QUERIES)} messages would trigger a web search.\n\n== LLM responses -> personality guard ==")
    for response in DEMO_RESPONSES:
        start = time.perf_counter()
        verdict = guard.predict(response)
        ms = (time.perf_counter() - start) * 1000
        print(f"in:  {response}\nout: {verdict.rewritten_response}\n     violations {list(verdict.violations_detected)}, "
              f"confidence {verdict.confidence:.2f}, {ms:.1f} ms; rewrite: {verdict.rewrite_status}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="penny-slm", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", help="slm_config.json overriding the packaged defaults (or $PENNY_SLM_CONFIG)")
    parser.add_argument("--models-dir", help="artifact folder (default: runtime.models_dir, or $PENNY_SLM_MODELS)")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="build, list and roll back model artifacts")
    msub = models.add_subparsers(dest="models_command", required=True)
    build = msub.add_parser("build", help="train and export every missing artifact")
    build.add_argument("--force", action="store_true", help="rebuild and activate even if up to date or regressing")
    build.add_argument("--approach", action="append", choices=["frozen", "finetune"], help="training approach(es) to compare")
    build.add_argument("--epochs", type=int, default=3)
    build.add_argument("--seed", type=int, default=13)
    build.add_argument("--limit-rows", type=int, default=0, help="train on a sample (tests, quick checks)")
    build.add_argument("--only", action="append", choices=["research", "tone"], help="build only this artifact")
    lst = msub.add_parser("list", help="list versions")
    lst.add_argument("--json", action="store_true")
    rb = msub.add_parser("rollback", help="make an earlier version active")
    rb.add_argument("name")
    rb.add_argument("version")

    classify = sub.add_parser("classify", help="research classification of one message, as JSON")
    classify.add_argument("text")
    classify.add_argument("--threshold", type=float, help="override confidence_threshold")

    ev = sub.add_parser("eval", help="accuracy/latency regression eval")
    esub = ev.add_subparsers(dest="eval_command", required=True)
    er = esub.add_parser("research", help="evaluate the research classifier against the keyword baseline")
    er.add_argument("--data", required=True, help="JSONL of {text, needs_research, category?}")
    er.add_argument("--json", action="store_true")
    er.add_argument("--out", help="folder for report.md and PNG plots")
    er.add_argument("--threshold", type=float)

    eg = esub.add_parser("guard", help="evaluate the personality guard on labelled responses")
    eg.add_argument("--data", required=True, help='JSONL of {"text", "violations": [...]}')
    eg.add_argument("--json", action="store_true")
    eg.add_argument("--persona", help="personality.json (default: packaged, or $PENNY_PERSONA)")

    guard = sub.add_parser("guard", help="check and fix one LLM response against the persona, as JSON")
    guard.add_argument("text")
    guard.add_argument("--persona", help="personality.json (default: packaged, or $PENNY_PERSONA)")

    bench = sub.add_parser("bench", help="latency percentiles, throughput and peak RSS")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--n", type=int, default=300, help="timed single queries per setting (after warm-up)")
    bench.add_argument("--out", help="also write the JSON here")

    sub.add_parser("demo", help="run sample messages and responses through the layer on the embedded defaults")
    return parser


COMMANDS = {"models": cmd_models, "classify": cmd_classify, "guard": cmd_guard, "eval": cmd_eval, "bench": cmd_bench, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "approach", None) is None and args.command == "models":
        args.approach = ["frozen", "finetune"]
    try:
        if args.models_dir:
            os.environ["PENNY_SLM_MODELS"] = args.models_dir
        cfg = load_config(args.config)
        return COMMANDS[args.command](args, cfg)
    except PennySLMError as exc:
        print(f"penny-slm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
