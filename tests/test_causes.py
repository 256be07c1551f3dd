"""The causes studies: the target as a grid axis, widths, and the "Why it leaks" captions."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import experiment
from bench.cli import main
from bench.config import parse_config
from bench.errors import ConfigError
from bench.models.architectures import parameter_count
from bench.models.training import build
from bench.report import causes
from bench.report.summary import summary_table
from bench.results import ResultsDir
from bench.tables import write_tables

TWO_TARGETS = {
    "name": "two-targets",
    "seeds": [0],
    "datasets": ["digits"],
    "target": [{"model": "mlp", "epochs": 3}, {"model": "cnn", "epochs": 2, "width": 0.5}],
    "evaluator": {"epochs": 2},
    "defenses": ["none", {"round": {"decimals": 1}}],
    "attacks": ["public-lookalike", {"mi-face": {"steps": 5}}],
}


def test_a_target_list_expands_like_datasets_and_labels_what_varies():
    config = parse_config(TWO_TARGETS)
    cells = config.cells()
    assert len(cells) == 2 * 2 * 2
    assert {c.labels()["target"] for c in cells} == {"mlp(epochs=3)", "cnn(epochs=2,width=0.5)"}
    assert len(config.jobs()) == 2  # one per target: the inference defense shares it
    assert len({c.cell_id for c in cells}) == len(cells)
    sweep = parse_config({**TWO_TARGETS, "target": [{"epochs": 5}, {"epochs": 30}, {"width": 2}]})
    assert sorted({c.target_name for c in sweep.cells()}) == ["cnn", "cnn(epochs=5)", "cnn(width=2)"]
    single = parse_config({**TWO_TARGETS, "target": {"model": "mlp", "epochs": 3}})
    assert {c.target_name for c in single.cells()} == {"mlp"}


def test_target_list_errors_name_what_is_wrong():
    with pytest.raises(ConfigError, match="'target' lists cnn\\(epochs=5\\) twice"):
        parse_config({**TWO_TARGETS, "target": [{"epochs": 5}, {"epochs": 5}, {"epochs": 6}]})
    with pytest.raises(ConfigError, match="non-empty list"):
        parse_config({**TWO_TARGETS, "target": []})
    with pytest.raises(ConfigError, match=r"target\[1\]: parameter 'model': 'resnet' is not allowed; allowed: mlp, cnn"):
        parse_config({**TWO_TARGETS, "target": [{"model": "cnn"}, {"model": "resnet"}]})
    with pytest.raises(ConfigError, match=r"target\[0\].*'width'"):
        parse_config({**TWO_TARGETS, "target": [{"width": 0}]})


def test_an_unknown_target_model_exits_2_with_the_valid_names(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({**TWO_TARGETS, "target": [{"model": "vgg"}]}))
    assert main(["run", str(path), "--results", str(tmp_path / "results")]) == 2
    assert "target[0]: parameter 'model': 'vgg' is not allowed; allowed: mlp, cnn" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_width_scales_capacity_and_width_one_is_the_architecture_as_it_was():
    counts = [parameter_count(build("cnn", (1, 32, 32), 20, seed=0, width=w)) for w in (0.5, 1, 2)]
    assert counts[0] < counts[1] < counts[2]
    assert counts[1] == 54_484  # the cnn before widths existed


def test_a_two_target_grid_trains_each_target_once_and_keeps_them_apart(tmp_path, monkeypatch):
    trained = []
    real_fit = experiment.fit
    monkeypatch.setattr(experiment, "fit", lambda *a, **kw: trained.append(kw["desc"]) or real_fit(*a, **kw))
    config = parse_config(TWO_TARGETS)
    results, cache = tmp_path / "results", tmp_path / "cache"
    for job in config.jobs():
        outcomes = experiment.run_job(job, results, cache)
        assert {o.status for o in outcomes} == {"done"}
    assert sorted(d for d in trained if d.startswith("target")) == ["target cnn(epochs=2,width=0.5)",
                                                                     "target mlp(epochs=3)"]
    cells, metrics = write_tables(ResultsDir(results), [c.cell_id for c in config.cells()])
    assert set(cells["target"]) == set(metrics["target"]) == {"mlp(epochs=3)", "cnn(epochs=2,width=0.5)"}
    params = cells.groupby("target")["target_params"].first()
    assert params["mlp(epochs=3)"] != params["cnn(epochs=2,width=0.5)"]
    table = summary_table(cells, metrics)
    assert set(table.index.get_level_values("target")) == {"mlp(epochs=3)", "cnn(epochs=2,width=0.5)"}
    assert len(table) == 2 * 2 * 2  # never two targets averaged into one row


def _hand_slope(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    resid = y - (y.mean() + slope * (x - x.mean()))
    se = np.sqrt((resid ** 2).sum() / (len(x) - 2) / sxx)
    half = stats.t.ppf(0.975, len(x) - 2) * se
    return slope, slope - half, slope + half


def test_the_overfitting_caption_is_the_least_squares_slope_per_tenth_of_gap():
    gap = [0.02, 0.10, 0.25, 0.40, 0.05, 0.30]
    acc = [0.20, 0.31, 0.45, 0.70, 0.22, 0.58]
    targets = ["e5", "e40", "e160"] * 2
    points = pd.DataFrame({"attack": "mi-face", "gap": gap, "acc@1": acc, "lift": np.nan, "dataset": "d",
                           "target": targets})
    slope, low, high = _hand_slope(gap, acc)
    caption = causes.overfitting_caption(points)
    assert caption == (f"d · mi-face: acc@1 rises {slope * 0.1:.2f} per 0.1 of train–test gap, 95 % CI "
                       f"[{low * 0.1:.2f}, {high * 0.1:.2f}], 6 points")
    flat = points.assign(**{"acc@1": [0.3, 0.2, 0.3, 0.2, 0.3, 0.25]})
    assert "(the interval includes no change)" in causes.overfitting_caption(flat)
    # seeds make every gap distinct; a study needs three targets of one dataset, designed
    assert "not studied" in causes.overfitting_caption(points.assign(target="cnn"))
    other = points.assign(dataset="e", **{"acc@1": [0.9 - a for a in acc]})
    lines = causes.overfitting_caption(pd.concat([points, other])).splitlines()
    assert lines[0] == caption and lines[1].startswith("e · mi-face: acc@1 falls")  # never pooled across datasets


def test_causes_count_each_trained_target_once_and_leave_endpoint_defenses_out():
    cells = pd.DataFrame({
        "cell_id": ["a", "b", "c", "d", "e"], "status": "done", "kind": ["inversion"] * 4 + ["membership"],
        "dataset": "d", "target": "cnn", "seed": 0, "gap": 0.2, "attack": ["mi-face"] * 3 + ["nes", "lira"],
        "defense": ["none", "round(decimals=1)", "weight-decay", "monitor", "none"],
        "defense_stages": ["none", "inference", "training", "access", "none"],
        "threat_model": ["white-box"] * 3 + ["black-box"] * 2, "outputs_defended": [False, False, False, True, False],
        "params": "{}"})
    metrics = pd.DataFrame({"cell_id": list("abcd"), "target_class": "all", "metric": "acc@1", "value": 0.5})
    points = causes.gap_points(cells, metrics)
    assert sorted(points["cell_id"]) == ["a", "c"]  # the white-box cell under rounding repeats 'a'; no monitor, no MIA


def test_the_capacity_caption_uses_only_targets_that_differ_in_width():
    spec = lambda **t: json.dumps({"target": {"model": "cnn", "epochs": 20, "lr": 1e-3, "batch_size": 32, **t}})  # noqa: E731
    params = [1000, 4000, 16000, 1000, 4000, 16000, 9999]
    acc = [0.1, 0.3, 0.4, 0.2, 0.3, 0.6, 0.9]
    points = pd.DataFrame({
        "attack": "mi-face", "dataset": "d", "defense": ["none"] * 7 + ["weight-decay"], "acc@1": acc + [0.0],
        "target_params": params + [1000],
        "params": [spec(width=w) for w in (0.5, 1, 2, 0.5, 1, 2)] + [spec(width=1, epochs=80), spec(width=0.5)]})
    kept = causes.capacity_points(points)
    assert len(kept) == 6  # the epochs-80 target is another recipe, the weight-decay one is defended
    slope, low, high = _hand_slope(np.log2(params[:6]), acc[:6])
    assert causes.capacity_caption(points) == (f"d · mi-face: acc@1 rises {slope:.2f} per 1 doubling of parameters, "
                                               f"95 % CI [{low:.2f}, {high:.2f}], 6 points")


def test_the_overrepresentation_caption_compares_the_identity_with_the_others_per_seed():
    rows = []
    for factor, special, other in ((1, 0.3, 0.3), (20, 0.9, 0.4)):
        for seed, noise in zip(range(3), (0.0, 0.05, -0.05)):
            cid = f"c{factor}-{seed}"
            dataset = "faces(overrepresent=20)" if factor > 1 else "faces"
            rows += [{"cell_id": cid, "dataset": dataset, "target": "cnn", "attack": "mi-face", "seed": seed,
                      "metric": "acc@1", "target_class": str(k), "value": v}
                     for k, v in enumerate([special + noise, other, other])]
    metrics = pd.DataFrame(rows)
    cells = metrics.drop_duplicates("cell_id")[["cell_id", "seed"]].assign(
        status="done", kind="inversion", outputs_defended=False, overrepresented_identity=0,
        overrepresent=[int(c.split("-")[0][1:]) for c in metrics.drop_duplicates("cell_id")["cell_id"]])
    caption = causes.overrepresentation_caption(cells, metrics)
    half = stats.t.ppf(0.975, 2) * np.std([0.0, 0.05, -0.05], ddof=1) / np.sqrt(3)
    assert caption.startswith("faces: acc@1 of the over-represented identity against the others — ×1: 0.30 against "
                              "0.30 (difference +0.00")
    assert f"×20: 0.90 against 0.40 (difference +0.50, 95 % CI [{0.5 - half:+.2f}, {0.5 + half:+.2f}], 3 seeds)" \
        in caption


def test_serve_and_attack_pick_one_target_of_a_grid_by_label():
    from bench.serve.remote import remote_cell
    from bench.serve.target import select_cell

    config = parse_config(TWO_TARGETS)
    with pytest.raises(ConfigError, match=r"lists several targets; name one: mlp\(epochs=3\), cnn\(epochs=2,width=0.5\)"):
        select_cell(config, "digits", [], 0)
    cell = select_cell(config, "digits", ["round"], 0, "cnn(epochs=2,width=0.5)")
    assert cell.target.width == 0.5 and cell.defense_label == "round(decimals=1)"
    with pytest.raises(ConfigError, match="has no target 'vgg'"):
        select_cell(config, "digits", [], 0, "vgg")
    nes = parse_config({**TWO_TARGETS, "attacks": [{"nes": {"budget": 20}}]}).attacks[0]
    remote = remote_cell("digits", nes, 0, config, "mlp(epochs=3)")
    grid_cell = next(c for c in parse_config({**TWO_TARGETS, "attacks": [{"nes": {"budget": 20}}]}).cells()
                     if c.target_name == "mlp(epochs=3)" and c.defense_label == "none")
    assert remote.cell_id == grid_cell.cell_id  # the endpoint's cell is the grid's
    assert remote_cell("digits", nes, 0, None).target_name == "endpoint"


def test_tables_written_before_targets_were_an_axis_gain_the_target_of_their_spec(tmp_path):
    from bench.files import atomic_write_table
    from bench.results import load_tables

    spec = json.dumps({"target": {"model": "mlp", "epochs": 3}})
    cells = pd.DataFrame({"cell_id": ["a", "b"], "dataset": "digits", "defense": "none", "attack": "x", "seed": 0,
                          "status": "done", "params": [spec, spec.replace("mlp", "cnn")]})
    metrics = pd.DataFrame({"cell_id": ["a", "b"], "dataset": "digits", "defense": "none", "attack": "x", "seed": 0,
                            "target_class": "all", "metric": "acc@1", "value": [0.2, 0.4], "error": None})
    atomic_write_table(cells, tmp_path / "tables" / "cells")
    atomic_write_table(metrics, tmp_path / "tables" / "metrics")
    cells, metrics = load_tables(tmp_path)
    assert cells["target"].tolist() == ["mlp", "cnn"] and metrics["target"].tolist() == ["mlp", "cnn"]
    assert len(summary_table(cells, metrics)) == 2  # still two rows, not one average
