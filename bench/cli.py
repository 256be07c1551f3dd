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
from pathlib import Path
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
                     help="run only cells whose dataset/target/defense/attack/seed matches (repeatable: every key "
                          "given, any of a key's values)")
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
    _add_serve_commands(sub)
    return parser


def _add_serve_commands(sub: argparse._SubParsersAction) -> None:
    """``bench serve`` (a grid's target behind HTTP) and ``bench attack --url`` (an attack against an endpoint)."""
    serve = sub.add_parser("serve", help="serve one target of a grid over HTTP, with its defenses (POST /predict)")
    serve.add_argument("--config", required=True, help="grid config (YAML file or shipped name) holding the target")
    serve.add_argument("--dataset", required=True, help="dataset name (or label) of the grid")
    serve.add_argument("--seed", type=int, default=0, help="seed of the grid (default 0)")
    serve.add_argument("--target", default=None, help="target label of the grid (needed when it lists several)")
    serve.add_argument("--defense", action="append", default=[], metavar="NAME",
                       help="one defense of the grid's stack, by name or label; repeat for a stack (default: none)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--api-key", action="append", default=[], metavar="KEY",
                       help="an accepted X-API-Key (repeatable); without any (and no --keys-file), every non-empty "
                            "key is a client — refused for a stack with access defenses")
    serve.add_argument("--keys-file", default=None, metavar="FILE", help="accepted API keys, one per line")
    serve.add_argument("--admin-key", default=None, metavar="KEY",
                       help="X-Admin-Key that reads GET /metrics (without it /metrics is off)")
    serve.add_argument("--max-batch", type=int, default=1024, help="images per request (default 1024)")
    serve.add_argument("--max-body", type=int, default=16 * 2**20, help="bytes per request body (default 16 MiB)")
    serve.add_argument("--max-clients", type=int, default=10_000, help="distinct API keys served (default 10000)")
    serve.add_argument("--per-address", type=int, default=64,
                       help="distinct API keys served from one remote address (default 64)")
    serve.add_argument("--reproducible", action="store_true",
                       help="noise defenses draw from the grid's seed, as in bench run (default: a secret seed)")
    serve.add_argument("--ssl-keyfile", default=None, help="TLS private key (uvicorn's ssl_keyfile)")
    serve.add_argument("--ssl-certfile", default=None, help="TLS certificate (uvicorn's ssl_certfile)")
    serve.add_argument("--cache", default="results/.cache", help="artifact cache (default results/.cache)")
    serve.add_argument("--plugin", action="append", default=[], metavar="FILE", help="Python file registering plugins")
    serve.set_defaults(func=_cmd_serve)
    attack = sub.add_parser("attack", help="run one attack against a live prediction URL; writes the usual cell files")
    attack.add_argument("--url", required=True, help="prediction URL, e.g. http://127.0.0.1:8000/predict")
    attack.add_argument("--attack", required=True, help="attack name (black-box or label-only)")
    attack.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="attack parameter, value in YAML (repeatable), e.g. --param budget=500")
    attack.add_argument("--dataset", required=True, help="the dataset the endpoint's model classifies")
    attack.add_argument("--seed", type=int, default=0, help="seed of the attack's randomness (default 0)")
    attack.add_argument("--target", default=None,
                        help="with --config: the grid target the endpoint serves (needed when it lists several)")
    attack.add_argument("--defense", action="append", default=[], metavar="NAME",
                        help="a defense the endpoint runs, in stack order (repeatable; default none): the cell is "
                             "filed under that stack")
    attack.add_argument("--config", default=None,
                        help="grid config lending dataset parameters, target and evaluator specs (default: defaults)")
    attack.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="request header of the attacker (repeatable), e.g. 'X-API-Key: k'")
    attack.add_argument("--user-header", action="append", default=None, metavar="'NAME: VALUE'",
                        help="request header of the honest user measuring accuracy (default: the attacker's)")
    attack.add_argument("--adapter", action="append", default=[], metavar="KEY=VALUE",
                        help="HttpAdapter field, value in YAML (repeatable): encoding, field, probabilities, labels, "
                             "access, batch_size, retries, backoff, timeout")
    attack.add_argument("--results", default="results", help="results root; the cell goes to <root>/<name>/")
    attack.add_argument("--name", default="remote", help="results folder name (default remote)")
    attack.add_argument("--cache", default=None, help="artifact cache (default <results>/.cache)")
    attack.add_argument("--plugin", action="append", default=[], metavar="FILE", help="Python file registering plugins")
    attack.set_defaults(func=_cmd_attack)


def _cmd_serve(args: argparse.Namespace) -> int:
    from bench.config import load_config
    from bench.registry import load_plugin_files

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    if min(args.max_batch, args.max_body, args.max_clients, args.per_address) < 1:
        raise ConfigError("--max-batch, --max-body, --max-clients and --per-address must be at least 1")
    if any(not k.strip() for k in args.api_key) or (args.admin_key is not None and not args.admin_key.strip()):
        raise ConfigError("--api-key and --admin-key must not be empty")
    if (args.ssl_keyfile is None) != (args.ssl_certfile is None):
        raise ConfigError("TLS needs both --ssl-keyfile and --ssl-certfile")
    keys = frozenset(args.api_key) | _keys_file(args.keys_file)
    load_plugin_files(args.plugin)
    from bench.serve.target import select_cell

    cell = select_cell(load_config(args.config), args.dataset, args.defense, args.seed, args.target)
    guards = cell.stack.guard_labels
    if guards and not keys:
        raise ConfigError(f"the stack's access defenses ({', '.join(guards)}) bind an API key: without --api-key or "
                          "--keys-file any new key is a new client, and a client that rotates keys starts afresh; "
                          "give the accepted keys")

    from bench.experiment import setup
    from bench.serve.app import Limits, serve
    from bench.serve.target import load_target

    setup()
    target = load_target(cell, args.cache, args.reproducible)
    scheme = "https" if args.ssl_certfile else "http"
    print(f"serving {target.label} ({target.access.value}; guards: {', '.join(target.guard_names) or 'none'}) "
          f"on {scheme}://{args.host}:{args.port}/predict; "
          f"{'API keys: ' + str(len(keys)) if keys else 'any non-empty X-API-Key is a client'}", flush=True)
    limits = Limits(args.max_batch, args.max_body, args.max_clients, args.per_address, args.admin_key)
    tls = {"ssl_keyfile": args.ssl_keyfile, "ssl_certfile": args.ssl_certfile} if args.ssl_certfile else None
    serve(target, args.host, args.port, keys or None, limits, tls)
    return EXIT_OK


