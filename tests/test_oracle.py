import pytest
import torch

from bench.oracle import AccessDenied, BudgetExceeded, Oracle, ThreatModel


def oracle(model, threat=ThreatModel.BLACK_BOX, budget=None, transforms=()):
    return Oracle(model, threat, num_classes=10, input_shape=(1, 8, 8), budget=budget, output_transforms=transforms)


def test_counts_every_image_and_refuses_past_budget(tiny_target):
    o = oracle(tiny_target, budget=10)
    o.probabilities(torch.rand(4, 1, 8, 8))
    o.labels(torch.rand(3, 1, 8, 8))
    assert o.queries == 7 and o.remaining == 3
    with pytest.raises(BudgetExceeded, match="7 of 10 spent, batch of 4 refused"):
        o.probabilities(torch.rand(4, 1, 8, 8))
    assert o.queries == 7  # a refused batch costs nothing
    o.probabilities(torch.rand(3, 1, 8, 8))
    assert o.remaining == 0


def test_threat_models_gate_access(tiny_target):
    with pytest.raises(AccessDenied, match="black-box oracle does not give logits"):
        oracle(tiny_target).logits(torch.rand(1, 1, 8, 8))
    with pytest.raises(AccessDenied, match="label-only oracle does not give probabilities"):
        oracle(tiny_target, ThreatModel.LABEL_ONLY).probabilities(torch.rand(1, 1, 8, 8))
    white = oracle(tiny_target, ThreatModel.WHITE_BOX)
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    white.logits(x).sum().backward()
    assert x.grad is not None and white.queries == 2
    assert ThreatModel.WHITE_BOX.serves(ThreatModel.BLACK_BOX) and not ThreatModel.LABEL_ONLY.serves(ThreatModel.BLACK_BOX)


def test_output_transforms_and_shape_check(tiny_target):
    o = oracle(tiny_target, transforms=[lambda p: torch.round(p, decimals=1)])
    p = o.probabilities(torch.rand(5, 1, 8, 8))
    assert torch.equal(p, torch.round(p, decimals=1))
    with pytest.raises(ValueError, match=r"expects a batch of shape \(N, 1, 8, 8\)"):
        o.probabilities(torch.rand(5, 8, 8))
