import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.data.base import DatasetMeta, DataSplits, Split
from bench.metrics import PER_CLASS_METRICS, reconstruction_rows
from bench.metrics.identification import feature_knn, top_k_hits
from bench.metrics.similarity import psnr, ssim
from bench.models.architectures import Classifier
from bench.report.summary import mean_ci


def flat_evaluator(weights: torch.Tensor) -> Classifier:
    """Features = the flattened image; logits = features @ weights.T (hand-computable)."""
    head = nn.Linear(weights.shape[1], weights.shape[0], bias=False)
    head.weight.data = weights
    net = Classifier(nn.Flatten(), weights.shape[1], weights.shape[0])
    net.head = head
    return net


def tiny_splits() -> DataSplits:
    # two classes of 1×7×7 images: class 0 dark, class 1 bright; test images are distinct
    train = torch.stack([torch.full((1, 7, 7), v) for v in (0.1, 0.2, 0.8, 0.9)])
    test = torch.stack([torch.full((1, 7, 7), v) for v in (0.15, 0.85)])
    train[1, 0, 3, 3] = 0.6  # some structure so SSIM is not degenerate
    y = torch.tensor([0, 0, 1, 1])
    meta = DatasetMeta("tiny", 2, (1, 7, 7), ["a", "b"], "disjoint samples", "train")
    return DataSplits(Split(train, y), Split(test, torch.tensor([0, 1])), Split(train, y), Split(train, y), meta)


def test_top_k_hits_hand_computed():
    ev = flat_evaluator(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    recon = torch.tensor([[[[2.0, 0.0]]], [[[2.0, 0.0]]]])  # logits [2, 0, 1] for both
    assert top_k_hits(ev, recon, torch.tensor([0, 2]), 1).tolist() == [1.0, 0.0]
    assert top_k_hits(ev, recon, torch.tensor([0, 2]), 2).tolist() == [1.0, 1.0]
    assert top_k_hits(ev, recon, torch.tensor([1, 1]), 5).tolist() == [1.0, 1.0]  # k capped at K


def test_feature_knn_hand_computed():
    ev = flat_evaluator(torch.eye(2))
    private = Split(torch.tensor([[[[0.0, 0.0]]], [[[1.0, 0.0]]], [[[0.0, 3.0]]]]), torch.tensor([0, 0, 1]))
    recon = torch.tensor([[[[0.9, 0.0]]], [[[0.9, 0.0]]]])
    dist, hit = feature_knn(ev, recon, torch.tensor([0, 1]), private)
    assert dist.tolist() == pytest.approx([0.1, math.hypot(0.9, 3.0)])
    assert hit.tolist() == [1.0, 0.0]  # nearest of all is class 0


def test_ssim_and_psnr_hand_computed():
    a = np.zeros((1, 8, 8), dtype=np.float32)
    b = a + 0.1
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 -> 20 dB
    img = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, 1 - img) < 0
    rgb = np.random.default_rng(1).random((3, 9, 9)).astype(np.float32)
    assert ssim(rgb, rgb) == pytest.approx(1.0)


def test_reconstruction_rows_margin_and_aggregate():
    s = tiny_splits()
    ev = flat_evaluator(torch.stack([torch.ones(49), -torch.ones(49)]))  # class 0 wins on any bright image
    recon = torch.stack([s.private_train.x[1], s.private_train.x[2]])  # exact training images
    rows = reconstruction_rows(recon, torch.tensor([0, 1]), s, ev)
    value = {(r["target_class"], r["metric"]): r["value"] for r in rows}
    assert {m for _, m in value} == set(PER_CLASS_METRICS)
    assert value[("0", "acc@1")] == 1.0 and value[("1", "acc@1")] == 0.0 and value[("all", "acc@1")] == 0.5
    assert value[("0", "ssim")] == pytest.approx(1.0) and value[("1", "ssim")] == pytest.approx(1.0)
    assert value[("0", "knn_dist")] == pytest.approx(0.0, abs=1e-5)
    held_out = ssim(recon[0].numpy(), s.private_test.x[0].numpy())
    assert value[("0", "ssim_margin")] == pytest.approx(1.0 - held_out)
    assert value[("0", "ssim_margin")] > 0  # a training image itself was recovered
    mean0 = s.private_train.of_class(0).mean(0).numpy()
    assert value[("0", "ssim_mean")] == pytest.approx(ssim(recon[0].numpy(), mean0))