def _keys_file(path: str | None) -> frozenset[str]:
    """The API keys of ``--keys-file``, one per line (blank lines and ``#`` comments skipped)."""
    if path is None:
        return frozenset()
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"--keys-file {path}: {exc.strerror}") from None
    keys = frozenset(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise ConfigError(f"--keys-file {path} holds no key")
    return keys


def _cmd_attack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.config import load_config, parse_entry
    from bench.params import parse_params
    from bench.registry import load_plugin_files
    from bench.serve.client import HttpAdapter

    load_plugin_files(args.plugin)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        raise ConfigError(f"--name '{args.name}' may hold only letters, digits, '_', '.', '-'")
    attack = parse_entry({args.attack: _key_values(args.param, "--param")}, "attack", "--attack")
    attack.build().check()
    if attack.cls.weakest_access().value == "white-box":
        raise ConfigError(f"attack '{args.attack}' is white-box: an endpoint gives no gradients; "
                          "choose a black-box or label-only attack (bench list attacks)")
    fields = {**_key_values(args.adapter, "--adapter"), "url": args.url, "headers": args.header}
    adapter = parse_params(HttpAdapter, fields, "adapter")
    user = parse_params(HttpAdapter, {**fields, "headers": args.user_header or args.header}, "adapter")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")

    from bench.experiment import setup, summary_line
    from bench.serve.client import EndpointError
    from bench.serve.remote import remote_cell, run_remote

    if args.target and not args.config:
        raise ConfigError("--target names a target of the grid given with --config")
    cell = remote_cell(args.dataset, attack, args.seed, load_config(args.config) if args.config else None, args.target,
                       args.defense)
    setup()
    results = Path(args.results) / args.name
    try:
        outcome = run_remote(cell, adapter, user, results, args.cache or Path(args.results) / ".cache")
    except EndpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED_CELLS
    print(summary_line(outcome))
    print(f"-> {results / 'cells' / cell.cell_id}")
    return EXIT_OK if outcome.status == "done" else EXIT_FAILED_CELLS


def _key_values(items: list[str], flag: str) -> dict[str, object]:
    """``KEY=VALUE`` items, each value read as YAML (``500`` an integer, ``[1, 2]`` a list)."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} '{item}': expected KEY=VALUE")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{flag} '{item}': the value is not valid YAML: {exc}") from None
    return out


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
        print(f"FAILED {f['dataset']} / {f['target']} / {f['defense']} / {f['attack']} / seed {f['seed']}: {f['error']}",
              file=sys.stderr)
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
    """The target architectures, the judges' (never a target), and a target entry's parameters."""
    from bench.config import SavedTarget, TrainSpec
    from bench.models.catalogue import ARCHITECTURES, FAMILY, FIELD_MODELS, JUDGE_MODELS, TARGET_MODELS, size_at

    for name in ARCHITECTURES:
        roles = [r for r, names in (("target", TARGET_MODELS), ("judge", JUDGE_MODELS)) if name in names]
        shape, k = ((3, 64, 64), 1000) if name in FIELD_MODELS else ((1, 32, 32), 20)
        size = f"{size_at(name, shape, k) / 1e6:.2f}M parameters at {'×'.join(map(str, shape))}, {k} identities"
        print(f"{name}  [{' and '.join(roles)}; family {FAMILY[name]}; {size}]")
        print(f"    {first_sentence(ARCHITECTURES[name].__doc__ or '')}")
    print("A judge (evaluator: {model, second}) is never of a target's family, nor the two judges of one.")
    print("target: (a mapping, or a list of them: the grid's target axis) trained by Sieve:")
    for p in describe(TrainSpec):
        allowed = f"; {p['allowed']}" if p["allowed"] else ""
        print(f"    {p['name']}: {p['type']} = {p['default']!r}  ({p['help']}{allowed})")
    print("  or a model you trained (README: 'Audit your own model'):")
    for p in describe(SavedTarget):
        if p["name"] != "digest":
            default = "required" if p["default"] is None else repr(p["default"])
            print(f"    {p['name']}: {p['type']} = {default}  ({p['help']})")
    return EXIT_OK


def first_sentence(doc: str) -> str:
    """The docstring's first sentence, whole, on one line (a sentence may span several lines)."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.search(r"(?<!e\.g)(?<!i\.e)(?<!al)(?<!vs)\.(\s|$)", paragraph)
    return paragraph[: match.start() + 1] if match else paragraph


def _parse_only(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``--only`` filters: a cell must match every key given, and one of the values given for it."""
    allowed = ("dataset", "target", "defense", "attack", "seed", "threat_model")
    only: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"--only '{item}': expected KEY=VALUE with KEY one of {', '.join(allowed)}")
        only[key] = (*only.get(key, ()), value)
    return only


if __name__ == "__main__":
    sys.exit(main())
