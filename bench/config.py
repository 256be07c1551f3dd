"""Grid configs: YAML -> validated, frozen specs, expanded into cells grouped by job.

Everything is checked before any cell runs: unknown names list the valid ones, bad
parameters name the key, the value and what is allowed. A cell id is a short stable hash
of its spec; a job id hashes what determines its target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bench.data.base import EVALUATOR_PROTOCOLS
from bench.defenses.stack import DefenseStack
from bench.errors import ConfigError, DataError
from bench.models.catalogue import FAMILY, FIELD_MODELS, JUDGE_MODELS, TARGET_MODELS
from bench.params import as_dict, param, parse_params
from bench.registry import ATTACKS, DATASETS, DEFENSES, Registry

TOP_LEVEL_KEYS = ("name", "seeds", "datasets", "target", "evaluator", "prior", "defenses", "attacks")


@dataclass(frozen=True)
class LoopSpec:
    """The training loop's settings shared by targets and the evaluator."""

    epochs: int = param(30, help="training epochs", low=1)
    lr: float = param(1e-3, help="Adam learning rate", low=0, low_open=True)
    batch_size: int = param(64, help="minibatch size", low=1)


@dataclass(frozen=True)
class TrainSpec(LoopSpec):
    """How a target is trained: the config's ``target:`` mapping, or one entry of its list (the
    grid's target axis, e.g. epochs or widths swept to study over-fitting and capacity)."""

    model: str = param("cnn", help="target architecture", choices=TARGET_MODELS)
    width: float = param(1.0, help="capacity: every layer's channels or units times this (rounded to multiples "
                                   "of 8)", low=0, low_open=True)


@dataclass(frozen=True)
class SavedTarget:
    """A model the user trained (``target: {weights: …, factory: …}``): rebuilt by their factory —
    or, for a checkpoint of the field's (``target: {weights: …, model: ir152}``), by Sieve — its
    state dict loaded without unpickling code (see :mod:`bench.models.saved`). It is never
    trained, so data- and training-stage defenses are refused for it."""

    weights: str = param(help="the trained model's state dict, saved with torch.save(model.state_dict(), path)")
    factory: str = param("", help="'package.module:callable' or 'path/to/file.py:callable' that builds the "
                                  "architecture (called with no arguments)")
    model: str = param("", help="instead of a factory: the field's architecture whose published checkpoint the "
                                "weights are (GMI/KEDMI/PLG-MI key layout, README)", choices=("", *FIELD_MODELS))
    label: str = param("", help="the target's name in the tables (default: the weights file's name)")
    digest: str = param("", help="set by Sieve when the config is read: the weights' content hash, so a model saved "
                                 "over the old file is another target (new job and cell ids)")


TargetSpec = TrainSpec | SavedTarget


@dataclass(frozen=True)
class EvaluatorSpec(LoopSpec):
    """How the independent evaluator is trained (its architecture never a target's family),
    and on what: images no target saw (``disjoint``) or the target's training images
    (``private-train``, the GMI/KEDMI protocol); ``auto`` takes ``disjoint`` where the dataset
    can spare the images."""

    data: str = param("auto", help="the judge's training images", choices=("auto", *EVALUATOR_PROTOCOLS))
    augment: str = param("auto", help="identity-preserving augmentation and weight averaging (auto: where the "
                                      "dataset keeps identities under them, e.g. faces, not digits)",
                         choices=("auto", "true", "false"))
    steps: int = param(600, help="at least this many optimiser steps: a small folder trains for more epochs", low=1)
    batch_size: int = param(16, help="minibatch size (small batches measured best for judges of few photos)", low=1)
    model: str = param("resnet", help="the evaluator's and the open-set judge's architecture: never of a target's "
                                      "family", choices=JUDGE_MODELS)
    second: str = param("vgg", help="the second judge's architecture: of neither the evaluator's nor a target's "
                                    "family", choices=JUDGE_MODELS)


@dataclass(frozen=True)
class PriorSpec:
    """How the attacker's generator prior is trained on the public split (the config's ``prior:``
    mapping): once per dataset, cached, and only for grids with an attack that searches it."""

    steps: int = param(2000, help="GAN training steps (each: one discriminator and one generator update)", low=1)
    latent_dim: int = param(64, help="latent dimensions", low=1)
    width: int = param(32, help="channels of the generator's last stage (doubling per stage toward the seed)", low=2)
    batch_size: int = param(64, help="minibatch size", low=1)
    lr: float = param(2e-4, help="Adam step size of both networks", low=0, low_open=True)


