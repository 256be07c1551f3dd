import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.data.base import DatasetMeta, DataSplits, Split
from bench.metrics import Judged, reconstruction_rows
from bench.metrics.identification import feature_knn, top_k_hits
from bench.metrics.similarity import PSNR_CAP, expected_best, psnr, ssim, ssims
from bench.models.architectures import Classifier
from bench.report.stats import mean_ci


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
    meta = DatasetMeta("tiny", 2, (1, 7, 7), ["a", "b"], "disjoint samples")
    return DataSplits(Split(train, y), Split(test, torch.tensor([0, 1])), Split(train, y), None, meta)


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
    assert psnr(img, img) == PSNR_CAP == 100.0  # an exact copy is capped, not infinite (and not dropped)
    assert psnr(img, np.clip(img + 1e-9, 0, 1)) == PSNR_CAP


def test_reconstruction_rows_margin_and_aggregate():
    s = tiny_splits()
    ev = flat_evaluator(torch.stack([torch.ones(49), -torch.ones(49)]))  # class 0 wins on any bright image
    recon = torch.stack([s.private_train.x[1], s.private_train.x[2]])  # exact training images
    rows = reconstruction_rows(Judged(recon, torch.tensor([0, 1]), s, ev))
    value = {(r["target_class"], r["metric"]): r["value"] for r in rows}
    assert {m for _, m in value} == {"acc@1", "acc@5", "knn_dist", "knn_acc@1", "ssim", "ssim_mean", "psnr",
                                     "ssim_margin"}  # no open or second judge: their readings are absent
    assert value[("0", "acc@1")] == 1.0 and value[("1", "acc@1")] == 0.0 and value[("all", "acc@1")] == 0.5
    assert value[("0", "ssim")] == pytest.approx(1.0) and value[("1", "ssim")] == pytest.approx(1.0)
    assert value[("0", "knn_dist")] == pytest.approx(0.0, abs=1e-5)
    held_out = ssim(recon[0].numpy(), s.private_test.x[0].numpy())
    other = ssim(recon[0].numpy(), s.private_train.x[0].numpy())
    # one held-out image: the training side is the expected best of one training image, their mean
    assert value[("0", "ssim_margin")] == pytest.approx((1.0 + other) / 2 - held_out)
    assert value[("0", "ssim_margin")] > 0  # a training image itself was recovered
    mean0 = s.private_train.of_class(0).mean(0).numpy()
    assert value[("0", "ssim_mean")] == pytest.approx(ssim(recon[0].numpy(), mean0))


def test_failing_metric_is_a_row_with_its_error():
    s = tiny_splits()

    class Broken(Classifier):
        def forward(self, x):
            raise RuntimeError("judge crashed")

    ev = Broken(nn.Flatten(), 49, 2)
    rows = reconstruction_rows(Judged(s.private_train.x[:2], torch.tensor([0, 1]), s, ev))
    acc = [r for r in rows if r["metric"] == "acc@1"]
    assert len(acc) == 3 and all(math.isnan(r["value"]) and "judge crashed" in r["error"] for r in acc)
    assert all(r["error"] is None for r in rows if r["metric"] == "ssim")


def test_expected_best_is_the_mean_over_all_subsets():
    from itertools import combinations

    values = np.array([0.3, 0.9, 0.1, 0.5, 0.7])
    for n in (1, 2, 3, 5):
        assert expected_best(values, n) == pytest.approx(np.mean([max(c) for c in combinations(values, n)]))
    assert expected_best(values, 9) == pytest.approx(0.9)  # n capped at the set's size


def test_ssim_margin_is_unbiased_on_images_the_target_never_saw():
    from bench.data.synthfaces import SynthFaces
    from bench.metrics import ssim_margin

    s = SynthFaces(SynthFaces.Params(identities=20, evaluator_images=30)).load()
    margins, biased = [], []
    for k in range(20):
        train, held_out = s.private_train.of_class(k), s.private_test.of_class(k)  # 30 and 10 images
        for r in s.evaluator_pool.of_class(k).numpy():  # fresh images of the identity: never trained on
            to_train, to_held_out = ssims(r, train), ssims(r, held_out)
            margins.append(ssim_margin(to_train, to_held_out))
            biased.append(to_train.max() - to_held_out.max())
    assert len(margins) == 600
    assert abs(np.mean(margins)) < 0.005
    assert np.mean(biased) > 0.01  # what best-of-30 against best-of-10 reported
    exact = s.private_train.of_class(0)[0].numpy()
    assert ssim_margin(ssims(exact, s.private_train.of_class(0)), ssims(exact, s.private_test.of_class(0))) > 0.05


