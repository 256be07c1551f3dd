"""``make perf``: speed ratios measured from real runs (printed, never asserted).

(a) MI-Face wall time over the raw forward+backward time of the same steps on the same batch;
(b) papermill and kernel overhead as a share of a grid's wall time;
(c) SynthFaces images rendered per second;
(d) DP-SGD (Opacus) training time over plain training of the same model on the same data;
(e) queries NES needs to hold the acc@1 hill climbing ends with, against hill climbing's;
(f) the grid's speed-up with 2 workers over 1, and the share of worker time lost to
    scheduling and kernel starts;
(g) the generator prior's training time on SynthFaces, and GMI's time over the raw
    forward+backward of generator, discriminator and target on the same latent batch;
(h) the time of one shadow model (the target's recipe and size, on a population draw) and of a
    LiRA cell (its shadows trained from scratch) on the membership grid's SynthFaces target;
(i) ``bench serve`` on loopback: queries/s and p99 latency with 1 and 8 concurrent clients, and
    the wall time of a 500-query NES attack through ``HttpOracle`` over the same through the
    in-process oracle (``--only i`` runs this item alone);
(j) an RMIA cell's time with its reference models trained from scratch, per reference model,
    and on offline LiRA's cached shadows (the same first models);
(k) the attacker's own process: NES (black-box, query batches of 100 images) with its queries
    crossing the pipe, and MI-Face (white-box, on its copy of the target), each over the same
    attack in the job's process; and the start of one attacker's process (``--only k``
    runs this item alone).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.attacker.host import run_attack  # noqa: E402
from bench.attacker.tasks import Inversion  # noqa: E402
from bench.config import load_config, parse_entry  # noqa: E402
from bench.data.digits import Digits  # noqa: E402
from bench.data.synthfaces import SynthFaces, sample_identities  # noqa: E402
from bench.experiment import (  # noqa: E402
    build_oracle,
    load_data,
    population_of,
    prepare,
    run_cell,
    setup,
    shadows_for,
    trace_table,
    train_target,
)
from bench.models.training import TrainingPlan, build, fit  # noqa: E402
from bench.oracle import Oracle, ThreatModel  # noqa: E402
from bench.params import parse_params  # noqa: E402
from bench.runner import run_grid  # noqa: E402
from bench.serve.client import HttpAdapter, HttpOracle  # noqa: E402

COMPUTE_CELL_MARKERS = ("ex.load_data", "ex.train_target", "ex.train_evaluator", "ex.train_panel", "ex.train_prior",
                        "ex.run_cell")


def mi_face_ratio(cache: Path, steps: int = 300) -> dict[str, float]:
    """MI-Face on the default grid's digits target against a bare loop of the same gradient steps."""
    job = next(j for j in load_config("default").jobs() if j.first.dataset.name == "digits")
    ctx = prepare(job, cache)
    attack = parse_entry({"mi-face": {"steps": steps, "confidence": 1.0, "patience": steps}}, "attack", "perf").build()
    targets = torch.arange(ctx.splits.meta.num_classes)
    model = ctx.target.model
    x = torch.zeros((len(targets), *ctx.splits.meta.shape), requires_grad=True)

    def raw() -> None:
        for _ in range(steps):
            F.cross_entropy(model(x), targets).backward()

    def inversion() -> None:
        attack.execute(build_oracle(ctx, job.first, attack), targets, None, seed=0)

    raw(), inversion()  # warm-up: first calls pay for allocator and dispatch caches
    attack_seconds, raw_seconds = _seconds(inversion), _seconds(raw)
    return {"attack_s": attack_seconds, "raw_fwd_bwd_s": raw_seconds, "ratio": attack_seconds / raw_seconds}


