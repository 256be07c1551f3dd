"""Image similarity of reconstructions to private images (scikit-image SSIM and PSNR).

Best-of-n similarities grow with n, so two sets of different sizes are compared through the
expected best of equally many images (:func:`expected_best`), never through their raw maxima.
"""

from __future__ import annotations

from math import comb

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor

PSNR_CAP = 100.0  # dB: an exact copy has infinite PSNR; capped so that means stay finite and honest


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two C×H×W images in [0, 1] (channels averaged; window fitted to small images)."""
    side = min(a.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    if a.shape[0] == 1:
        return float(structural_similarity(a[0], b[0], data_range=1.0, win_size=win))
    return float(structural_similarity(a, b, data_range=1.0, win_size=win, channel_axis=0))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB, capped at :data:`PSNR_CAP` (an exact copy scores the cap, not infinity)."""
    if np.array_equal(a, b):
        return PSNR_CAP
    return min(PSNR_CAP, float(peak_signal_noise_ratio(a, b, data_range=1.0)))


def ssims(recon: np.ndarray, images: Tensor) -> np.ndarray:
    """SSIM of ``recon`` to each of ``images``."""
    return np.array([ssim(recon, img) for img in images.numpy()], dtype=np.float64)


def best_psnr(recon: np.ndarray, images: Tensor) -> float:
    return max((psnr(img, recon) for img in images.numpy()), default=float("nan"))


def expected_best(values: np.ndarray, n: int) -> float:
    """The expected maximum of ``n`` of ``values`` drawn without replacement: the exact average
    over every subset of size ``n`` (the limit of averaging over many seeded subsets).

    The i-th smallest of N values is the maximum of a random n-subset with probability
    C(i-1, n-1) / C(N, n).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if len(v) == 0 or n < 1:
        return float("nan")
    n = min(n, len(v))
    weights = np.array([comb(i, n - 1) for i in range(len(v))], dtype=np.float64) / comb(len(v), n)
    return float(weights @ v)
