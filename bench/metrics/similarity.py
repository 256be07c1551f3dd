"""Image similarity of reconstructions to private images (scikit-image SSIM and PSNR)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two C×H×W images in [0, 1] (channels averaged; window fitted to small images)."""
    side = min(a.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    if a.shape[0] == 1:
        return float(structural_similarity(a[0], b[0], data_range=1.0, win_size=win))
    return float(structural_similarity(a, b, data_range=1.0, win_size=win, channel_axis=0))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=1.0))


def best_ssim(recon: np.ndarray, images: Tensor) -> float:
    """SSIM to the most similar of ``images`` (nan when there are none)."""
    return max((ssim(recon, img) for img in images.numpy()), default=float("nan"))


def best_psnr(recon: np.ndarray, images: Tensor) -> float:
    return max((psnr(img, recon) for img in images.numpy()), default=float("nan"))