@dataclass(frozen=True)
class PluginSpec:
    """A named plugin with validated parameters, e.g. ``mi-face(steps=200)``."""

    kind: str
    name: str
    params: Any

    @property
    def cls(self) -> type:
        return _REGISTRIES[self.kind].get(self.name)

    def build(self) -> Any:
        return self.cls(self.params)

    @property
    def label(self) -> str:
        """Readable and stable: the name plus every parameter that differs from its default."""
        default = _defaults(self.cls.Params)
        hidden = getattr(self.cls, "unlabelled", ())
        changed = {k: v for k, v in as_dict(self.params).items() if default.get(k, object()) != v and k not in hidden}
        name = self.cls.display_name(self.params) if hasattr(self.cls, "display_name") else self.name
        if not changed:
            return name
        return f"{name}({','.join(f'{k}={_fmt(v)}' for k, v in changed.items())})"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": as_dict(self.params)}


@dataclass(frozen=True)
class CellSpec:
    """One dataset × defense × attack × seed combination: the row unit of every table."""

    dataset: PluginSpec
    defenses: tuple[PluginSpec, ...]
    attack: PluginSpec
    seed: int
    target: TargetSpec
    evaluator: EvaluatorSpec
    prior: PriorSpec = PriorSpec()
    target_label: str = ""  # the target's name in the tables (see target_labels); the model when empty

    @property
    def target_name(self) -> str:
        return self.target_label or target_labels((self.target,))[0]

    @property
    def defense_label(self) -> str:
        return "+".join(d.label for d in self.defenses)

    @property
    def stack(self) -> DefenseStack:
        """The cell's defenses by stage."""
        return DefenseStack.of(self.defenses)

    @property
    def target_defenses(self) -> tuple[PluginSpec, ...]:
        """The data- and training-stage defenses: they determine the trained target."""
        return self.stack.shaping

    @cached_property
    def cell_id(self) -> str:
        return _short_hash(self.to_json())

    @cached_property
    def job_id(self) -> str:
        return _short_hash(self.job_key())

    def job_key(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_json(),
            "defenses": [d.to_json() for d in self.target_defenses],
            "target": dataclasses.asdict(self.target),
            "evaluator": dataclasses.asdict(self.evaluator),
            "seed": self.seed,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_json(),
            "defenses": [d.to_json() for d in self.defenses],
            "attack": self.attack.to_json(),
            "seed": self.seed,
            "target": dataclasses.asdict(self.target),
            "target_label": self.target_name,
            "evaluator": dataclasses.asdict(self.evaluator),
            **({"prior": dataclasses.asdict(self.prior)} if self.attack.build().uses_prior() else {}),
        }

    def labels(self) -> dict[str, Any]:
        """The columns every table carries so a row can be filtered alone."""
        return {
            "cell_id": self.cell_id,
            "job_id": self.job_id,
            "dataset": self.dataset.label,
            "target": self.target_name,
            "defense": self.defense_label,
            "attack": self.attack.label,
            "threat_model": self.attack.cls.threat_model.value,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, blob: Mapping[str, Any]) -> CellSpec:
        return cls(
            dataset=parse_entry({blob["dataset"]["name"]: blob["dataset"]["params"]}, "dataset", "dataset"),
            defenses=tuple(parse_entry({d["name"]: d["params"]}, "defense", "defense") for d in blob["defenses"]),
            attack=parse_entry({blob["attack"]["name"]: blob["attack"]["params"]}, "attack", "attack"),
            seed=int(blob["seed"]),
            target=_parse_target(blob["target"], "target", fresh=False),
            evaluator=parse_params(EvaluatorSpec, blob["evaluator"], "evaluator"),
            prior=parse_params(PriorSpec, blob.get("prior"), "prior"),
            target_label=str(blob.get("target_label", "")),
        )


@dataclass(frozen=True)
class JobSpec:
    """All cells that share one target: executed together as one notebook."""

    cells: tuple[CellSpec, ...]

    @property
    def first(self) -> CellSpec:
        return self.cells[0]

    @property
    def job_id(self) -> str:
        return self.first.job_id

    @property
    def label(self) -> str:
        c = self.first
        shaping = "+".join(d.label for d in c.target_defenses) or "none"
        return f"{c.dataset.label} · {c.target_name} · {shaping} · seed {c.seed}"

    def to_json(self) -> dict[str, Any]:
        return {"cells": [c.to_json() for c in self.cells]}

    @classmethod
    def from_json(cls, blob: Mapping[str, Any]) -> JobSpec:
        return cls(tuple(CellSpec.from_json(c) for c in blob["cells"]))


