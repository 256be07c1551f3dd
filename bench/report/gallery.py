"""The two drawing helpers every figure of Sieve shares: one image on an axis, a figure as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402


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
