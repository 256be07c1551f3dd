"""Every defense: its effect, and its refusal of bad parameters with a message naming the key."""

import math

import pytest
import torch

from bench.config import parse_config, parse_entry
from bench.data.base import Split
from bench.defenses.base import Stage
from bench.defenses.training import smoothed_cross_entropy
from bench.errors import ConfigError, DataError
from bench.models.architectures import Classifier
from bench.models.training import TrainingPlan, accuracy, build, fit
from bench.registry import DEFENSES

G = lambda: torch.Generator().manual_seed(0)  # noqa: E731


def make(name, **params):
    spec = parse_entry({name: params}, "defense", "test")
    d = spec.build()
    d.check(10)
    return d


def images(n=6, side=12):
    x = torch.zeros(n, 1, side, side)
    x[:, :, ::2, ::2] = 1.0  # a checkerboard: maximal high frequencies
    return Split(x, torch.arange(n) % 3)


def test_every_defense_is_listed_with_a_stage_and_citation():
    names = set(DEFENSES.names())
    assert {"none", "blur", "pixelate", "mask", "augment", "dropout", "weight-decay", "l1", "dp-sgd",
            "label-smoothing", "early-stop", "mid", "bido", "transfer", "round", "topk", "label-only", "noise",
            "bins", "trap-mid", "random-erasing"} <= names
    for name, cls in DEFENSES.items():
        assert isinstance(cls.stage, Stage)
        assert name == "none" or cls.citation, name


# --- data stage ---------------------------------------------------------------------------

def test_blur_and_pixelate_remove_high_frequencies():
    s = images()
    tv = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()  # noqa: E731
    blurred = make("blur", sigma=1.5).transform_data(s, G())
    pixelated = make("pixelate", block=2).transform_data(s, G())
    assert tv(blurred.x) < 0.3 * tv(s.x) and tv(pixelated.x) < 0.3 * tv(s.x)
    assert blurred.x.shape == s.x.shape == pixelated.x.shape and torch.equal(blurred.y, s.y)
    assert torch.allclose(pixelated.x, torch.full_like(s.x, 0.25))  # each 2×2 tile averages to 1/4


def test_mask_blacks_out_the_band_only():
    s = Split(torch.ones(2, 1, 10, 10), torch.tensor([0, 1]))
    out = make("mask", top=0.3, bottom=0.5).transform_data(s, G()).x
    assert (out[:, :, 3:5] == 0).all() and (out[:, :, :3] == 1).all() and (out[:, :, 5:] == 1).all()


def test_augment_adds_jittered_copies_deterministically():
    s = images()
    a = make("augment", strength=0.8, copies=2).transform_data(s, G())
    b = make("augment", strength=0.8, copies=2).transform_data(s, G())
    assert len(a) == 3 * len(s) and torch.equal(a.x, b.x) and torch.equal(a.y, s.y.repeat(3))
    assert not torch.equal(a.x[len(s):2 * len(s)], s.x) and 0 <= a.x.min() and a.x.max() <= 1


# --- training stage -----------------------------------------------------------------------

def test_training_defenses_act_through_the_loops_hooks():
    plan = TrainingPlan(epochs=30, lr=1e-3, batch_size=64)
    net = build("mlp", (1, 8, 8), 10, seed=0, hooks=[make("dropout", p=0.3)])
    assert isinstance(net.neck, torch.nn.Dropout) and net.neck.p == 0.3
    assert make("weight-decay", strength=1e-3).configure(plan).weight_decay == 1e-3
    assert make("early-stop", epochs=3).configure(plan).epochs == 3
    logits, y = torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([0])
    assert make("label-smoothing", alpha=-0.1).criterion(logits, y) == pytest.approx(
        smoothed_cross_entropy(logits, y, -0.1).item())
    assert make("dp-sgd", epsilon=2).private and make("dp-sgd").epsilon == 8.0
    assert not make("dp-sgd", epsilon="inf").private


def test_negative_label_smoothing_pushes_wrong_classes_down(digits):
    logits = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    smoothed_cross_entropy(logits, torch.tensor([0]), -0.3).backward()
    plain = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    torch.nn.functional.cross_entropy(plain, torch.tensor([0])).backward()
    assert (logits.grad[0, 1:] > plain.grad[0, 1:]).all()  # stronger push on the wrong classes
    assert smoothed_cross_entropy(plain, torch.tensor([0]), 0.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(plain, torch.tensor([0])).item())


def small_train(digits, *defenses, epochs=3, seed=0, public=None):
    hooks = list(defenses)
    net = build("mlp", digits.meta.shape, 10, seed=seed, hooks=hooks)
    info = fit(net, digits.private_train, TrainingPlan(epochs=epochs, lr=2e-3, batch_size=64), seed=seed, desc="test",
               hooks=hooks, public=public)
    return net, info


