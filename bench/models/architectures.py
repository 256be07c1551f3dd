"""Sieve's own classifier architectures in plain torch. GroupNorm, never BatchNorm, so DP-SGD can
train them (the field's published ones are in :mod:`bench.models.field`).

Every classifier splits into ``features`` (the penultimate representation the metrics use),
a ``neck`` (the identity, unless a training defense puts dropout or a bottleneck there) and
``head``, and accepts any N×C×H×W input size. ``width`` scales every layer's channels or units
(rounded to a multiple of 8, the GroupNorm groups) so a grid can sweep a target's capacity.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn


class Classifier(nn.Module):
    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.neck: nn.Module = nn.Identity()  # a training defense's slot: dropout, a bottleneck
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.neck(self.features(x)))


def _conv_block(cin: int, cout: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(groups, cout), nn.ReLU())


def scaled(units: int, width: float) -> int:
    """``units`` times ``width``, rounded to a multiple of 8 (at least 8)."""
    return max(8, round(units * width / 8) * 8)


def mlp(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """Two hidden layers (256 and 128 units at width 1); the classic target of the original MI-Face experiments."""
    c, h, w = shape
    h1, h2 = scaled(256, width), scaled(128, width)
    features = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
    return Classifier(features, h2, num_classes)


def cnn(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """Two conv blocks with pooling (32 and 64 channels at width 1), then a dense layer: the default target."""
    c, _, _ = shape
    c1, c2, dense = scaled(32, width), scaled(64, width), scaled(128, width)
    features = nn.Sequential(
        _conv_block(c, c1, 8), nn.MaxPool2d(2),
        _conv_block(c1, c2, 8), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(c2 * 4, dense), nn.ReLU(),
    )
    return Classifier(features, dense, num_classes)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.relu(x + self.body(x))


def resnet(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """A residual network of three stages (32, 64, 128 channels) with global pooling: the
    evaluator, unlike any target. The third stage lifted a judge of real faces (Yale, 32×32)
    from 0.86 to 0.90 of held-out photos; pooling is ceil-mode so 8×8 digits keep a pixel."""
    c, _, _ = shape
    c1, c2, c3 = scaled(32, width), scaled(64, width), scaled(128, width)
    features = nn.Sequential(
        _conv_block(c, c1, 8), nn.MaxPool2d(2, ceil_mode=True), _Residual(c1),
        _conv_block(c1, c2, 8), nn.MaxPool2d(2, ceil_mode=True), _Residual(c2),
        _conv_block(c2, c3, 8), nn.MaxPool2d(2, ceil_mode=True), _Residual(c3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return Classifier(features, c3, num_classes)


def vgg(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """Three stages of two plain 3×3 convolutions (32, 64, 128 channels) with pooling and no skip
    connections: the second judge, of another family than the residual evaluator and the
    targets, so two judges that agree are not one architecture's habit seen twice."""
    c, _, _ = shape
    stages, cin = [], c
    for cout in (scaled(32, width), scaled(64, width), scaled(128, width)):
        stages += [_conv_block(cin, cout, 8), _conv_block(cout, cout, 8), nn.MaxPool2d(2, ceil_mode=True)]
        cin = cout
    features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Classifier(features, cin, num_classes)


def parameter_count(model: nn.Module) -> int:
    """Trainable and frozen parameters alike: the capacity axis of the causes study."""
    return sum(p.numel() for p in model.parameters())


OWN_ARCHITECTURES: dict[str, Callable[..., Classifier]] = {
    "mlp": mlp,
    "cnn": cnn,
    "resnet": resnet,
    "vgg": vgg,
}
