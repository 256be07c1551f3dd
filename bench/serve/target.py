"""Which target ``bench serve`` serves, and the target itself with the cell's defenses.

A grid's job (dataset × data and training defenses × seed) determines a target; a defense
stack of the grid adds the inference defenses (what ``/predict`` returns) and the access
defenses (the guards). ``select_cell`` picks one stack of one dataset and seed from a grid
config; ``load_target`` trains the target or takes it from the artifact cache, exactly as
``bench run`` would for the same cell, so a served target answers like the grid's oracle.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from bench.config import CellSpec, GridConfig, JobSpec
from bench.errors import ConfigError
from bench.experiment import load_data, output_transforms, train_target
from bench.oracle import AccessGuard, OutputTransform, ThreatModel, defended_probabilities
from bench.seeds import generator


def select_cell(config: GridConfig, dataset: str, defenses: Sequence[str], seed: int,
                target: str | None = None) -> CellSpec:
    """The grid's cell of ``dataset``, ``target`` (a label; None: the grid's only target) and ``seed``
    whose defense stack is ``defenses`` (each a name or a label such as ``round(decimals=1)``; empty:
    the stack ``none``). The attack does not matter: every attack of a stack meets the same served target."""
    wanted = list(defenses) or ["none"]
    _, label = config.target_named(target)
    names = sorted({d.label for d in config.datasets})
    matching = sorted({d.label for d in config.datasets if dataset in (d.name, d.label)})
    if not matching:
        raise ConfigError(f"--dataset '{dataset}' is not in grid '{config.name}'; its datasets: {', '.join(names)}")
    if len(matching) > 1:
        raise ConfigError(f"--dataset '{dataset}' names several datasets of grid '{config.name}': "
                          f"{', '.join(matching)}; give one's label")
    by_dataset = [c for c in config.cells() if c.dataset.label == matching[0] and c.target_name == label]
    by_seed = [c for c in by_dataset if c.seed == seed]
    if not by_seed:
        raise ConfigError(f"--seed {seed} is not in grid '{config.name}'; its seeds: {', '.join(map(str, config.seeds))}")
    matches: dict[str, CellSpec] = {}
    for cell in by_seed:
        stack = cell.defenses
        if len(stack) == len(wanted) and all(w in (d.name, d.label) for w, d in zip(wanted, stack)):
            matches.setdefault(cell.defense_label, cell)
    stacks = sorted({c.defense_label for c in by_seed})
    if not matches:
        raise ConfigError(f"--defense {' '.join(wanted)}: no such stack in grid '{config.name}'; "
                          f"its stacks: {', '.join(stacks)} (give one --defense per stacked defense)")
    if len(matches) > 1:
        raise ConfigError(f"--defense {' '.join(wanted)} matches several stacks: {', '.join(sorted(matches))}; "
                          "give their labels")
    return next(iter(matches.values()))


@dataclass
class ServedTarget:
    """The model behind ``/predict``, with the cell's output transforms and calibrated guards."""

    label: str
    model: nn.Module
    num_classes: int
    input_shape: tuple[int, ...]
    access: ThreatModel  # black-box, or label-only when a label-only defense is in the stack
    transforms: list[OutputTransform]
    rate: tuple[float, int] | None  # the rate-limit defense's (per_minute, burst)
    guards: list[AccessGuard]  # the other access defenses' guards, calibrated, fresh
    guard_names: list[str]

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Probability vectors after the inference defenses, as ``Oracle.probabilities`` computes them."""
        return defended_probabilities(self.model, x, self.transforms)


def load_target(cell: CellSpec, cache_dir: str | Path, reproducible: bool = False) -> ServedTarget:
    """Train (or load) ``cell``'s target and calibrate its guards as ``build_oracle`` does. Noise
    defenses draw from a secret seed — an attacker who knows the grid config could otherwise
    replay the noise and subtract it — unless ``reproducible``, when they draw as in the grid."""
    job = JobSpec((cell,))
    splits = load_data(job)
    trained = train_target(job, splits, cache_dir)
    model = trained.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    g = generator(cell.seed, "guard")
    rate, guards = None, []
    for defense in cell.stack.guards:
        served_rate = defense.wall_clock_rate()
        if served_rate is not None:
            rate = served_rate
        else:
            guards.append(defense.guard(splits.private_train.x, splits.private_test.x, g))
    label_only = cell.stack.label_only
    return ServedTarget(
        label=f"{job.label} · {cell.defense_label}", model=model, num_classes=splits.meta.num_classes,
        input_shape=tuple(splits.meta.shape), access=ThreatModel.LABEL_ONLY if label_only else ThreatModel.BLACK_BOX,
        transforms=output_transforms(cell, None if reproducible else torch.Generator().manual_seed(secrets.randbits(63))),
        rate=rate, guards=guards, guard_names=cell.stack.guard_labels)