def prior_costs(cache: Path, steps: int = 200) -> dict[str, float]:
    """The ``priors`` grid's SynthFaces job (seed 0, no defense): the prior's training time, and
    GMI against a bare loop of the same steps (generator, discriminator and target forward and
    backward on the same identities × restarts latents)."""
    job = next(j for j in load_config("priors").jobs() if j.first.seed == 0 and not j.first.target_defenses)
    ctx = prepare(job, cache)
    assert ctx.prior is not None
    prior, model = ctx.prior.model, ctx.target.model
    attack = parse_entry({"gmi": {"steps": steps}}, "attack", "perf").build()
    targets = torch.arange(ctx.splits.meta.num_classes)
    labels = targets.repeat_interleave(attack.params.restarts)
    z = torch.randn((len(labels), prior.latent_dim), requires_grad=True)

    def raw() -> None:
        for _ in range(steps):
            x = prior.generate(z)
            (-prior.realism(x) + F.cross_entropy(model(x), labels, reduction="none")).sum().backward()

    def inversion() -> None:
        attack.execute(build_oracle(ctx, job.first, attack), targets, None, seed=0, prior=prior)

    raw(), inversion()  # warm-up
    attack_seconds, raw_seconds = _seconds(inversion), _seconds(raw)
    return {"prior_s": ctx.prior.info["seconds"], "prior_steps": ctx.prior.info["key"]["prior"]["steps"],
            "attack_s": attack_seconds, "raw_fwd_bwd_s": raw_seconds, "ratio": attack_seconds / raw_seconds}


def membership_costs(cache: Path) -> dict[str, float]:
    """The membership grid's SynthFaces job (seed 0, no defense): one shadow (reference) model of
    the target's recipe and size on a population draw, an offline LiRA cell and an RMIA cell
    (4 reference models) with empty shadow caches, and the RMIA cell again on LiRA's cached shadows."""
    job = next(j for j in load_config("membership").jobs()
               if j.first.seed == 0 and not j.first.target_defenses and j.first.dataset.name == "synthfaces")
    ctx = prepare(job, cache)
    population = population_of(ctx.splits)
    draw = population.draw(population.train_size, torch.Generator().manual_seed(0), "perf")
    train = shadows_for(job.first, ctx.splits, cache / "shadow-timing").trainer()
    shadow_s = _seconds(lambda: train(population.x[draw], population.y[draw], 0))
    undefended = [c for c in job.cells if c.defense_label == "none"]
    lira = next(c for c in undefended if c.attack.name == "lira" and c.attack.params.variant == "offline")
    rmia = next(c for c in undefended if c.attack.name == "rmia" and c.attack.params.reference_models == 4)
    timings = {}
    for name, cell in (("lira", lira), ("rmia", rmia)):
        fresh = dataclasses.replace(ctx, cache_dir=cache / f"{name}-timing")
        timings[f"{name}_cell_s"] = _seconds(lambda: run_cell(fresh, cell, cache / f"{name}-results"))
    shared = dataclasses.replace(ctx, cache_dir=cache / "lira-timing")
    timings["rmia_shared_s"] = _seconds(lambda: run_cell(shared, rmia, cache / "rmia-shared-results"))
    return {"shadow_s": shadow_s, **timings, "shadows": lira.attack.params.shadow_models,
            "references": rmia.attack.params.reference_models}


def papermill_overhead(grid: str, workdir: Path, workers: int) -> dict[str, float]:
    """Run ``grid`` from scratch; overhead = worker time (wall × workers) not spent inside the
    notebooks' compute cells: process and kernel starts, imports, notebook I/O, idle workers."""
    summary = run_grid(load_config(grid), workdir / "results", workdir / "cache", workers=workers, progress=True)
    compute = 0.0
    for run in summary.jobs:
        nb = json.loads(Path(run.notebook).read_text())
        for cell in nb["cells"]:
            source = "".join(cell.get("source", ""))
            if cell["cell_type"] == "code" and any(m in source for m in COMPUTE_CELL_MARKERS):
                compute += float(cell["metadata"].get("papermill", {}).get("duration") or 0.0)
    busy = summary.wall_seconds * workers
    return {"grid_wall_s": summary.wall_seconds, "compute_s": compute, "jobs": len(summary.jobs),
            "overhead_share": max(0.0, busy - compute) / busy}


