"""A cell's images — each identity's private image beside what the attack recovered, a generator's
samples — and the two drawing helpers the report's gallery shares."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from bench.data.base import DataSplits  # noqa: E402


def reconstruction_grid(recon: Tensor, targets: Tensor, splits: DataSplits, max_identities: int = 20) -> bytes:
    """PNG bytes: top row a private training image per identity, bottom row its reconstruction."""
    n = min(len(targets), max_identities)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n, 2.1), squeeze=False)
    for i in range(n):
        k = int(targets[i])
        for row, img in enumerate((splits.private_train.of_class(k)[0], recon[i])):
            ax = axes[row, i]
            show(ax, img)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, i].set_title(splits.meta.identity_names[k][-8:], fontsize=7)
    axes[0, 0].set_ylabel("private", fontsize=7)
    axes[1, 0].set_ylabel("recovered", fontsize=7)
    fig.tight_layout(pad=0.2)
    return png(fig)


def sample_sheet(images: Tensor, columns: int = 8) -> bytes:
    """PNG bytes: ``images`` (N×C×H×W in [0, 1]) in rows of ``columns``, e.g. a generator's samples."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(0.6 * columns, 0.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images.detach()):
        show(ax, img)
    fig.tight_layout(pad=0.1)
    return png(fig)


def show(ax: Axes, img: Tensor | np.ndarray) -> None:
    """One C×H×W image in [0, 1] on ``ax``: grayscale for one channel, RGB for three."""
    arr = np.asarray(img).transpose(1, 2, 0)
    ax.imshow(arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
