"""``bench serve``, ``HttpOracle`` and ``bench attack --url`` on loopback, against real server processes.

Three servers of one tiny digits target (a 3-epoch MLP shared through a tmp cache) start in
parallel: ``plain`` (no defense), ``rate`` (round + rate-limit) and ``monitor`` (query monitor).
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

httpx = pytest.importorskip("httpx")
os.environ["BENCH_METRICS_SECRET"] = "test-secret"  # the servers' client ids, computable here (before the import)

from bench.config import load_config  # noqa: E402
from bench.errors import ConfigError  # noqa: E402
from bench.experiment import prepare, run_cell  # noqa: E402
from bench.oracle import AccessDenied, BudgetExceeded, QueryBlocked  # noqa: E402
from bench.params import parse_params  # noqa: E402
from bench.serve.client import HttpAdapter, HttpOracle  # noqa: E402
from bench.serve.guards import WallClockBucket, client_id  # noqa: E402

GRID = """
name: serve-test
seeds: [0]
datasets: [digits]
target: {model: mlp, epochs: 3}
evaluator: {epochs: 1, steps: 30}
defenses:
  - none
  - [round: {decimals: 3}, rate-limit: {per_minute: 120, burst: 20}]
  - monitor: {k: 3, fpr: 0.001}
attacks:
  - nes: {budget: 20, checkpoint_every: 10}
