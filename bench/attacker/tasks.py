"""What an attacker's process is asked to do, and what it may answer.

An :class:`Inversion` reconstructs one image per identity; a :class:`Membership` scores a
challenge set. Each runs the attack's own ``execute``/``infer`` on the worker's side, and
turns the answer into arrays there (``send``) and back into a result on the job's side
(``receive``), where the result is checked again: the worker's word is not taken for shapes,
ranges or the black-box query count, which the job's oracle holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.attacker.errors import AttackFailed
from bench.attacks.base import Attack, AttackResult, Checkpoint, InversionAttack, check_reconstructions
from bench.attacks.latent import GenerativePrior
from bench.attacks.membership import MembershipAttack, MembershipResult, Population
from bench.membership.shadow import ShadowRecipe
from bench.oracle import BaseOracle

Message = tuple[dict[str, Any], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Inversion:
    """Reconstruct ``identities`` from the ``public`` data and the generator ``prior`` it grants."""

    identities: Tensor
    public: Tensor | None
    prior: GenerativePrior | None
    seed: int

    def run(self, attack: InversionAttack, oracle: BaseOracle) -> Message:
        result = attack.execute(oracle, self.identities, self.public, self.seed, self.prior)
        arrays = {"reconstructions": result.reconstructions.numpy()}
        arrays.update({f"checkpoint.{i}": c.reconstructions.float().numpy() for i, c in enumerate(result.checkpoints)})
        arrays.update({f"extra.{name}": x.detach().float().numpy() for name, x in result.extras.items()})
        header = {"queries": result.queries, "blocked": result.blocked,
                  "checkpoints": [{"queries": c.queries, "info": c.info} for c in result.checkpoints]}
        return header, arrays

    def receive(self, attack: Attack, header: dict[str, Any], arrays: dict[str, np.ndarray], count: tuple[int, int],
                seconds: float, input_shape: tuple[int, ...]) -> AttackResult:
        """The worker's answer as an AttackResult, its images checked as ``execute`` checks them;
        ``count`` is the attack's queries and the oracle's total after them (checkpoints count in totals)."""
        queries, total = count
        expected = (len(self.identities), *input_shape)
        x = check_reconstructions(attack.name, _tensor(arrays, "reconstructions"), expected)
        marks = header.get("checkpoints")
        if not isinstance(marks, list) or not all(isinstance(m, dict) for m in marks):
            raise AttackFailed("the attacker's process sent no checkpoint list")
        checkpoints = [Checkpoint(_count(m.get("queries"), total), check_reconstructions(
            attack.name, _tensor(arrays, f"checkpoint.{i}"), expected), _info(m.get("info"))) for i, m in enumerate(marks)]
        extras = {name[len("extra."):]: _extra(attack.name, torch.from_numpy(a), expected)
                  for name, a in arrays.items() if name.startswith("extra.")}
        blocked = header.get("blocked")
        return AttackResult(x, checkpoints, queries, seconds, blocked if isinstance(blocked, str) else None, extras)


@dataclass(frozen=True)
class Membership:
    """Score the challenge images ``x`` (labels ``y``) with the ``population`` and shadow ``recipe`` it grants."""

    x: Tensor
    y: Tensor
    population: Population
    shadows: ShadowRecipe
    seed: int

    def run(self, attack: MembershipAttack, oracle: BaseOracle) -> Message:
        result = attack.infer(oracle, self.x, self.y, self.population, self.shadows.trainer(), self.seed)
        return {"queries": result.queries, "blocked": result.blocked}, {"scores": result.scores.double().numpy()}

    def receive(self, attack: Attack, header: dict[str, Any], arrays: dict[str, np.ndarray], count: tuple[int, int],
                seconds: float, input_shape: tuple[int, ...]) -> MembershipResult:
        queries = count[0]
        scores = _tensor(arrays, "scores").double()
        if scores.shape != self.y.shape or not torch.isfinite(scores).all():
            raise ValueError(f"attack '{attack.name}' must return one finite score per challenge image")
        blocked = header.get("blocked")
        return MembershipResult(scores, queries, seconds, blocked if isinstance(blocked, str) else None)


Task = Inversion | Membership


def _tensor(arrays: dict[str, np.ndarray], name: str) -> Tensor:
    if name not in arrays:
        raise AttackFailed(f"the attacker's process sent no '{name}'")
    return torch.from_numpy(arrays[name])


def _count(value: Any, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most:
        raise AttackFailed(f"a checkpoint claims {value!r} queries; the oracle answered {most}")
    return value


def _info(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _extra(name: str, x: Tensor, expected: tuple[int, ...]) -> Tensor:
    """An extra image set: one more reconstruction per identity (K×C×H×W) or N per identity (K×N×C×H×W)."""
    k, *image = expected
    if x.dim() == len(expected) + 1 and x.shape[0] == k and tuple(x.shape[2:]) == tuple(image):
        check_reconstructions(name, x.flatten(0, 1), (x.shape[0] * x.shape[1], *image))
        return x
    return check_reconstructions(name, x, expected)