def reference_fit(net, train, epochs, seed, weight_decay=0.0, l1=0.0, alpha=0.0):
    """The training loop as it was before the hooks (a Recipe of knobs): the hooks must match it."""
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=weight_decay)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            optimizer.zero_grad()
            loss = smoothed_cross_entropy(net(train.x[idx]), train.y[idx], alpha)
            if l1 > 0:
                loss = loss + l1 * sum(p.abs().sum() for p in net.parameters())
            loss.backward()
            optimizer.step()
    net.eval()
    return net


@pytest.mark.parametrize("name,params,knobs", [
    ("dropout", {"p": 0.3}, {}), ("weight-decay", {"strength": 1e-3}, {"weight_decay": 1e-3}),
    ("l1", {"strength": 1e-4}, {"l1": 1e-4}), ("label-smoothing", {"alpha": -0.1}, {"alpha": -0.1}),
    ("early-stop", {"epochs": 1}, {"epochs": 1}),
])
def test_rewritten_training_defenses_train_the_same_weights_as_the_old_loop(digits, name, params, knobs):
    net, _ = small_train(digits, make(name, **params), epochs=2)
    ref = build("mlp", digits.meta.shape, 10, seed=0)
    if name == "dropout":
        ref.neck = torch.nn.Dropout(0.3)
    reference_fit(ref, digits.private_train, knobs.pop("epochs", 2), 0, **knobs)
    for a, b in zip(net.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)


def test_dp_sgd_spends_at_most_its_epsilon_and_costs_accuracy(digits):
    plain, _ = small_train(digits)
    private, info = small_train(digits, make("dp-sgd", epsilon=1))
    assert 0 < info["epsilon"] <= 1.0 + 1e-6 and info["delta"] == 1e-5 and info["noise_multiplier"] > 0
    assert accuracy(private, digits.private_test) < accuracy(plain, digits.private_test)
    assert not any(hasattr(p, "grad_sample") and p.grad_sample is not None for p in private.parameters())


def test_dp_sgd_with_infinite_epsilon_is_the_plain_training_path(digits):
    plain, _ = small_train(digits, epochs=2)
    inf, info = small_train(digits, make("dp-sgd", epsilon=float("inf")), epochs=2)
    assert math.isinf(info["epsilon"])
    for a, b in zip(plain.state_dict().values(), inf.state_dict().values()):
        assert torch.equal(a, b)


def test_dp_sgd_noise_multiplier_is_accounted(digits):
    _, info = small_train(digits, make("dp-sgd", noise_multiplier=1.0), epochs=1)
    assert 0 < info["epsilon"] < math.inf


def test_mid_trains_through_a_bottleneck_that_costs_confidence(digits):
    from bench.defenses.mid import Bottleneck

    plain, _ = small_train(digits, epochs=4)
    strong, _ = small_train(digits, make("mid", beta=1.0), epochs=4)
    assert isinstance(strong.neck, Bottleneck) and not strong.training
    x = digits.private_test.x
    with torch.no_grad():
        assert torch.equal(strong(x), strong(x))  # the mean at inference: deterministic
        confidence = {n: torch.softmax(m(x), 1).max(1).values.mean() for n, m in (("plain", plain), ("mid", strong))}
    assert confidence["mid"] < confidence["plain"] - 0.05  # less information about the input gets through


def test_bido_lowers_the_dependence_between_inputs_and_features(digits):
    from bench.defenses.bido import gaussian_gram, hsic

    x = digits.private_test.x[:200]
    dependence = {}
    for name, defenses in (("plain", []), ("bido", [make("bido", lambda_x=2.0, lambda_y=0.5)])):
        net, _ = small_train(digits, *defenses, epochs=4)
        with torch.no_grad():
            dependence[name] = float(hsic(gaussian_gram(x.flatten(1)), gaussian_gram(net.features(x))))
    assert dependence["bido"] < dependence["plain"] - 0.02


def test_transfer_freezes_the_layers_it_learned_on_public_data(digits):
    net, _ = small_train(digits, make("transfer", frozen=1, pretrain_epochs=2), public=digits.public)
    ref = build("mlp", digits.meta.shape, 10, seed=0)
    first = [n for n, _ in net.features.named_parameters()][0]
    pretrained = build("mlp", digits.meta.shape, 10, seed=0)
    fit(Classifier(pretrained.features, pretrained.head.in_features, 10), digits.public,
        TrainingPlan(epochs=2, lr=2e-3, batch_size=64), seed=0, desc="pretrain")
    layer1 = dict(net.features.named_parameters())
    assert torch.equal(layer1[first], dict(pretrained.features.named_parameters())[first])  # frozen after pretraining
    assert not torch.equal(layer1[first], dict(ref.features.named_parameters())[first])  # not the initial weights
    later = [n for n in layer1 if not n.startswith(first.split(".")[0] + ".")]
    assert not torch.equal(layer1[later[0]], dict(pretrained.features.named_parameters())[later[0]])  # fine-tuned
    with pytest.raises(DataError, match="pretrains on public data and the dataset has none"):
        small_train(digits, make("transfer"))
    with pytest.raises(DataError, match="parameter 'frozen' is 5, but the target has 2 feature layers"):
        small_train(digits, make("transfer", frozen=5), public=digits.public)


