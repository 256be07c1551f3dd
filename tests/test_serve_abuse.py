"""``bench serve`` under abuse, in process: keys bind the guards, client state stays small and
capped, a request is refused before its body is read, the operator's pages stay private, and
served noise is not the grid's replayable noise.

Each of these was open on f9c7ec0: rotating keys got ``[200, 200, 200, 200]`` past a rate limit
and ``[200, 200, 200]`` past the monitor; every new key deep-copied the guards (862 MiB for 300
one-image clients); the 16 MiB body was read before the key was looked at and Content-Type was
ignored; ``/health`` listed the guards and ``/metrics`` every client, to anyone.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import torch
from torch import nn

pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from bench.config import load_config  # noqa: E402
from bench.defenses.access import Monitor  # noqa: E402
from bench.oracle import ThreatModel  # noqa: E402
from bench.params import parse_params  # noqa: E402
from bench.serve.app import Limits, create_app  # noqa: E402
from bench.serve.target import ServedTarget, load_target, select_cell  # noqa: E402

SHAPE = (1, 16, 16)


def _target(rate=None, guards=()) -> ServedTarget:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 10)).eval()
    return ServedTarget("test", model, 10, SHAPE, ThreatModel.BLACK_BOX, [], rate, list(guards),
                        ["rate-limit"] if rate else [])


def _monitor() -> object:
    calibration = torch.rand(200, *SHAPE, generator=torch.Generator().manual_seed(1))
    params = parse_params(Monitor.Params, {"k": 3, "fpr": 0.01}, "test")
    return Monitor(params).guard(calibration, calibration[:100], torch.Generator().manual_seed(2))


def _post(client: TestClient, key: str | None, images: torch.Tensor, **headers: str):
    sent = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {}), **headers}
    return client.post("/predict", content=json.dumps({"images": images.tolist()}), headers=sent)


def test_keys_bind_the_rate_limit_and_the_monitor_so_rotating_them_gets_nothing():
    x = torch.rand(1, *SHAPE)
    rated = TestClient(create_app(_target(rate=(1.0, 2)), frozenset({"k"})))
    assert [_post(rated, "k", x).status_code for _ in range(4)] == [200, 200, 429, 429]
    assert [_post(rated, f"r{i}", x).status_code for i in range(4)] == [401] * 4
    monitored = TestClient(create_app(_target(guards=[_monitor()]), frozenset({"k"})))
    near = (x.repeat(6, 1, 1, 1) + 1e-4 * torch.arange(6).view(6, 1, 1, 1)).clamp(0, 1)
    assert [_post(monitored, "k", b[None]).status_code for b in near][-1] == 403
    assert [_post(monitored, f"r{i}", x).status_code for i in range(3)] == [401] * 3


def test_serve_refuses_guards_without_keys_before_training(tmp_path, capsys):
    from bench.cli import main

    (tmp_path / "g.yaml").write_text("name: g\nseeds: [0]\ndatasets: [digits]\ndefenses: [monitor]\n"
                                     "attacks: [nes]\n")
    assert main(["serve", "--config", str(tmp_path / "g.yaml"), "--dataset", "digits", "--defense", "monitor",
                 "--cache", str(tmp_path / "cache")]) == 2
    assert "access defenses (monitor) bind an API key" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_clients_are_capped_in_all_and_per_address():
    x = torch.rand(1, *SHAPE)
    capped = TestClient(create_app(_target(), None, Limits(max_clients=3)))
    assert [_post(capped, f"c{i}", x).status_code for i in range(5)] == [200, 200, 200, 429, 429]
    assert _post(capped, "c0", x).status_code == 200  # a known client goes on
    per_address = TestClient(create_app(_target(), None, Limits(per_address=2)))
    assert [_post(per_address, f"c{i}", x).status_code for i in range(3)] == [200, 200, 429]


def test_a_clients_monitor_shares_the_calibration_and_stays_under_a_mebibyte():
    template = _monitor()
    app = create_app(_target(guards=[template]), frozenset(f"k{i}" for i in range(300)), Limits(per_address=300))
    client = TestClient(app)
    for i in range(300):
        assert _post(client, f"k{i}", torch.rand(1, *SHAPE)).status_code == 200
    clients = app.served.gate.clients
    assert len(clients) == 300
    for state in clients.values():
        monitor = state.guards[0]
        assert monitor.projection.data_ptr() == template.projection.data_ptr()  # shared, not copied
        own = monitor.history.untyped_storage().nbytes()
        assert own < 2**20, own


def _asgi(app, headers: dict[str, str], body: bytes = b"{}") -> tuple[int, bool]:
    """One request straight through the ASGI app: its status, and whether the body was read."""
    read, status = [], []

    async def receive():
        read.append(True)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {"type": "http", "method": "POST", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1", "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return status[0], bool(read)


def test_a_request_is_refused_before_its_body_is_read():
    app = create_app(_target(), frozenset({"k"}), Limits(max_body=1000))
    json_type = {"content-type": "application/json"}
    assert _asgi(app, json_type) == (401, False)
    assert _asgi(app, {**json_type, "x-api-key": "stranger"}) == (401, False)
    assert _asgi(app, {"content-type": "text/plain", "x-api-key": "k"}) == (415, False)
    assert _asgi(app, {"x-api-key": "k"}) == (415, False)
    assert _asgi(app, {**json_type, "x-api-key": "k", "content-length": str(10**9)}) == (413, False)
    assert _asgi(app, {**json_type, "x-api-key": "k", "content-length": "2"})[1] is True


def test_health_says_only_ok_and_metrics_need_the_admin_key():
    x = torch.rand(1, *SHAPE)
    closed = TestClient(create_app(_target(rate=(60.0, 5)), frozenset({"k"})))
    assert closed.get("/health").json() == {"status": "ok", "input_shape": list(SHAPE)}
    assert closed.get("/metrics").status_code == 404
    app = TestClient(create_app(_target(), frozenset({"k"}), Limits(admin_key="root")))
    _post(app, "k", x)
    assert app.get("/metrics").status_code == 401
    assert app.get("/metrics", headers={"X-Admin-Key": "wrong"}).status_code == 401
    assert app.get("/metrics", headers={"X-Admin-Key": "root"}).json()["requests"] >= 1


def test_served_noise_is_secret_unless_reproducible(tmp_path):
    (tmp_path / "g.yaml").write_text("name: g\nseeds: [0]\ndatasets: [digits]\ntarget: {model: mlp, epochs: 1}\n"
                                     "defenses: [{noise: {scale: 0.05}}]\nattacks: [nes]\n")
    cell = select_cell(load_config(str(tmp_path / "g.yaml")), "digits", ["noise"], 0)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    secret = [load_target(cell, tmp_path / "cache").predict(x) for _ in range(2)]
    replayed = [load_target(cell, tmp_path / "cache", reproducible=True).predict(x) for _ in range(2)]
    assert not torch.equal(secret[0], secret[1])
    assert torch.equal(replayed[0], replayed[1])