def test_failing_metric_is_a_row_with_its_error():
    s = tiny_splits()

    class Broken(Classifier):
        def forward(self, x):
            raise RuntimeError("judge crashed")

    ev = Broken(nn.Flatten(), 49, 2)
    rows = reconstruction_rows(s.private_train.x[:2], torch.tensor([0, 1]), s, ev)
    acc = [r for r in rows if r["metric"] == "acc@1"]
    assert len(acc) == 3 and all(math.isnan(r["value"]) and "judge crashed" in r["error"] for r in acc)
    assert all(r["error"] is None for r in rows if r["metric"] == "ssim")


def test_mean_ci():
    import pandas as pd

    mean, half = mean_ci(pd.Series([1.0, 2.0, 3.0]))
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(mean_ci(pd.Series([5.0]))[1])


def test_summary_pools_seeds_and_target_classes():
    import pandas as pd

    from bench.report.summary import summary_table

    rows = []
    for seed, hits in ((0, [1, 1, 0, 1]), (1, [1, 0, 1, 1])):
        base = {"dataset": "d", "defense": "none", "attack": "a", "seed": seed}
        rows += [{**base, "target_class": str(k), "metric": "acc@1", "value": float(h)} for k, h in enumerate(hits)]
        rows.append({**base, "target_class": "all", "metric": "acc@1", "value": sum(hits) / 4})
        rows.append({**base, "target_class": "all", "metric": "queries", "value": 100.0 + seed})
    table = summary_table(pd.DataFrame(rows))
    mean, half = mean_ci(pd.Series([1, 1, 0, 1, 1, 0, 1, 1], dtype=float))  # 8 pooled values, not 2
    assert table.loc[("d", "none", "a"), "acc@1"] == f"{mean:.2f} ± {half:.2f}"
    assert table.loc[("d", "none", "a"), "queries"].startswith("100 ± ")


def test_defense_table_deltas_hand_computed():
    import pandas as pd

    from bench.report.defense_table import defense_table

    cells, metrics = [], []
    # test_acc: none 0.9 / 0.8 by seed, round keeps it, dp-sgd costs 0.2 / 0.1
    for defense, stage, accs in (("none", "none", (0.9, 0.8)), ("round", "inference", (0.9, 0.8)),
                                 ("dp-sgd", "training", (0.7, 0.7))):
        for seed, test_acc in enumerate(accs):
            for attack, threat, acc1, queries in (("mi-face", "white-box", 1.0, 500),
                                                  ("nes", "black-box", {"none": 0.8, "round": 0.4, "dp-sgd": 0.6}[defense],
                                                   1000 if defense != "round" else 900)):
                cells.append({"dataset": "d", "defense": defense, "attack": attack, "seed": seed,
                              "status": "done", "defense_stages": stage, "test_acc": test_acc})
                base = {"dataset": "d", "defense": defense, "attack": attack, "threat_model": threat, "seed": seed,
                        "target_class": "all"}
                metrics += [{**base, "metric": "acc@1", "value": acc1 - 0.1 * seed * (defense == "dp-sgd")},
                            {**base, "metric": "queries", "value": float(queries)}]
    table = defense_table(pd.DataFrame(cells), pd.DataFrame(metrics)).set_index(["defense", "metric"])
    assert table.loc[("round", "Δtest_acc"), "mean"] == pytest.approx(0.0)
    assert table.loc[("dp-sgd", "Δtest_acc"), "mean"] == pytest.approx(-0.15)  # (-0.2, -0.1)
    half = 12.7062 * pd.Series([-0.2, -0.1]).std() / math.sqrt(2)
    assert table.loc[("dp-sgd", "Δtest_acc"), "ci95"] == pytest.approx(half, rel=1e-4)
    assert table.loc[("round", "Δacc@1 black-box"), "mean"] == pytest.approx(-0.4)
    assert table.loc[("round", "Δqueries black-box"), "mean"] == pytest.approx(-100)
    assert table.loc[("round", "Δacc@1 white-box"), "mean"] == pytest.approx(0.0)
    assert table.loc[("dp-sgd", "Δacc@1 black-box"), "mean"] == pytest.approx(-0.25)  # (-0.2, -0.3)
    assert table.loc[("dp-sgd", "Δtest_acc"), "stage"] == "training"
