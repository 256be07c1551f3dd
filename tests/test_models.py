import multiprocessing
import os

import torch

from bench.models.architectures import ARCHITECTURES
from bench.models.cache import ArtifactCache, content_hash
from bench.models.training import build


def test_architectures_accept_any_size_and_use_groupnorm():
    for name, make in ARCHITECTURES.items():
        for shape in ((1, 8, 8), (3, 32, 32)):
            net = make(shape, 7)
            assert net(torch.rand(2, *shape)).shape == (2, 7), name
            assert net.features(torch.rand(2, *shape)).dim() == 2
            assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


def _mlp():
    return build("mlp", (1, 8, 8), 10, seed=0)


def _train(counter_dir):
    def train(model):
        (counter_dir / f"trained-{os.getpid()}").write_text("1")
        return {"train_acc": 1.0}
    return train


def _worker(root, counter_dir):
    torch.set_num_threads(1)
    ArtifactCache(root).get_or_train({"seed": 0, "x": 1}, _mlp, _train(counter_dir))


def test_cache_trains_once_and_reloads_with_weights_only(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    key = {"seed": 0, "dataset": "digits"}
    first = cache.get_or_train(key, _mlp, lambda m: {"train_acc": 0.5})
    second = cache.get_or_train(key, _mlp, lambda m: {"train_acc": 0.0})
    assert not first.cached and second.cached and second.info["train_acc"] == 0.5
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert content_hash(key) != content_hash({**key, "seed": 1})
    wider = cache.get_or_train(key, lambda: build("cnn", (1, 8, 8), 10, seed=0), lambda m: {"train_acc": 0.1})
    assert not wider.cached  # another architecture under the same key never loads the old weights
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_two_processes_asking_at_once_train_once(tmp_path):
    counter = tmp_path / "counter"
    counter.mkdir()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(tmp_path / "cache", counter)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(list(counter.iterdir())) == 1