def serve_costs(cache: Path, requests: int = 100, batch: int = 100, repeats: int = 3) -> dict[str, float]:
    """The default grid's digits target (seed 0, no defense) behind ``bench serve``: ``requests``
    requests of ``batch`` public images per client, 1 and 8 clients at once; then NES with 50
    queries per identity (500 in all) through HttpOracle and through the in-process oracle (best of ``repeats``)."""
    job = next(j for j in load_config("default").jobs()
               if j.first.dataset.name == "digits" and j.first.seed == 0 and not j.first.target_defenses)
    splits = load_data(job)
    target = train_target(job, splits, cache)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bench.cli", "serve", "--config", "default", "--dataset", "digits",
                               "--seed", "0", "--port", str(port), "--cache", str(cache)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/predict"
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", server)
        x = splits.public.x[:batch]
        out: dict[str, float] = {"batch": batch}
        for clients in (1, 8):
            qps, p99 = _load(url, x, clients, requests)
            out.update({f"qps_{clients}": qps, f"p99_ms_{clients}": p99})
        k, shape = splits.meta.num_classes, splits.meta.shape
        targets = torch.arange(k)
        attack = parse_entry({"nes": {"budget": 50}}, "attack", "perf").build()
        adapter = parse_params(HttpAdapter, {"url": url, "headers": ["X-API-Key: perf"]}, "perf")

        def local() -> None:
            attack.execute(Oracle(target.model, ThreatModel.BLACK_BOX, k, shape, budget=500), targets, splits.public.x, 0)

        def remote() -> None:
            with HttpOracle(adapter, k, shape, budget=500) as oracle:
                attack.execute(oracle, targets, splits.public.x, 0)

        local(), remote()  # warm-up
        out["nes_local_s"] = min(_seconds(local) for _ in range(repeats))
        out["nes_http_s"] = min(_seconds(remote) for _ in range(repeats))
        return out
    finally:
        server.terminate()
        server.wait(timeout=30)


def boundary_costs(cache: Path, repeats: int = 3) -> dict[str, float]:
    """The default grid's digits target (seed 0, no defense, 5 private identities): NES (2,000
    queries per identity, 20 probes per identity per step: batches of 100 images) and MI-Face
    (500 steps) run in the attacker's process over the same in the job's (best of ``repeats``,
    after a warm-up that starts the fork server), and a one-query attack's round trip (a
    process started and ended, over the same attack in the job's process)."""
    job = next(j for j in load_config("default").jobs()
               if j.first.dataset.name == "digits" and j.first.seed == 0 and not j.first.target_defenses)
    splits = load_data(job)
    target = train_target(job, splits, cache)
    k, shape = splits.meta.num_classes, splits.meta.shape
    task = Inversion(torch.arange(k), splits.public.x, None, 0)
    out: dict[str, float] = {"batch": 20 * k}
    for name, entry, threat in (("nes", {"nes": {"budget": 2000, "samples": 20}}, ThreatModel.BLACK_BOX),
                                ("mi_face", {"mi-face": {"steps": 500, "patience": 500}}, ThreatModel.WHITE_BOX),
                                ("start", {"public-lookalike": {"budget": 1}}, ThreatModel.BLACK_BOX)):
        attack = parse_entry(entry, "attack", "perf").build()
        oracle = lambda: Oracle(target.model, threat, k, shape)  # noqa: E731

        def inside() -> None:
            attack.execute(oracle(), task.identities, task.public, task.seed)

        def apart() -> None:
            run_attack(attack, task, oracle(), model=target.model)

        inside(), apart()  # warm-up: the fork server starts once per job
        out[f"{name}_inside_s"] = min(_seconds(inside) for _ in range(repeats))
        out[f"{name}_apart_s"] = min(_seconds(apart) for _ in range(repeats))
    return out