def test_similarity_is_scored_against_the_original_images_under_a_data_defense():
    from bench.config import parse_config
    from bench.experiment import load_data

    config = parse_config({"datasets": ["digits"], "defenses": [{"blur": {"sigma": 1}}], "attacks": ["hill-climb"]})
    (job,) = config.jobs()
    splits = load_data(job)
    original = load_data(parse_config({"datasets": ["digits"], "attacks": ["hill-climb"]}).jobs()[0]).private_train
    assert torch.equal(splits.private_train.x, original.x)  # what the attacker is after, untouched
    assert not torch.equal(splits.target_train.x, original.x)  # what the target trained on: blurred
    recon, targets = original.x[:1], original.y[:1]
    rows = reconstruction_rows(Judged(recon, targets, splits, flat_evaluator(torch.randn(10, 64))))
    value = {(r["target_class"], r["metric"]): r["value"] for r in rows}
    assert value[("all", "ssim")] == pytest.approx(1.0)
    assert value[("all", "psnr")] == PSNR_CAP
    assert value[("all", "knn_dist")] == pytest.approx(0.0, abs=1e-5)


def test_mean_ci_over_three_seeds_hand_computed_and_na_below():
    import pandas as pd

    mean, half = mean_ci(pd.Series([1.0, 2.0, 3.0]))
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    mean, half = mean_ci(pd.Series([0.5, 0.7]))
    assert mean == pytest.approx(0.6) and math.isnan(half)  # two seeds: no interval, not ±1.27


def metric_rows(dataset, defense, attack, seed, per_class=None, **alls):
    base = {"dataset": dataset, "target": "cnn", "defense": defense, "attack": attack, "seed": seed,
            "cell_id": f"{defense}-{attack}-{seed}", "error": None}
    rows = [{**base, "target_class": str(k), "metric": "acc@1", "value": float(h)} for k, h in enumerate(per_class or [])]
    return rows + [{**base, "target_class": "all", "metric": m, "value": float(v)} for m, v in alls.items()]


def test_summary_intervals_are_over_per_seed_means():
    import pandas as pd

    from bench.report.summary import summary_table

    rows, cells = [], []
    for seed, hits in ((0, [1, 1, 0, 1]), (1, [1, 0, 0, 0]), (2, [1, 1, 1, 1])):
        rows += metric_rows("d", "none", "a", seed, hits, **{"acc@1": sum(hits) / 4, "queries": 100 + seed})
        rows += metric_rows("d", "label-only", "a", seed, oracle_acc=0.9)
        cells += [{"dataset": "d", "target": "cnn", "defense": "none", "attack": "a", "seed": seed, "status": "done"},
                  {"dataset": "d", "target": "cnn", "defense": "label-only", "attack": "a", "seed": seed,
                   "status": "refused"}]
    table = summary_table(pd.DataFrame(cells), pd.DataFrame(rows))
    mean, half = mean_ci(pd.Series([0.75, 0.25, 1.0]))  # per-seed means, not 12 pooled identities
    assert half == pytest.approx(4.302653 * pd.Series([0.75, 0.25, 1.0]).std() / math.sqrt(3))
    assert table.loc[("d", "cnn", "none", "a"), "acc@1"] == f"{mean:.2f} ± {half:.2f}"
    assert table.loc[("d", "cnn", "label-only", "a"), "acc@1"] == "refused"
    two = summary_table(pd.DataFrame(cells), pd.DataFrame([r for r in rows if r["seed"] < 2]))
    assert two.loc[("d", "cnn", "none", "a"), "acc@1"] == "0.50"  # no interval from two seeds: the mean alone


def test_lift_is_acc_over_the_baseline_on_the_same_target_and_outputs():
    import pandas as pd

    from bench.metrics.lift import lift_rows

    cells, rows = [], []
    for defense, defended, acc in (("none", False, {"mi-face": 0.9, "nes": 0.7, "public-lookalike": 0.3}),
                                   ("round", True, {"mi-face": 0.9, "nes": 0.4, "public-lookalike": 0.2})):
        for attack, value in acc.items():
            threat = "white-box" if attack == "mi-face" else "black-box"
            cells.append({"cell_id": f"{defense}-{attack}-0", "job_id": "j", "dataset": "d", "defense": defense,
                          "attack": attack, "threat_model": threat, "seed": 0, "status": "done",
                          "outputs_defended": defended and threat != "white-box",
                          "baseline": attack == "public-lookalike"})
            rows += [{**r, "job_id": "j", "threat_model": threat} for r in metric_rows("d", defense, attack, 0,
                                                                                        **{"acc@1": value})]
    lift = lift_rows(pd.DataFrame(cells), pd.DataFrame(rows)).set_index("cell_id")["value"]
    assert lift.to_dict() == pytest.approx({"none-mi-face-0": 0.6, "none-nes-0": 0.4,
                                            "round-nes-0": 0.2,  # against the baseline under rounding too
                                            "round-mi-face-0": 0.6})  # white-box: against undefended outputs
    assert "none-public-lookalike-0" not in lift