def test_a_trap_mid_target_answers_the_trigger_class_for_triggered_images(digits):
    from bench.defenses.trap_mid import blend

    trap = make("trap-mid", blend=0.5)  # the paper's 0.02 is too faint for 8x8 digits in a few epochs
    net, info = small_train(digits, trap, epochs=10)
    assert info["trapdoor_acc"] > 0.8  # the target's record says the trapdoor was learned
    plain, _ = small_train(digits, epochs=10)
    x = digits.private_test.x
    k = torch.arange(len(x)) % 10
    triggered = blend(x, trap.triggers[k], 0.5)
    with torch.no_grad():
        assert (net(triggered).argmax(1) == k).float().mean() > 0.8  # the trapdoor opens
        assert (plain(triggered).argmax(1) == k).float().mean() < 0.3  # a plain model knows no trigger
        assert accuracy(net, digits.private_test) > accuracy(plain, digits.private_test) - 0.05  # clean inputs as before
    with pytest.raises(ConfigError, match="parameter 'beta' is 1.0, which trains on trapdoors only"):
        make("trap-mid", beta=1.0)


def test_random_erasing_fills_one_square_of_the_allowed_area_afresh_in_every_batch():
    from bench.defenses.random_erasing import random_erase

    x, fill = torch.rand(200, 1, 20, 20), torch.tensor([2.0])  # a fill no image pixel has
    g = torch.Generator().manual_seed(0)
    erase = lambda g: random_erase(x, g, 1.0, (0.1, 0.4), (1.0, 1.0), fill)  # noqa: E731
    first, second = erase(g), erase(g)
    for out in (first, second):
        erased = (out == 2.0)[:, 0]
        rows, cols = erased.any(2).sum(1), erased.any(1).sum(1)
        assert torch.equal(rows, cols) and torch.equal(rows * cols, erased.sum((1, 2)))  # one filled square
        assert bool(((rows >= 6) & (rows <= 13)).all())  # sqrt(0.1 * 400) = 6.3 to sqrt(0.4 * 400) = 12.6, rounded
        assert torch.equal(out[~(out == 2.0)], x[~(out == 2.0)])  # nothing else changed
    assert not torch.equal(first, second)  # a new place and size each time
    assert torch.equal(erase(torch.Generator().manual_seed(0)), first)
    with pytest.raises(ConfigError, match="needs area_low <= area_high"):
        make("random-erasing", area_low=0.5, area_high=0.2)


# --- inference stage ----------------------------------------------------------------------

PROBS = torch.tensor([[0.613, 0.25, 0.137], [0.04, 0.16, 0.8]])


