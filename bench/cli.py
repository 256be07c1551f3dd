"""The ``bench`` command: run grids, list plugins and configs.

Exit codes: 0 all cells complete, 1 some cells failed, 2 invalid config or plugin
(reported before anything runs or is written).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported anywhere below

from bench.errors import ConfigError, PluginError  # noqa: E402

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, PluginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="Sieve: model-inversion attacks and defenses, measured.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a grid config (a YAML file or a shipped name: smoke, default, ...)")
    run.add_argument("config", help="YAML file or shipped config name")
    run.add_argument("--workers", type=int, default=1, help="jobs run in this many processes (default 1)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local worker processes, or Dask (a LocalCluster of --workers, or --scheduler)")
    run.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="an existing Dask scheduler (implies --executor dask)")
    run.add_argument("--plugin", action="append", default=[], metavar="FILE", help="Python file registering plugins")
    run.add_argument("--results", default="results", help="results root; the grid writes <root>/<name>/")
    run.add_argument("--cache", default=None, help="artifact cache (default <results>/.cache)")
    run.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                     help="run only cells whose dataset/target/defense/attack/seed matches (repeatable)")
    run.add_argument("--keep-stale", action="store_true",
                     help="keep complete cells that another code version wrote (default: re-run them)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.set_defaults(func=_cmd_run)
    report = sub.add_parser("report", help="(re)build the report of a results folder: figures, defense table, HTML")
    report.add_argument("results_dir", help="a grid's results folder, e.g. results/default")
    report.set_defaults(func=_cmd_report)
    ls = sub.add_parser("list", help="list attacks, defenses, datasets, target models or configs")
    ls.add_argument("kind", choices=("attacks", "defenses", "datasets", "models", "configs"))
    ls.add_argument("--plugin", action="append", default=[], metavar="FILE", help="Python file registering plugins")
    ls.set_defaults(func=_cmd_list)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from bench.config import load_config
    from bench.registry import load_plugin_files

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    only = _parse_only(args.only)
    load_plugin_files(args.plugin)
    config = load_config(args.config)

    from bench.report.summary import best_attacks, judge_table
    from bench.results import load_tables
    from bench.runner import run_grid

    executor = "dask" if args.scheduler else args.executor
    summary = run_grid(config, args.results, args.cache, args.workers, tuple(args.plugin), only,
                       progress=not args.no_progress, executor=executor, scheduler=args.scheduler,
                       keep_stale=args.keep_stale)
    cells, metrics = load_tables(summary.results_dir)
    table = best_attacks(cells, metrics)
    if not table.empty:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_rows", 200, "display.max_colwidth", 40):
            print(table.to_string())
            print("\nthe judge of every acc@1 (its training data; accuracy on held-out photos and on class means):")
            print(judge_table(cells).to_string())
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items()))
    print(f"\n{summary.total} cells ({counts}) in {summary.wall_seconds:.0f} s -> {summary.results_dir}")
    for f in summary.failed:
        print(f"FAILED {f['dataset']} / {f['defense']} / {f['attack']} / seed {f['seed']}: {f['error']}", file=sys.stderr)
    _report(summary.results_dir)
    return EXIT_OK if summary.ok else EXIT_FAILED_CELLS


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not (Path(args.results_dir) / "tables" / "cells.parquet").exists():
        raise ConfigError(f"{args.results_dir} holds no grid tables (tables/cells.parquet); run 'bench run' first")
    return EXIT_OK if _report(args.results_dir) else EXIT_FAILED_CELLS


def _report(results_dir: object) -> bool:
    """Build the report; a report that fails is reported, never loses the grid's results."""
    from bench.report.build import build_report
    from bench.runner import kernel_name

    try:
        path = build_report(str(results_dir), kernel_name())
    except Exception as exc:  # the tables are written already; say what went wrong
        print(f"report failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return False
    print(f"report: {path}")
    return True


def _cmd_list(args: argparse.Namespace) -> int:
    from bench.registry import REGISTRIES, load_plugin_files

    load_plugin_files(args.plugin)
    if args.kind == "configs":
        from bench.config import shipped_configs

        for name, path in sorted(shipped_configs().items()):
            print(f"{name:12s} {path}")
        return EXIT_OK
    from bench.params import describe

    if args.kind == "models":
        return _list_models(describe)

    for name, cls in REGISTRIES[args.kind].items():
        extra = []
        if getattr(cls, "kind", "inversion") != "inversion":
            extra.append(f"kind: {cls.kind}")
        for attr in ("stage", "threat_model"):
            if hasattr(cls, attr):
                extra.append(f"{attr}: {getattr(cls, attr).value}")
        if getattr(cls, "least_access", None) is not None:
            extra.append(f"also {cls.least_access.value}")
        if getattr(cls, "needs_public_data", False):
            extra.append("needs public data")
        if getattr(cls, "needs_prior", False):
            extra.append("searches the generator prior")
        doc = first_sentence(cls.__doc__ or "")
        print(f"{name}  [{'; '.join(extra)}]" if extra else name)
        if doc:
            print(f"    {doc}")
        if args.kind == "datasets":
            print(f"    judge: {cls.judge_data}")
        if getattr(cls, "citation", ""):
            print(f"    cites: {cls.citation}")
        for p in describe(cls.Params):
            allowed = f"; {p['allowed']}" if p["allowed"] else ""
            print(f"    {p['name']}: {p['type']} = {p['default']!r}  ({p['help']}{allowed})")
    return EXIT_OK


def _list_models(describe: Callable[[type], list[dict[str, Any]]]) -> int:
    """The target architectures, the evaluator's (never a target), and a target entry's parameters."""
    from bench.config import TrainSpec
    from bench.models.architectures import ARCHITECTURES, EVALUATOR_MODEL, TARGET_MODELS

    for name in (*TARGET_MODELS, EVALUATOR_MODEL):
        role = "target" if name in TARGET_MODELS else "the evaluator's, not a target"
        print(f"{name}  [{role}]")
        print(f"    {first_sentence(ARCHITECTURES[name].__doc__ or '')}")
    print("target: (a mapping, or a list of them: the grid's target axis)")
    for p in describe(TrainSpec):
        allowed = f"; {p['allowed']}" if p["allowed"] else ""
        print(f"    {p['name']}: {p['type']} = {p['default']!r}  ({p['help']}{allowed})")
    return EXIT_OK


def first_sentence(doc: str) -> str:
    """The docstring's first sentence, whole, on one line (a sentence may span several lines)."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.search(r"(?<!e\.g)(?<!i\.e)(?<!al)(?<!vs)\.(\s|$)", paragraph)
    return paragraph[: match.start() + 1] if match else paragraph


def _parse_only(items: list[str]) -> dict[str, str]:
    allowed = ("dataset", "target", "defense", "attack", "seed", "threat_model")
    only = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"--only '{item}': expected KEY=VALUE with KEY one of {', '.join(allowed)}")
        only[key] = value
    return only


if __name__ == "__main__":
    sys.exit(main())