"""
KEYS = [f"k{i}" for i in range(6)]
ADMIN = "admin-secret"
SERVERS = {"plain": [], "rate": ["round", "rate-limit"], "monitor": ["monitor"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    (root / "grid.yaml").write_text(GRID)
    return root


@pytest.fixture(scope="module")
def servers(grid: Path) -> Iterator[dict[str, str]]:
    """The three servers' base URLs; each process is stopped (by its pid) at the end."""
    procs, urls = {}, {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, stack in SERVERS.items():
        port = _free_port()
        cmd = [sys.executable, "-m", "bench.cli", "serve", "--config", str(grid / "grid.yaml"), "--dataset", "digits",
               "--port", str(port), "--cache", str(grid / "cache"), "--max-batch", "128", "--max-body", "200000",
               "--admin-key", ADMIN, *[a for d in stack for a in ("--defense", d)],
               *[a for k in KEYS for a in ("--api-key", k)]]
        procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        urls[name] = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        for name, url in urls.items():
            while True:
                if procs[name].poll() is not None:
                    raise RuntimeError(f"server {name} exited: {procs[name].stdout.read()}")
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"server {name} did not come up"
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    from bench.data.digits import Digits

    return Digits().load().private_test.x


def _metrics(url: str) -> dict:
    return httpx.get(f"{url}/metrics", headers={"X-Admin-Key": ADMIN}).json()


def _post(url: str, body: object, key: str | None = "k0", raw: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({} if key is None else {"X-API-Key": key})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{url}/predict", content=content, headers=headers, timeout=10)


def _adapter(url: str, key: str, **extra: object) -> HttpAdapter:
    return parse_params(HttpAdapter, {"url": f"{url}/predict", "headers": [f"X-API-Key: {key}"], **extra}, "test")


def test_http_oracle_answers_like_the_in_process_oracle_and_counts_alike(grid, servers, images):
    """(a) the same cell through bench serve + bench attack --url and in-process: same reconstructions, metrics, queries."""
    config = load_config(str(grid / "grid.yaml"))
    job = next(j for j in config.jobs())
    cell = next(c for c in job.cells if c.defense_label == "none")
    ctx = prepare(job, grid / "cache")
    local = run_cell(ctx, cell, grid / "local")
    assert local.status == "done", local.record.get("error")

    cmd = [sys.executable, "-m", "bench.cli", "attack", "--url", f"{servers['plain']}/predict", "--attack", "nes",
           "--param", "budget=20", "--param", "checkpoint_every=10", "--dataset", "digits", "--seed", "0",
           "--config", str(grid / "grid.yaml"), "--header", "X-API-Key: k1", "--user-header", "X-API-Key: k2",
           "--results", str(grid), "--name", "remote", "--cache", str(grid / "cache"), "--adapter", "batch_size=128"]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    local_dir, remote_dir = grid / "local" / "cells" / cell.cell_id, grid / "remote" / "cells" / cell.cell_id
    for name in ("record.json", "metrics.parquet", "reconstructions.npz", "grid.png", "trace.parquet"):
        assert (remote_dir / name).exists(), name
    np.testing.assert_array_equal(np.load(local_dir / "reconstructions.npz")["reconstructions"],
                                  np.load(remote_dir / "reconstructions.npz")["reconstructions"])
    metrics = [pd.read_parquet(d / "metrics.parquet").query("metric != 'attack_seconds'")
               .set_index(["metric", "target_class"])["value"].sort_index() for d in (local_dir, remote_dir)]
    pd.testing.assert_series_equal(*metrics, check_exact=True)
    remote = json.loads((remote_dir / "record.json").read_text())
    assert remote["queries"] == local.record["queries"] == 20 * 10
    assert remote["test_acc"] == local.record["test_acc"] == remote["oracle_acc"]
    by_client = _metrics(servers['plain'])["clients"]
    assert by_client[client_id("k1")]["queries"] == 200  # the attacker, one image one query
    assert by_client[client_id("k2")]["queries"] == len(ctx.splits.private_test) + len(ctx.splits.private_train)

    oracle = HttpOracle(_adapter(servers["plain"], "k3", batch_size=7), 10, (1, 8, 8), budget=30)
    probs = oracle.probabilities(images[:20])
    assert probs.shape == (20, 10) and oracle.queries == 20 and oracle.remaining == 10
    assert torch.equal(oracle.labels(images[:10]), probs[:10].argmax(1)) and oracle.queries == 30
    with pytest.raises(BudgetExceeded):
        oracle.labels(images[:1])
    with pytest.raises(AccessDenied):
        oracle.logits(images[:1])
    assert _metrics(servers['plain'])["clients"][client_id("k3")]["queries"] == 30  # nothing sent
    png = HttpOracle(_adapter(servers["plain"], "k4", encoding="png"), 10, (1, 8, 8))
    as_json = HttpOracle(_adapter(servers["plain"], "k4"), 10, (1, 8, 8))
    quantised = (images[:8] * 255).round() / 255  # what 8-bit PNGs carry
    assert torch.equal(png.probabilities(images[:8]), as_json.probabilities(quantised))


def test_rate_limit_answers_429_with_retry_after_and_the_oracle_waits(servers, images):
    """(b) the bucket: 20 at once, then 429 with Retry-After; over the burst 413; HttpOracle honours Retry-After."""
    url = servers["rate"]
    assert _post(url, {"images": images[:20].tolist()}, "k0").status_code == 200
    refused = _post(url, {"images": images[:5].tolist()}, "k0")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert _post(url, {"images": images[:21].tolist()}, "k1").status_code == 413
    assert _post(url, {"images": images[:5].tolist()}, "k1").status_code == 200  # another key, its own bucket
    answer = np.array(_post(url, {"images": images[:5].tolist()}, "k1").json()["probabilities"])
    assert np.abs(answer * 1000 - (answer * 1000).round()).max() < 1e-3  # the stack's round(decimals=3)

    waits: list[float] = []
    oracle = HttpOracle(_adapter(url, "k2", batch_size=5), 10, (1, 8, 8), sleep=lambda s: (waits.append(s), time.sleep(s)))
    assert oracle.probabilities(images[:25]).shape == (25, 10)
    assert oracle.queries == 25 and oracle.retried >= 1 and all(w >= 1 for w in waits)
    metrics = _metrics(url)
    assert metrics["clients"][client_id("k2")] == {"queries": 25, "rate_limited": oracle.retried, "blocked": False}


def test_monitor_blocks_a_flagged_client_and_no_other(servers, images):
    """(b) the monitor: near-duplicates flag their key (403 for good); concurrent clients with other keys go on."""
    url = servers["monitor"]
    start = threading.Barrier(4)
    statuses: dict[str, list[int]] = {}

    def client(key: str, batches: list[torch.Tensor]) -> None:
        start.wait()
        statuses[key] = [_post(url, {"images": b.tolist()}, key).status_code for b in batches]

    probe = images[:1].repeat(6, 1, 1, 1) + 0.001 * torch.arange(6).view(6, 1, 1, 1)
    threads = [threading.Thread(target=client, args=("k0", [probe.clamp(0, 1), images[:4]]))]
    threads += [threading.Thread(target=client, args=(k, [images[i * 8:(i + 1) * 8] for i in range(3 * j, 3 * j + 3)]))
                for j, k in enumerate(("k1", "k2", "k3"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert statuses["k0"] == [403, 403]
    assert statuses["k1"] == statuses["k2"] == statuses["k3"] == [200, 200, 200]
    metrics = _metrics(url)
    assert metrics["flagged"] == [client_id("k0")] and metrics["clients"][client_id("k1")]["queries"] == 24
    with pytest.raises(QueryBlocked):
        HttpOracle(_adapter(url, "k0"), 10, (1, 8, 8)).labels(images[:2])


def _png(size: tuple[int, int], fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.new("L", size).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def _bomb() -> str:
    """A 57-byte PNG whose header declares 30000×30000 pixels (PIL refuses to open it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def test_malformed_requests_get_4xx_and_the_server_lives(servers, images):
    """(c) a fuzz of bad requests: every answer a 4xx with a message, the server healthy afterwards."""
    url = servers["plain"]
    good = images[:2].tolist()
    rng = np.random.default_rng(0)
    cases: list[tuple[object, str | None, bytes | None]] = [
        ({"images": good}, None, None), ({"images": good}, "stranger", None), ({"images": good}, "", None),
        (None, "k0", b"{not json"), (None, "k0", b"\xff\xfe"), (None, "k0", b""), ([1, 2], "k0", None),
        ({}, "k0", None), ({"images": good, "png": []}, "k0", None), ({"images": "x"}, "k0", None),
        ({"images": []}, "k0", None), ({"images": [[[[0.5] * 8] * 8], [[[0.5] * 7] * 8]]}, "k0", None),
        ({"images": [[[["a"] * 8] * 8]]}, "k0", None), ({"images": [[[[None] * 8] * 8]]}, "k0", None),
        ({"images": [[[[0.5] * 8] * 8]] * 2 + [[1]]}, "k0", None), ({"images": [[[0.5] * 8] * 8]}, "k0", None),
        ({"images": [[[[2.0] * 8] * 8]]}, "k0", None), ({"images": [[[[-0.1] * 8] * 8]]}, "k0", None),
        (None, "k0", b'{"images": [[[[NaN' + b", 0" * 7 + b"]" + b", [0,0,0,0,0,0,0,0]" * 7 + b"]]]}"),
        (None, "k0", b'{"images": [[[[1e999' + b", 0" * 7 + b"]" + b", [0,0,0,0,0,0,0,0]" * 7 + b"]]]}"),
        ({"images": [[[[10**400] * 8] * 8]]}, "k0", None), ({"images": images[:129].tolist()}, "k0", None),
        (None, "k0", b"[" * 100_000), (None, "k0", b'{"images": [' + b"0.5, " * 60_000 + b"0.5]}"),
        ({"png": ["not base64!"]}, "k0", None), ({"png": [_png((8, 8), "JPEG")]}, "k0", None),
        ({"png": [_png((9, 8))]}, "k0", None), ({"png": [_png((4000, 4000))]}, "k0", None), ({"png": [7]}, "k0", None),
        (None, "k0", rng.bytes(5000)), ({"png": [_bomb()]}, "k0", None),
    ]
    for body, key, raw in cases:
        r = _post(url, body, key, raw)
        assert 400 <= r.status_code < 500, (body if raw is None else raw[:40], r.status_code, r.text[:200])
        assert r.text, "a refusal says why"
    assert httpx.get(f"{url}/predict").status_code == 405 and httpx.get(f"{url}/nowhere").status_code == 404
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert _post(url, {"images": good}, "k5").json()["probabilities"]
    assert _metrics(url)["clients"][client_id("k5")]["queries"] == 2


def test_load_is_answered_and_counted(servers, images):
    """(d) 4 concurrent clients × 25 requests of 8 images: all 200, counts add up (queries/s, p99 recorded)."""
    url = servers["plain"]
    before = _metrics(url)
    latencies: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()

    def client(key: str) -> None:
        with httpx.Client(headers={"X-API-Key": key}, timeout=10) as http:
            for i in range(25):
                start = time.perf_counter()
                r = http.post(f"{url}/predict", json={"images": images[i * 8:(i + 1) * 8].tolist()})
                with lock:
                    latencies.append(time.perf_counter() - start)
                    codes.append(r.status_code)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in KEYS[2:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    wall = time.perf_counter() - start
    print(f"\nload: {800 / wall:.0f} queries/s, p99 {1000 * np.percentile(latencies, 99):.1f} ms")
    assert codes == [200] * 100
    after = _metrics(url)
    for k in KEYS[2:]:
        was = before["clients"].get(client_id(k), {"queries": 0})["queries"]
        assert after["clients"][client_id(k)]["queries"] - was == 200
    assert after["requests"] - before["requests"] == 101 and after["errors"] == before["errors"]  # + the first /metrics


def test_bad_cli_input_exits_2_before_anything_runs(grid, capsys):
    from bench.cli import main

    assert main(["serve", "--config", str(grid / "grid.yaml"), "--dataset", "digits", "--defense", "noise"]) == 2
    assert "its stacks: monitor(k=3,fpr=0.001), none, round(decimals=3)+rate-limit(per_minute=120,burst=20)" in capsys.readouterr().err
    assert main(["attack", "--url", "localhost:1", "--attack", "nes", "--dataset", "digits"]) == 2
    assert main(["attack", "--url", "http://x/p", "--attack", "nes", "--dataset", "digits", "--header", "nocolon"]) == 2
    assert main(["attack", "--url", "http://x/p", "--attack", "nes", "--dataset", "digits", "--adapter", "encoding=bmp"]) == 2
    with pytest.raises(ConfigError, match="white-box"):
        from bench.cli import _parser

        args = _parser().parse_args(["attack", "--url", "http://x/p", "--attack", "mi-face", "--dataset", "digits"])
        args.func(args)


def test_wall_clock_bucket_refills_and_refuses_over_burst():
    now = [0.0]
    bucket = WallClockBucket(per_minute=60, burst=5, clock=lambda: now[0])
    assert bucket.take(5) == 0 and bucket.take(1) == pytest.approx(1.0)
    now[0] = 2.5
    assert bucket.take(2) == 0 and bucket.take(1) == pytest.approx(0.5)
    assert bucket.take(6) == float("inf")


def test_abuse_on_loopback_holds_its_statuses_and_the_server_stays_healthy(servers, images):
    """Rotating keys, oversized bodies and wrong content types against real server processes."""
    for name in ("rate", "monitor"):
        url = servers[name]
        assert {_post(url, {"images": images[:1].tolist()}, f"rotated-{i}").status_code for i in range(20)} == {401}
        assert _post(url, None, "k4", raw=b"[" + b"0.5, " * 60_000 + b"0.5]").status_code == 413
        wrong = httpx.post(f"{url}/predict", content=b"{}", headers={"X-API-Key": "k4", "Content-Type": "text/plain"})
        assert wrong.status_code == 415
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "input_shape": [1, 8, 8]}
    statuses = _metrics(servers["rate"])["statuses"]
    assert statuses.get("401", 0) >= 20 and statuses.get("413", 0) >= 1 and statuses.get("415", 0) >= 1