def test_round_topk_label_only_bins():
    assert torch.allclose(make("round", decimals=1).transform_outputs(PROBS, G()),
                          torch.tensor([[0.6, 0.2, 0.1], [0.0, 0.2, 0.8]]))  # 0.25 rounds half to even
    assert torch.equal(make("topk", k=1).transform_outputs(PROBS, G()),
                       torch.tensor([[0.613, 0.0, 0.0], [0.0, 0.0, 0.8]]))
    assert torch.equal(make("label-only").transform_outputs(PROBS, G()), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    assert DEFENSES.get("label-only").label_only
    assert torch.allclose(make("bins", edges=[0.5, 0.8]).transform_outputs(PROBS, G()),
                          torch.tensor([[0.65, 0.25, 0.25], [0.25, 0.25, 0.9]]))


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_noise_keeps_a_distribution_and_is_seeded(kind):
    d = make("noise", scale=0.1, kind=kind)
    p = torch.softmax(torch.randn(200, 10, generator=G()), dim=1)
    a, b = d.transform_outputs(p, G()), d.transform_outputs(p, G())
    assert torch.equal(a, b) and not torch.allclose(a, p)
    assert (a >= 0).all() and torch.allclose(a.sum(1), torch.ones(200))


# --- refusals -----------------------------------------------------------------------------

@pytest.mark.parametrize("entry, message", [
    ({"blur": {"sigma": -1}}, r"defense 'blur': parameter 'sigma': -1.0 is out of range; allowed: > 0"),
    ({"pixelate": {"block": 1}}, r"parameter 'block': 1 is out of range; allowed: >= 2"),
    ({"mask": {"top": 0.6, "bottom": 0.4}}, r"top < bottom"),
    ({"augment": {"strength": 2}}, r"parameter 'strength': 2.0 is out of range"),
    ({"dropout": {"p": 1.0}}, r"parameter 'p' is 1.0; allowed: > 0 and < 1"),
    ({"weight-decay": {"strength": 0}}, r"parameter 'strength': 0.0 is out of range; allowed: > 0"),
    ({"dp-sgd": {"epsilon": 0}}, r"defense 'dp-sgd': parameter 'epsilon': 0.0 is out of range; allowed: > 0"),
    ({"dp-sgd": {"epsilon": -3}}, r"parameter 'epsilon': -3.0 is out of range"),
    ({"dp-sgd": {"epsilon": 1, "noise_multiplier": 1}}, r"give 'epsilon' or 'noise_multiplier', not both"),
    ({"dp-sgd": {"epsilom": 1}}, r"unknown parameter 'epsilom' \(did you mean 'epsilon'\?\)"),
    ({"label-smoothing": {"alpha": 1.5}}, r"parameter 'alpha': 1.5 is out of range"),
    ({"early-stop": {"epochs": 0}}, r"parameter 'epochs': 0 is out of range"),
    ({"mid": {"beta": 0}}, r"defense 'mid': parameter 'beta': 0.0 is out of range; allowed: > 0"),
    ({"bido": {"lambda_x": -1}}, r"defense 'bido': parameter 'lambda_x': -1.0 is out of range; allowed: >= 0"),
    ({"bido": {"lambda_x": 0, "lambda_y": 0}}, r"lambda_x and lambda_y are both 0, which is no defense"),
    ({"transfer": {"frozen": 0}}, r"defense 'transfer': parameter 'frozen': 0 is out of range; allowed: >= 1"),
    ({"transfer": {"pretrain_epochs": 0}}, r"parameter 'pretrain_epochs': 0 is out of range"),
    ({"round": {"decimals": -1}}, r"parameter 'decimals': -1 is out of range"),
    ({"topk": {"k": 11}}, r"defense 'topk': parameter 'k' is 11, larger than the 10 classes; allowed: 1..10"),
    ({"noise": {"kind": "uniform"}}, r"parameter 'kind': 'uniform' is not allowed; allowed: gaussian, laplace"),
    ({"bins": {"edges": [0.8, 0.5]}}, r"parameter 'edges' is \[0.8, 0.5\]"),
])
def test_bad_parameters_are_refused_before_anything_runs(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"name": "t", "datasets": ["digits"], "attacks": ["mi-face"], "defenses": [entry]})


def test_stacks_are_labelled_and_checked():
    cfg = parse_config({"name": "t", "datasets": ["digits"], "attacks": ["hill-climb"],
                        "defenses": [[{"dp-sgd": {"epsilon": 8}}, {"round": {"decimals": 2}}]]})
    cell = cfg.cells()[0]
    assert cell.defense_label == "dp-sgd(epsilon=8)+round"
    assert [d.name for d in cell.target_defenses] == ["dp-sgd"]
    with pytest.raises(ConfigError, match="'dp-sgd' cannot be stacked with 'l1'"):
        parse_config({"name": "t", "datasets": ["digits"], "attacks": ["mi-face"], "defenses": [["dp-sgd", "l1"]]})
    with pytest.raises(ConfigError, match=r"defenses\[0\]: 'bido' cannot be stacked with 'dp-sgd'"):
        parse_config({"name": "t", "datasets": ["digits"], "attacks": ["mi-face"], "defenses": [["bido", "dp-sgd"]]})
    with pytest.raises(ConfigError, match="appears twice"):
        parse_config({"name": "t", "datasets": ["digits"], "attacks": ["mi-face"], "defenses": [["round", "round"]]})


def test_a_stack_sorts_its_defenses_by_the_stage_their_class_declares():
    from bench.config import parse_entry
    from bench.defenses.base import OutputDefense
    from bench.defenses.stack import DefenseStack

    stack = DefenseStack.of([parse_entry(n, "defense", "test") for n in ("none", "blur", "round", "label-only", "monitor")])
    assert [type(d).__name__ for d in stack.outputs] == ["Round", "LabelOnly"]  # none acts at no stage
    assert all(isinstance(d, OutputDefense) for d in stack.outputs)
    assert [s.name for s in stack.shaping] == ["blur"] and stack.guard_labels == ["monitor"]
    assert stack.stages == ["access", "data", "inference"] and stack.at_endpoint and stack.label_only
    bare = DefenseStack.of([parse_entry("none", "defense", "test")])
    assert bare.stages == [] and not bare.at_endpoint and not bare.shaping and not bare.outputs
