import math

import pytest

from bench.cli import main
from bench.config import load_config, parse_config
from bench.errors import ConfigError

BASE = {"name": "t", "seeds": [0], "datasets": ["digits"], "attacks": ["mi-face"]}


def cfg(**over):
    return parse_config({**BASE, **over})


def test_shipped_configs_parse_and_group_cells_into_jobs():
    from bench.config import shipped_configs

    for name in shipped_configs():
        if name == "celeba":  # its data are not shipped: it refuses, saying where they go (tests/test_celeba.py)
            with pytest.raises(ConfigError, match="Download CelebA"):
                load_config(name)
            continue
        config = load_config(name)
        assert any(a.cls.baseline for a in config.attacks), f"{name}: every shipped grid carries the baseline"
        cells = config.cells()
        jobs = config.jobs()
        settings = len(config.datasets) * len(config.targets) * len(config.seeds)
        assert len(cells) == settings * len(config.defenses) * len(config.attacks)
        # attacks and inference defenses share one target: one job per target-shaping stack
        shaping = {tuple(d.label for d in stack if d.cls.stage.shapes_target) for stack in config.defenses}
        assert len(jobs) == settings * len(shaping)
        assert len({c.cell_id for c in cells}) == len(cells)
        assert all(len({c.job_id for c in j.cells}) == 1 for j in jobs)


def test_cell_ids_are_stable_and_depend_on_the_spec():
    a = cfg(attacks=[{"mi-face": {"steps": 100}}]).cells()[0]
    b = cfg(attacks=[{"mi-face": {"steps": 100}}]).cells()[0]
    c = cfg(attacks=[{"mi-face": {"steps": 101}}]).cells()[0]
    assert a.cell_id == b.cell_id != c.cell_id
    assert a.job_id == c.job_id  # same target
    assert a.attack.label == "mi-face(steps=100)"
    assert cfg().cells()[0].attack.label == "mi-face"


def test_unknown_attack_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown attack 'mi-fase': did you mean 'mi-face'\? available: .*hill-climb"):
        cfg(attacks=["mi-fase"])


def test_bad_parameter_names_key_value_and_range():
    with pytest.raises(ConfigError, match=r"parameter 'steps': -5 is out of range; allowed: >= 1"):
        cfg(attacks=[{"mi-face": {"steps": -5}}])
    with pytest.raises(ConfigError, match=r"unknown parameter 'stepz' \(did you mean 'steps'\?\)"):
        cfg(attacks=[{"mi-face": {"stepz": 5}}])
    with pytest.raises(ConfigError, match=r"parameter 'steps': expected an integer, got 'many'"):
        cfg(attacks=[{"mi-face": {"steps": "many"}}])
    with pytest.raises(ConfigError, match=r"parameter 'loss': 'mse' is not allowed; allowed: ce, 1-p"):
        cfg(attacks=[{"mi-face": {"loss": "mse"}}])
    with pytest.raises(ConfigError, match=r"target: parameter 'model': 'vit' is not allowed"):
        cfg(target={"model": "vit"})


def test_structural_errors():
    with pytest.raises(ConfigError, match="unknown key 'attack'"):
        parse_config({**BASE, "attack": []})
    with pytest.raises(ConfigError, match="'seeds' has duplicates"):
        cfg(seeds=[1, 1])
    with pytest.raises(ConfigError, match="'none' cannot be stacked"):
        cfg(defenses=[["none", "none"]])
    with pytest.raises(ConfigError, match="lists mi-face twice"):
        cfg(attacks=["mi-face", "mi-face"])
    with pytest.raises(ConfigError, match="train \\+ test \\+ public"):
        cfg(datasets=[{"digits": {"train": 0.5, "test": 0.3, "public": 0.3}}])


def test_float_accepts_inf():
    from dataclasses import dataclass

    from bench.params import param, parse_params

    @dataclass(frozen=True)
    class P:
        epsilon: float = param(1.0, help="x", low=0, low_open=True)

    assert math.isinf(parse_params(P, {"epsilon": "inf"}, "x").epsilon)
    with pytest.raises(ConfigError, match="allowed: > 0"):
        parse_params(P, {"epsilon": 0}, "x")


