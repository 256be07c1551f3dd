"""Training-stage defenses: train a model that remembers less. Each changes the recipe only."""

from __future__ import annotations

from dataclasses import dataclass

from bench.defenses.base import Defense, Stage
from bench.errors import ConfigError
from bench.models.training import Recipe
from bench.params import param
from bench.registry import defense

DEFAULT_EPSILON = 8.0


@defense("dropout")
class Dropout(Defense):
    """Dropout on the target's penultimate features during training."""

    stage = Stage.TRAINING
    citation = "Srivastava et al., JMLR 2014, 'Dropout'"

    @dataclass(frozen=True)
    class Params:
        p: float = param(0.5, help="drop probability", low=0, high=1, low_open=True)

    def check(self, num_classes: int | None) -> None:
        if self.params.p >= 1:
            raise ConfigError("defense 'dropout': parameter 'p' is 1.0; allowed: > 0 and < 1")

    def adjust(self, recipe: Recipe) -> Recipe:
        return recipe.replace(dropout=self.params.p)


@defense("weight-decay")
class WeightDecay(Defense):
    """L2 weight decay (Adam's ``weight_decay``)."""

    stage = Stage.TRAINING
    citation = "L2 regularisation against memorisation (Shokri et al., S&P 2017)"

    @dataclass(frozen=True)
    class Params:
        strength: float = param(1e-3, help="L2 coefficient", low=0, low_open=True)

    def adjust(self, recipe: Recipe) -> Recipe:
        return recipe.replace(weight_decay=self.params.strength)


@defense("l1")
class L1(Defense):
    """L1 penalty on all weights, added to the loss."""

    stage = Stage.TRAINING
    citation = "sparsity regularisation (Tibshirani 1996, applied to network weights)"

    @dataclass(frozen=True)
    class Params:
        strength: float = param(1e-5, help="L1 coefficient", low=0, low_open=True)

    def adjust(self, recipe: Recipe) -> Recipe:
        return recipe.replace(l1=self.params.strength)


@defense("label-smoothing")
class LabelSmoothing(Defense):
    """Train against ``(1 - alpha) * onehot + alpha / K``. Struppek et al., ICLR 2024, "Be Careful
    What You Smooth For": positive alpha increases inversion leakage, negative alpha reduces it."""

    stage = Stage.TRAINING
    citation = "Struppek, Hintersdorf & Kersting, ICLR 2024"

    @dataclass(frozen=True)
    class Params:
        alpha: float = param(-0.05, help="smoothing factor, negative allowed", low=-1, high=0.99)

    def check(self, num_classes: int | None) -> None:
        if self.params.alpha == 0:
            raise ConfigError("defense 'label-smoothing': parameter 'alpha' is 0, which is no defense; use 'none'")

    def adjust(self, recipe: Recipe) -> Recipe:
        return recipe.replace(label_smoothing=self.params.alpha)


@defense("early-stop")
class EarlyStop(Defense):
    """Train for ``epochs`` instead of the grid's epoch count: under- vs over-fitting."""

    stage = Stage.TRAINING
    citation = "overfitting as the root of leakage (Yeom et al., CSF 2018)"

    @dataclass(frozen=True)
    class Params:
        epochs: int = param(5, help="epochs to train", low=1)

    def adjust(self, recipe: Recipe) -> Recipe:
        return recipe.replace(epochs=self.params.epochs)


@defense("dp-sgd")
class DPSGD(Defense):
    """Differentially private training with Opacus: per-sample clipping, Gaussian noise, and the
    RDP accountant; the spent (epsilon, delta) goes into the tables. ``epsilon: inf`` is no privacy."""

    stage = Stage.TRAINING
    citation = "Abadi et al., CCS 2016, 'Deep Learning with Differential Privacy'; Opacus (Yousefpour et al. 2021)"

    @dataclass(frozen=True)
    class Params:
        epsilon: float | None = param(None, help="target epsilon (inf: no privacy); 8 if neither this nor "
                                      "noise_multiplier is given", low=0, low_open=True)
        noise_multiplier: float | None = param(None, help="noise multiplier instead of a target epsilon", low=0,
                                               low_open=True)
        delta: float = param(1e-5, help="target delta", low=0, high=1, low_open=True)
        max_grad_norm: float = param(1.0, help="per-sample gradient clipping norm", low=0, low_open=True)

    def check(self, num_classes: int | None) -> None:
        if self.params.noise_multiplier is not None and self.params.epsilon is not None:
            raise ConfigError("defense 'dp-sgd': give 'epsilon' or 'noise_multiplier', not both")

    def adjust(self, recipe: Recipe) -> Recipe:
        p = self.params
        epsilon = p.epsilon if p.epsilon is not None or p.noise_multiplier is not None else DEFAULT_EPSILON
        return recipe.replace(dp_epsilon=epsilon, dp_noise_multiplier=p.noise_multiplier, dp_delta=p.delta,
                              dp_max_grad_norm=p.max_grad_norm)