@dataclass(frozen=True)
class GridConfig:
    name: str
    seeds: tuple[int, ...]
    datasets: tuple[PluginSpec, ...]
    targets: tuple[TargetSpec, ...]
    evaluator: EvaluatorSpec
    prior: PriorSpec
    defenses: tuple[tuple[PluginSpec, ...], ...]
    attacks: tuple[PluginSpec, ...]
    raw: dict[str, Any] = field(compare=False, repr=False)

    def cells(self) -> list[CellSpec]:
        labelled = list(zip(self.targets, target_labels(self.targets)))
        return [
            CellSpec(d, stack, a, s, t, self.evaluator, self.prior, label)
            for d in self.datasets for t, label in labelled for s in self.seeds for stack in self.defenses
            for a in self.attacks
        ]

    def target_named(self, label: str | None) -> tuple[TargetSpec, str]:
        """The grid's target called ``label`` (None: its only one), with its label."""
        labelled = dict(zip(target_labels(self.targets), self.targets))
        if label is None and len(labelled) == 1:
            return next(iter(labelled.values())), next(iter(labelled))
        if label not in labelled:
            what = "lists several targets; name one" if label is None else f"has no target '{label}'"
            raise ConfigError(f"grid '{self.name}' {what}: {', '.join(labelled)}")
        return labelled[label], label

    def jobs(self, cells: Iterable[CellSpec] | None = None) -> list[JobSpec]:
        groups: dict[str, list[CellSpec]] = {}
        for cell in self.cells() if cells is None else cells:
            groups.setdefault(cell.job_id, []).append(cell)
        return [JobSpec(tuple(g)) for g in groups.values()]


_REGISTRIES: dict[str, Registry[type]] = {"attack": ATTACKS, "defense": DEFENSES, "dataset": DATASETS}