def test_cli_config_errors_exit_2_and_write_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndatasets: [digits]\nattacks: [nope]\n")
    results = tmp_path / "results"
    assert main(["run", str(bad), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "unknown attack 'nope'" in err and "mi-face" in err and "hill-climb" in err
    bad.write_text("name: bad\ndatasets: [digits]\nattacks: [{hill-climb: {budget: 0}}]\n")
    assert main(["run", str(bad), "--results", str(results)]) == 2
    assert "parameter 'budget': 0 is out of range" in capsys.readouterr().err
    assert main(["run", "no-such-config", "--results", str(results)]) == 2
    assert "shipped: blackbox, causes, celeba, default, defenses, membership, mi-defenses, priors, smoke" in capsys.readouterr().err
    bad.write_text("name: bad\ndatasets: [digits]\ntarget: cnn\nattacks: [mi-face]\n")
    assert main(["run", str(bad), "--results", str(results)]) == 2  # a scalar where a mapping belongs
    assert "target: parameters must be a mapping of names to values, got 'cnn'" in capsys.readouterr().err
    bad.write_text("name: bad\ndatasets: [digits]\nevaluator: {data: judge}\nattacks: [mi-face]\n")
    assert main(["run", str(bad), "--results", str(results)]) == 2
    assert "evaluator: parameter 'data': 'judge' is not allowed; allowed: auto, disjoint, private-train" in (
        capsys.readouterr().err)
    assert not results.exists()


def test_cli_lists_plugins_and_configs(capsys):
    assert main(["list", "attacks"]) == 0
    out = capsys.readouterr().out
    assert "mi-face  [threat_model: white-box]" in out and "hill-climb  [threat_model: black-box]" in out
    assert "budget: int = 20000" in out
    assert "public-lookalike  [threat_model: black-box; also label-only; needs public data]" in out
    # first sentences whole, even when they run over several docstring lines
    assert "(the baseline of Fredrikson et al. 2015's black-box setting; later black-box attacks are measured " \
           "against it)." in out
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    assert {"digits", "synthfaces", "imagefolder"} <= set(out.split())
    assert "judge: private-train (default), or disjoint with evaluator_share > 0" in out
    assert main(["list", "defenses"]) == 0
    assert "none  [stage: inference]" in capsys.readouterr().out
    assert main(["list", "configs"]) == 0
    assert "smoke" in capsys.readouterr().out
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "mlp  [target; family mlp;" in out and "cnn  [target; family cnn;" in out
    assert "resnet  [judge; family resnet;" in out and "vgg  [judge; family vgg;" in out
    assert "ir152  [target and judge; family ir; 62.60M parameters at 3×64×64, 1000 identities]" in out
    assert "width: float = 1.0  (capacity: every layer's channels or units times this" in out


def test_only_filter_that_matches_nothing_exits_2_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["run", "smoke", "--only", "attack=nope", "--results", str(results)]) == 2
    assert "matches none of the 3 cells" in capsys.readouterr().err
    assert main(["run", "smoke", "--only", "colour=red", "--results", str(results)]) == 2
    assert "KEY one of dataset, target, defense, attack, seed, threat_model" in capsys.readouterr().err
    assert not results.exists()


def test_only_takes_any_of_a_keys_values_and_every_key():
    from bench.cli import _parse_only
    from bench.runner import _matches

    only = _parse_only(["defense=mid", "defense=none", "seed=1"])
    assert only == {"defense": ("mid", "none"), "seed": ("1",)}
    assert _matches({"defense": "mid(beta=0.02)", "seed": 1}, only) and _matches({"defense": "none", "seed": 1}, only)
    assert not _matches({"defense": "bido", "seed": 1}, only) and not _matches({"defense": "none", "seed": 0}, only)