def _wait_for(url: str, server: subprocess.Popen, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"bench serve exited with {server.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"bench serve did not answer {url} within {timeout:.0f} s")


def _load(url: str, x: torch.Tensor, clients: int, requests: int) -> tuple[float, float]:
    """``clients`` threads, each with its own key and connection, ``requests`` requests of ``x``:
    the server's queries/s over the whole run and the p99 request latency in ms."""
    import httpx

    body = json.dumps({"images": x.tolist()}).encode()
    latencies: list[float] = []

    def client(key: str) -> None:
        with httpx.Client(headers={"X-API-Key": key, "Content-Type": "application/json"}, timeout=60) as http:
            for _ in range(requests):
                start = time.perf_counter()
                http.post(url, content=body).raise_for_status()
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(f"load-{clients}-{i}",)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return clients * requests * len(x) / wall, 1000 * float(torch.tensor(latencies).quantile(0.99))


def _seconds(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def query_efficiency(cache: Path, budget: int = 2000) -> dict[str, dict[str, float]]:
    """Per dataset of the default grid (seed 0, no defense), both attacks with ``budget`` queries
    per identity: the acc@1 hill climbing ends with, the queries per identity after which each
    attack holds at least that for the rest of its run, and what NES has after a fifth of the budget."""
    out = {}
    for job in (j for j in load_config("default").jobs() if j.first.seed == 0 and not j.first.target_defenses):
        ctx = prepare(job, cache)
        targets = torch.arange(ctx.splits.meta.num_classes)
        traces = {}
        for name in ("hill-climb", "nes"):
            attack = parse_entry({name: {"budget": budget, "checkpoint_every": 20}}, "attack", "perf").build()
            result = attack.execute(build_oracle(ctx, job.first, attack), targets, ctx.splits.public.x, seed=0)
            traces[name] = trace_table(result, targets, ctx.evaluator.model).assign(
                per_identity=lambda t: t["queries"] / len(targets))
        goal = float(traces["hill-climb"]["acc@1"].iloc[-1])
        holds = {name: _holds_from(t, goal) for name, t in traces.items()}
        nes = traces["nes"]
        out[job.first.dataset.label] = {
            "acc@1": goal, **holds, "ratio": holds["hill-climb"] / holds["nes"],
            "nes_acc@1_fifth": float(nes[nes["per_identity"] <= budget / 5]["acc@1"].iloc[-1]),
            "nes_acc@1": float(nes["acc@1"].iloc[-1]), "chance": 1 / len(targets), "budget": budget,
        }
    return out


def _holds_from(trace: pd.DataFrame, goal: float) -> float:
    """Queries per identity from which acc@1 stays at or above ``goal`` (float32 sums: tolerance)."""
    below = trace.index[trace["acc@1"] < goal - 1e-9]
    after = trace if not len(below) else trace.loc[below[-1] + 1 :]
    return float(after["per_identity"].iloc[0]) if len(after) else math.inf


def dp_sgd_ratio(epochs: int = 5) -> dict[str, float]:
    """The default target (cnn) on digits' private training set, plain against DP-SGD at epsilon 8."""
    splits = Digits().load()
    plan = TrainingPlan(epochs=epochs, lr=1e-3, batch_size=32)
    seconds = {}
    for name, hooks in (("plain", []), ("dp_sgd", [parse_entry({"dp-sgd": {"epsilon": 8}}, "defense", "perf").build()])):
        net = build("cnn", splits.meta.shape, splits.meta.num_classes, seed=0, hooks=hooks)
        start = time.perf_counter()
        fit(net, splits.private_train, plan, seed=0, desc=name, hooks=hooks)
        seconds[name] = time.perf_counter() - start
    return {**seconds, "ratio": seconds["dp_sgd"] / seconds["plain"]}


def synthfaces_rate(n: int = 5000) -> float:
    ds = SynthFaces()
    people = sample_identities(20, torch.Generator().manual_seed(0))
    who = torch.arange(n) % 20
    ds.draw(people, who[:100], stream=9)  # warm-up
    start = time.perf_counter()
    ds.draw(people, who, stream=9)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", default="default", help="grid run with 1 and with 2 workers, from scratch")
    parser.add_argument("--only", choices=("i", "k"), help="run this item alone (its target trained afresh)")
    args = parser.parse_args()
    setup()
    if args.only:
        with tempfile.TemporaryDirectory(prefix="sieve-perf-") as tmp:
            if args.only == "i":
                _print_serve(serve_costs(Path(tmp) / "cache"))
            else:
                _print_boundary(boundary_costs(Path(tmp) / "cache"))
        return
    with tempfile.TemporaryDirectory(prefix="sieve-perf-") as tmp:
        work = Path(tmp)
        rate = synthfaces_rate()
        dp = dp_sgd_ratio()
        overhead = papermill_overhead(args.grid, work / "one", workers=1)
        parallel = papermill_overhead(args.grid, work / "two", workers=2)
        mi = mi_face_ratio(work / "one" / "cache")
        efficiency = query_efficiency(work / "one" / "cache")
        priors = prior_costs(work / "one" / "cache")
        membership = membership_costs(work / "one" / "cache")
        served = serve_costs(work / "one" / "cache")
        boundary = boundary_costs(work / "one" / "cache")
    print("\nSieve performance (measured now, this machine)")
    print(f"(a) mi-face / raw forward+backward, same steps and batch: {mi['ratio']:.2f}x "
          f"({mi['attack_s']:.2f} s vs {mi['raw_fwd_bwd_s']:.2f} s)")
    print(f"(b) papermill + kernel overhead, '{args.grid}' grid, 1 worker: "
          f"{100 * overhead['overhead_share']:.1f} % of {overhead['grid_wall_s']:.0f} s wall "
          f"({overhead['jobs']} jobs, {overhead['compute_s']:.0f} s in compute cells; goal < 15 %)")
    print(f"(c) synthfaces: {rate:,.0f} images/s (32x32 grayscale)")
    print(f"(d) DP-SGD / plain training, cnn on digits, 5 epochs: {dp['ratio']:.2f}x "
          f"({dp['dp_sgd']:.1f} s vs {dp['plain']:.1f} s)")
    for dataset, e in efficiency.items():
        print(f"(e) {dataset}: hill-climb ends at acc@1 {e['acc@1']:.2f} (chance {e['chance']:.2f}) and holds it from "
              f"{e['hill-climb']:.0f} queries/identity, nes from {e['nes']:.0f}: {e['ratio']:.1f}x fewer (goal >= 5x); "
              f"nes with a fifth of the {e['budget']} queries: acc@1 {e['nes_acc@1_fifth']:.2f}, with all: {e['nes_acc@1']:.2f}")
    print(f"(f) '{args.grid}' grid with 2 workers: {overhead['grid_wall_s'] / parallel['grid_wall_s']:.2f}x faster "
          f"than 1 ({parallel['grid_wall_s']:.0f} s vs {overhead['grid_wall_s']:.0f} s; goal >= 1.7x); "
          f"{100 * parallel['overhead_share']:.1f} % of worker time outside compute cells")
    print(f"(g) generator prior on synthfaces: {priors['prior_s']:.0f} s for {priors['prior_steps']} steps; "
          f"gmi / raw forward+backward of generator, discriminator and target, same steps and batch: "
          f"{priors['ratio']:.2f}x ({priors['attack_s']:.2f} s vs {priors['raw_fwd_bwd_s']:.2f} s; goal <= 1.5x)")
    print(f"(h) membership on synthfaces (mlp target): one shadow (reference) model {membership['shadow_s']:.1f} s; "
          f"an offline LiRA cell with its {membership['shadows']} shadows trained from scratch "
          f"{membership['lira_cell_s']:.0f} s")
    print(f"(j) RMIA with {membership['references']} reference models trained from scratch "
          f"{membership['rmia_cell_s']:.1f} s, on offline LiRA's cached shadows {membership['rmia_shared_s']:.1f} s "
          f"({membership['rmia_cell_s'] / membership['references']:.1f} s per reference model)")
    _print_serve(served)
    _print_boundary(boundary)


def _print_boundary(b: dict[str, float]) -> None:
    print(f"(k) the attacker's own process, digits cnn: nes with query batches of {b['batch']:.0f} images "
          f"{b['nes_apart_s'] / b['nes_inside_s']:.2f}x its time in the job's process "
          f"({b['nes_apart_s']:.2f} s vs {b['nes_inside_s']:.2f} s; goal <= 1.2x), white-box mi-face "
          f"{b['mi_face_apart_s'] / b['mi_face_inside_s']:.2f}x ({b['mi_face_apart_s']:.2f} s vs "
          f"{b['mi_face_inside_s']:.2f} s; goal <= 1.05x); one process started and ended "
          f"{1000 * (b['start_apart_s'] - b['start_inside_s']):.0f} ms")


def _print_serve(s: dict[str, float]) -> None:
    print(f"(i) bench serve on loopback, digits cnn, requests of {s['batch']:.0f} images: "
          f"1 client {s['qps_1']:,.0f} queries/s (p99 {s['p99_ms_1']:.1f} ms), "
          f"8 clients {s['qps_8']:,.0f} queries/s (p99 {s['p99_ms_8']:.1f} ms); nes with 500 queries through "
          f"HttpOracle / in-process: {s['nes_http_s'] / s['nes_local_s']:.2f}x "
          f"({s['nes_http_s']:.2f} s vs {s['nes_local_s']:.2f} s)")


if __name__ == "__main__":
    main()
