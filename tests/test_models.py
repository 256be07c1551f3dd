import multiprocessing
import os

import torch

from bench.models.architectures import OWN_ARCHITECTURES
from bench.models.cache import ArtifactCache, content_hash
from bench.models.training import build


def test_architectures_accept_any_size_and_use_groupnorm():
    for name, make in OWN_ARCHITECTURES.items():
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


def test_identity_augmentation_keeps_labels_shape_range_and_mixes_within_an_identity():
    from bench.models.augment import AugmentSpec, identity_augment

    # identity k: constant images of brightness k/4 — a mix across identities would show another level
    y = torch.arange(4).repeat_interleave(8)
    x = (y.float() / 4).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()
    only_mix = AugmentSpec(shift=0, rotate=0, scale=0, flip=False, brightness=0, contrast=0, gradient=0, mix=0.5)
    out, labels = identity_augment(x, y, torch.Generator().manual_seed(0), only_mix)
    assert torch.equal(labels, y) and torch.allclose(out, x)  # mixing photos of one identity only
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    full, _ = identity_augment(torch.rand(32, 1, 8, 8), y, g(), AugmentSpec())
    again, _ = identity_augment(torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(5)), y, g(), AugmentSpec())
    assert full.shape == (32, 1, 8, 8) and 0 <= full.min() and full.max() <= 1
    first, _ = identity_augment(torch.ones(4, 1, 8, 8) * 0.5, y[:4], g(), AugmentSpec())
    second, _ = identity_augment(torch.ones(4, 1, 8, 8) * 0.5, y[:4], g(), AugmentSpec())
    assert torch.equal(first, second) and not torch.equal(again, full)  # deterministic for a generator


def test_judge_training_judges_with_the_average_of_its_weights(digits):
    from bench.models.augment import AugmentSpec
    from bench.models.judge import JudgeTraining
    from bench.models.training import TrainingPlan, accuracy, build, fit

    plan = TrainingPlan(epochs=6, lr=2e-3, batch_size=32)
    still = AugmentSpec(shift=0, rotate=0, scale=0, flip=False, brightness=0, contrast=0, gradient=0, mix=0)
    plain = build("resnet", digits.meta.shape, 10, seed=1)
    fit(plain, digits.evaluator_train("disjoint"), plan, seed=1, desc="plain judge")
    hook = JudgeTraining(still)
    judge = build("resnet", digits.meta.shape, 10, seed=1)
    info = fit(judge, digits.evaluator_train("disjoint"), plan, seed=1, desc="judge", hooks=[hook])
    assert info["judge_weight_average"] == 0.998 and info["judge_augment"]["mix"] == 0
    assert all(torch.equal(judge.state_dict()[k], hook._average[k]) for k in hook._average)  # judges with the average
    assert not torch.equal(judge.state_dict()["head.weight"], plain.state_dict()["head.weight"])
    assert accuracy(judge, digits.private_test) > 0.8  # the warm-up keeps a short training from averaging in its init


def test_balanced_accuracy_weighs_every_identity_the_same():
    from bench.data.base import Split
    from bench.models.training import accuracy, balanced_accuracy

    always_zero = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        always_zero[1].weight.zero_()
        always_zero[1].bias.copy_(torch.tensor([1.0, 0.0]))
    over = Split(torch.rand(10, 1, 2, 2), torch.tensor([0] * 9 + [1]))  # identity 0 over-represented 9×
    assert accuracy(always_zero, over) == 0.9 and balanced_accuracy(always_zero, over) == 0.5
