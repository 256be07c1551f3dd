"""The field's face-recognition architectures for 64×64 faces, defined here (no downloads):
VGG16-BN, an IR-152 and a FaceNet64 (an IR-50), as GMI, KEDMI, PLG-MI and LOMMA use them as
targets and evaluators.

They keep the published module layout, so the state dicts those papers' code releases load
into them after one renaming (:func:`from_published`): ``feature.*`` (the convolutional
trunk), ``bn.*`` (VGG16's BatchNorm1d) or ``output_layer.*`` (the IR networks' BatchNorm2d,
Dropout, Flatten, Linear, BatchNorm1d), and ``fc_layer.*`` (the classifier). Unlike Sieve's
own architectures they use BatchNorm, as published, so DP-SGD cannot train them (Opacus
refuses BatchNorm); any input size whose sides divide by 32 (VGG16) or 16 (IR) is accepted,
with the 64×64 RGB of the papers as the one their checkpoints fit.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from bench.errors import ConfigError
from bench.models.architectures import Classifier

VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
IR_UNITS = {50: (3, 4, 14, 3), 152: (3, 8, 36, 3)}  # bottleneck units per stage of 64, 128, 256, 512 channels


def vgg16_bn(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """VGG16 with BatchNorm (13 convolutions, five poolings), then BatchNorm1d over the flattened
    map: the GMI/KEDMI target of 64×64 faces."""
    c, h, w = shape
    _divisible(shape, 32, "vgg16")
    layers: list[nn.Module] = []
    cin = c
    for v in VGG16_LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
            cin = int(v)
    dim = 512 * (h // 32) * (w // 32)
    bn = nn.BatchNorm1d(dim)
    bn.bias.requires_grad_(False)  # as published: a scale without a shift
    return Classifier(nn.Sequential(nn.Sequential(*layers), nn.Flatten(), bn), dim, num_classes)


class BottleneckIR(nn.Module):
    """The improved residual unit of ArcFace's IR networks: BN, 3×3 conv, PReLU, 3×3 conv (strided), BN."""

    def __init__(self, cin: int, depth: int, stride: int) -> None:
        super().__init__()
        self.shortcut_layer: nn.Module = (
            nn.MaxPool2d(1, stride) if cin == depth
            else nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth))

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRBackbone(nn.Module):
    """The IR trunk for 64×64 inputs: a 3×3 stem, then four stages that halve the map."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units, cin = [], 64
        for depth, count in zip((64, 128, 256, 512), IR_UNITS[layers]):
            units += [BottleneckIR(cin, depth, 2)] + [BottleneckIR(depth, depth, 1) for _ in range(count - 1)]
            cin = depth
        self.body = nn.Sequential(*units)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(self.input_layer(x))


def _ir(layers: int, shape: tuple[int, int, int], num_classes: int, name: str) -> Classifier:
    c, h, w = shape
    _divisible(shape, 16, name)
    output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(), nn.Flatten(),
                                 nn.Linear(512 * (h // 16) * (w // 16), 512), nn.BatchNorm1d(512))
    return Classifier(nn.Sequential(IRBackbone(c, layers), output_layer), 512, num_classes)


def ir152(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """IR-152 (ArcFace's improved residual network, 50 bottleneck units) with a 512-d embedding:
    the evaluator of GMI, KEDMI and PLG-MI, and a target of theirs."""
    return _ir(152, shape, num_classes, "ir152")


def facenet64(shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Classifier:
    """FaceNet64: an IR-50 (24 bottleneck units) with a 512-d embedding, the field's third target
    of 64×64 faces."""
    return _ir(50, shape, num_classes, "facenet64")


FIELD_ARCHITECTURES = {"vgg16": vgg16_bn, "ir152": ir152, "facenet64": facenet64}


def from_published(state: Mapping[str, Tensor], model: str) -> dict[str, Tensor]:
    """A state dict as the field's code saves ``model`` (``feature.*``, ``bn.*`` or
    ``output_layer.*``, ``fc_layer.*``; a ``state_dict`` wrapper and DataParallel's ``module.``
    prefix are taken off) renamed to this module's layout."""
    if isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    return _renamed({k.removeprefix("module."): v for k, v in state.items()}, PUBLISHED[model])


def to_published(state: Mapping[str, Tensor], model: str) -> dict[str, Tensor]:
    """The inverse of :func:`from_published`: this module's state dict in the field's layout."""
    return _renamed(state, {ours: theirs for theirs, ours in PUBLISHED[model].items()})


def _renamed(state: Mapping[str, Tensor], prefixes: Mapping[str, str]) -> dict[str, Tensor]:
    """``state`` with each key's first matching prefix replaced as ``prefixes`` says."""
    out = {}
    for key, value in state.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        out[key if prefix is None else prefixes[prefix] + key[len(prefix):]] = value
    return out


PUBLISHED: dict[str, dict[str, str]] = {  # the field's key prefix -> Sieve's
    "vgg16": {"feature.": "features.0.", "bn.": "features.2.", "fc_layer.": "head."},
    "ir152": {"feature.": "features.0.", "output_layer.": "features.1.", "fc_layer.": "head."},
    "facenet64": {"feature.": "features.0.", "output_layer.": "features.1.", "fc_layer.": "head."},
}


def _divisible(shape: tuple[int, int, int], by: int, name: str) -> None:
    _, h, w = shape
    if h % by or w % by:
        raise ConfigError(f"{name} takes images whose sides divide by {by} (the field's 64×64); got {h}×{w}")