def shipped_configs() -> dict[str, Path]:
    folder = resources.files("bench") / "configs"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def load_config(name_or_path: str) -> GridConfig:
    """A shipped config by name (``smoke``, ``default``) or a YAML file path."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = shipped_configs()
        if name_or_path not in shipped:
            raise ConfigError(
                f"config '{name_or_path}' is neither a file nor a shipped config; shipped: {', '.join(sorted(shipped))}"
            )
        path = shipped[name_or_path]
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    return parse_config(raw, default_name=path.stem)


def parse_config(raw: Any, default_name: str = "grid") -> GridConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"a grid config must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError(f"config: unknown key '{unknown[0]}'; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    for key in ("datasets", "attacks"):
        if not raw.get(key):
            raise ConfigError(f"config: '{key}' must be a non-empty list")
    name = str(raw.get("name", default_name))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"config: name '{name}' may hold only letters, digits, '_', '.', '-'")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"config: 'seeds' must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"config: 'seeds' has duplicates: {seeds}")
    datasets = tuple(parse_entry(e, "dataset", f"datasets[{i}]") for i, e in enumerate(_as_list(raw, "datasets")))
    attacks = tuple(parse_entry(e, "attack", f"attacks[{i}]") for i, e in enumerate(_as_list(raw, "attacks")))
    stacks = tuple(_parse_stack(e, f"defenses[{i}]") for i, e in enumerate(_as_list(raw, "defenses", ["none"])))
    for what, specs in (("datasets", datasets), ("attacks", attacks), ("defenses", stacks)):
        labels = [s.label if isinstance(s, PluginSpec) else "+".join(d.label for d in s) for s in specs]
        dupes = sorted({lbl for lbl in labels if labels.count(lbl) > 1})
        if dupes:
            raise ConfigError(f"config: '{what}' lists {dupes[0]} twice")
    for spec in (*datasets, *attacks):
        spec.build().check()
    evaluator = parse_params(EvaluatorSpec, raw.get("evaluator"), "evaluator")
    for ds in datasets:
        ds.build().evaluator_protocol(evaluator.data)
        classes = ds.build().num_classes()
        for stack in stacks:
            for d in stack:
                d.build().check(classes)
    targets = _parse_targets(raw.get("target"))
    _check_judge_families(evaluator, targets)
    _check_saved_targets(targets, datasets, stacks)
    return GridConfig(
        name=name,
        seeds=tuple(seeds),
        datasets=datasets,
        targets=targets,
        evaluator=evaluator,
        prior=parse_params(PriorSpec, raw.get("prior"), "prior"),
        defenses=stacks,
        attacks=attacks,
        raw=raw,
    )


def parse_entry(entry: Any, kind: str, where: str) -> PluginSpec:
    """A list entry: a name, or a one-key mapping of a name to its parameters."""
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, params),) = entry.items()
        params = params or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: parameters of {kind} '{name}' must be a mapping, got {params!r}")
    else:
        raise ConfigError(f"{where}: expected a {kind} name or a one-key mapping {{name: {{params}}}}, got {entry!r}")
    cls = _REGISTRIES[kind].get(str(name))
    return PluginSpec(kind, str(name), parse_params(cls.Params, params, f"{where}: {kind} '{name}'"))


def _parse_targets(raw: Any) -> tuple[TargetSpec, ...]:
    """The ``target:`` mapping, or a non-empty list of them (the grid's target axis)."""
    if not isinstance(raw, list):
        return (_parse_target(raw, "target"),)
    if not raw:
        raise ConfigError("config: 'target' must be a mapping or a non-empty list of mappings")
    targets = tuple(_parse_target(entry, f"target[{i}]") for i, entry in enumerate(raw))
    labels = target_labels(targets)
    dupes = sorted({lbl for lbl in labels if labels.count(lbl) > 1})
    if dupes:
        raise ConfigError(f"config: 'target' lists {dupes[0]} twice")
    return targets


def _parse_target(raw: Any, where: str, fresh: bool = True) -> TargetSpec:
    """A training spec, or — when it names ``weights`` or a ``factory`` — a model the user trained:
    its paths made absolute (so every worker finds them) and, read ``fresh`` from a config, the
    weights' content hash taken (a job's JSON carries the hash its config was read with)."""
    if not (isinstance(raw, Mapping) and ({"weights", "factory"} & set(raw))):
        spec = parse_params(TrainSpec, raw, where)
        if spec.model in FIELD_MODELS and spec.width != 1.0:
            raise ConfigError(f"{where}: '{spec.model}' is the field's published architecture, so its channels are "
                              f"fixed; 'width' must be 1 (got {spec.width:g}); to sweep capacity use one of "
                              f"{', '.join(m for m in TARGET_MODELS if m not in FIELD_MODELS)}")
        return spec
    saved = parse_params(SavedTarget, raw, where)
    if bool(saved.factory) == bool(saved.model):
        raise ConfigError(f"{where}: a given model names either a 'factory' that builds it or the field 'model' "
                          f"({', '.join(FIELD_MODELS)}) whose checkpoint the weights are, not "
                          f"{'both' if saved.factory else 'neither'}")
    if not fresh:
        return saved
    from bench.models.saved import file_digest

    weights = Path(saved.weights).expanduser().resolve()
    if not weights.is_file():
        raise ConfigError(f"{where}: weights '{weights}' is not a file")
    module, sep, name = saved.factory.rpartition(":")
    factory = f"{Path(module).expanduser().resolve()}:{name}" if sep and module.endswith(".py") else saved.factory
    return dataclasses.replace(saved, weights=str(weights), factory=factory, digest=file_digest(weights))


def target_labels(targets: tuple[TargetSpec, ...]) -> list[str]:
    """Each target's name in the tables: its model, plus the settings that vary across the grid's
    trained targets where they differ from the default, e.g. ``cnn(epochs=5)``, ``cnn(width=2)``;
    a given model's ``label`` or weights file name."""
    rows = [dataclasses.asdict(t) for t in targets if isinstance(t, TrainSpec)]
    varying = [k for k in rows[0] if k != "model" and len({r[k] for r in rows}) > 1] if rows else []
    default = _defaults(TrainSpec)
    labels = []
    for target in targets:
        if isinstance(target, SavedTarget):
            labels.append(target.label or Path(target.weights).stem)
            continue
        row = dataclasses.asdict(target)
        changed = [f"{k}={_fmt(row[k])}" for k in varying if row[k] != default[k]]
        labels.append(f"{row['model']}({','.join(changed)})" if changed else row["model"])
    return labels


def _check_judge_families(evaluator: EvaluatorSpec, targets: tuple[TargetSpec, ...]) -> None:
    """No judge shares its target's architecture family, and the two judges do not share one."""
    judges = {"evaluator.model": evaluator.model, "evaluator.second": evaluator.second}
    if FAMILY[evaluator.model] == FAMILY[evaluator.second]:
        raise ConfigError(f"evaluator: model '{evaluator.model}' and second '{evaluator.second}' are one architecture "
                          "family; the second judge must be of another")
    for target in targets:
        model = target.model  # a given model built by its own factory names none
        for role, judge in judges.items():
            if model and FAMILY[model] == FAMILY[judge]:
                others = [m for m in JUDGE_MODELS if FAMILY[m] not in {FAMILY[model], *map(FAMILY.get, judges.values())}]
                raise ConfigError(f"{role}: '{judge}' is of the target '{model}''s architecture family and would read "
                                  f"its reconstructions through the same habits; choose another, e.g. "
                                  f"{', '.join(others) or 'resnet'}")


def _check_saved_targets(targets: tuple[TargetSpec, ...], datasets: tuple[PluginSpec, ...],
                         stacks: tuple[tuple[PluginSpec, ...], ...]) -> None:
    """Before anything runs: a given model loads safely and fits every dataset's images and
    identities, and no defense of the grid would have to retrain it."""
    from bench.models.saved import check_fits, load_saved

    saved = [(label, t) for t, label in zip(targets, target_labels(targets)) if isinstance(t, SavedTarget)]
    if not saved:
        return
    for stack in stacks:
        for d in stack:
            if d.cls.stage.shapes_target:
                raise ConfigError(f"config: defense '{d.label}' acts at the {d.cls.stage.value} stage, and target "
                                  f"'{saved[0][0]}' is a given model, already trained; only inference- and "
                                  "access-stage defenses apply to it")
    for ds in datasets:
        data = ds.build()
        if not data.class_order_given():
            raise ConfigError(f"config: target '{saved[0][0]}' is a given model and dataset '{ds.label}' does not say "
                              "which identity each of its classes is: give the model's class order (imagefolder: "
                              "classes: <file>)")
        if not data.split_given():
            raise ConfigError(f"config: target '{saved[0][0]}' is a given model and dataset '{ds.label}' would split "
                              "its images at random: name the images the model never trained on (imagefolder: "
                              "held_out: <file>), or its test accuracy and membership labels would be wrong")
    for label, target in saved:
        for ds in datasets:
            try:
                meta = ds.build().load().meta
            except DataError as exc:
                raise ConfigError(f"dataset '{ds.label}': {exc}") from exc
            model = load_saved(target.factory, target.model, target.weights, meta.shape, meta.num_classes)
            check_fits(model, meta.shape, meta.num_classes, f"target '{label}' on dataset '{ds.label}'")
            if meta.extra.get("overrepresent", 1) > 1:
                raise ConfigError(f"dataset '{ds.label}': overrepresent repeats images in a target's training set, "
                                  f"and target '{label}' is a given model, already trained")


def _parse_stack(entry: Any, where: str) -> tuple[PluginSpec, ...]:
    items = entry if isinstance(entry, list) else [entry]
    if not items:
        raise ConfigError(f"{where}: an empty defense stack; write 'none' for no defense")
    stack = tuple(parse_entry(e, "defense", f"{where}[{i}]") for i, e in enumerate(items))
    names = [d.name for d in stack]
    if len(stack) > 1 and "none" in names:
        raise ConfigError(f"{where}: 'none' cannot be stacked with other defenses")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a defense appears twice in one stack: {names}")
    for i, a in enumerate(stack):
        for b in stack[i + 1 :]:
            if b.name in getattr(a.cls, "incompatible_with", ()) or a.name in getattr(b.cls, "incompatible_with", ()):
                raise ConfigError(f"{where}: '{a.name}' cannot be stacked with '{b.name}' (one declares the other "
                                  "incompatible_with it)")
    return stack


def _as_list(raw: Mapping[str, Any], key: str, default: list[Any] | None = None) -> list[Any]:
    value = raw.get(key, default)
    if not isinstance(value, list):
        raise ConfigError(f"config: '{key}' must be a list, got {value!r}")
    return value


def _defaults(params_cls: type) -> dict[str, Any]:
    """The parameters that have defaults, with them (a required parameter is always 'changed')."""
    out = {}
    for f in dataclasses.fields(params_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ";".join(map(_fmt, value)) + "]"
    return str(value)


def _short_hash(blob: Any) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]