def test_defense_table_costs_what_an_honest_user_sees_per_attack_and_worst_case():
    import pandas as pd

    from bench.report.defense_table import defense_table

    cells, metrics = [], []
    # oracle_acc: none 0.9/0.8/0.85 by seed; round costs 0.1 through its outputs; dp-sgd 0.2
    for defense, stage, cost in (("none", "none", 0.0), ("round", "inference", 0.1), ("dp-sgd", "training", 0.2)):
        for seed, acc in enumerate((0.9, 0.8, 0.85)):
            for attack, threat, acc1, queries in (("mi-face", "white-box", 1.0, 500),
                                                  ("nes", "black-box", {"none": 0.8, "round": 0.4, "dp-sgd": 0.6}[defense],
                                                   1000 if defense != "round" else 900),
                                                  ("hill-climb", "black-box", {"none": 0.5, "round": 0.6,
                                                                               "dp-sgd": 0.1}[defense], 1000)):
                cells.append({"dataset": "d", "target": "cnn", "defense": defense, "attack": attack, "seed": seed,
                              "status": "done", "defense_stages": stage, "oracle_acc": acc - cost,
                              "test_acc": acc - (cost if stage == "training" else 0)})
                base = {"dataset": "d", "target": "cnn", "defense": defense, "attack": attack, "threat_model": threat,
                        "seed": seed, "target_class": "all"}
                metrics += [{**base, "metric": "acc@1", "value": acc1 - 0.1 * seed * (defense == "dp-sgd")},
                            {**base, "metric": "queries", "value": float(queries)}]
    table = defense_table(pd.DataFrame(cells), pd.DataFrame(metrics)).set_index(["defense", "attack", "metric"])
    user = "(honest user)"
    assert table.loc[("round", user, "Δoracle_acc"), "mean"] == pytest.approx(-0.1)  # not +0.00
    assert table.loc[("dp-sgd", user, "Δoracle_acc"), "mean"] == pytest.approx(-0.2)
    assert table.loc[("round", "nes", "Δacc@1"), "mean"] == pytest.approx(-0.4)
    assert table.loc[("round", "hill-climb", "Δacc@1"), "mean"] == pytest.approx(0.1)  # not averaged with nes
    assert table.loc[("round", "nes", "Δqueries"), "mean"] == pytest.approx(-100)
    assert table.loc[("round", "mi-face", "Δacc@1"), "mean"] == pytest.approx(0.0)
    assert table.loc[("dp-sgd", "nes", "Δacc@1"), "mean"] == pytest.approx(-0.3)  # (-0.2, -0.3, -0.4)
    diffs = pd.Series([-0.2, -0.3, -0.4])
    assert table.loc[("dp-sgd", "nes", "Δacc@1"), "ci95"] == pytest.approx(4.302653 * diffs.std() / math.sqrt(3))
    # worst black-box: max(nes, hill-climb) per seed: none 0.8; round 0.6; a defender plans for 0.6, not the mean
    assert table.loc[("round", "worst black-box", "acc@1"), "mean"] == pytest.approx(0.6)
    assert table.loc[("round", "worst black-box", "Δacc@1"), "mean"] == pytest.approx(-0.2)
    assert table.loc[("dp-sgd", user, "Δoracle_acc"), "stage"] == "training"


def test_the_readme_metric_example_is_computed_and_summarised_in_its_direction(readme_plugin):
    from bench.data.digits import Digits
    from bench.metrics import Judged, reconstruction_rows
    from bench.models import build
    from bench.registry import METRICS
    from bench.report.summary import summary_metrics

    readme_plugin("# my_metric.py")
    try:
        declared = METRICS.get("pixel_dist")
        assert not declared.higher_is_better and "pixel_dist" in summary_metrics()
        splits = Digits().load()
        judge = build("mlp", splits.meta.shape, splits.meta.num_classes, seed=0)
        exact = torch.stack([splits.private_train.of_class(k)[0] for k in range(3)])
        rows = reconstruction_rows(Judged(exact, torch.arange(3), splits, judge))
        distance = {r["target_class"]: r["value"] for r in rows if r["metric"] == "pixel_dist"}
        assert distance == {"0": 0.0, "1": 0.0, "2": 0.0, "all": 0.0}  # each is a private image itself
        noisy = (exact + 0.3).clamp(0, 1)
        rows = reconstruction_rows(Judged(noisy, torch.arange(3), splits, judge))
        assert next(r["value"] for r in rows if r["metric"] == "pixel_dist" and r["target_class"] == "all") > 0.05
    finally:
        METRICS._classes.pop("pixel_dist", None)
        METRICS._origins.pop("pixel_dist", None)
