"""A cell's own pictures, drawn where the cell runs: each identity's private image beside what the
attack recovered, and a generator's samples. The report reads the PNGs; it never imports this."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from bench.data.base import DataSplits  # noqa: E402
from bench.report.gallery import png, show  # noqa: E402


def reconstruction_grid(recon: Tensor, identities: Tensor, splits: DataSplits, max_identities: int = 20) -> bytes:
    """PNG bytes: top row a private training image per identity, bottom row its reconstruction."""
    n = min(len(identities), max_identities)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n, 2.1), squeeze=False)
    for i in range(n):
        k = int(identities[i])
        for row, img in enumerate((splits.private_train.of_class(k)[0], recon[i])):
            ax = axes[row, i]
            show(ax, img)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, i].set_title(splits.meta.identity_names[k], fontsize=9, rotation=30, ha="left", rotation_mode="anchor")
    axes[0, 0].set_ylabel("private", fontsize=9)
    axes[1, 0].set_ylabel("recovered", fontsize=9)
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
