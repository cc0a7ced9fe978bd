"""Per-channel mean and standard deviation of uint8 images, read a part at a time (a memory-mapped cache too)."""
from __future__ import annotations

import numpy as np
import torch


def stats(x: np.ndarray, chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in [0, 1] units (float64 sums, chunked: by default 8192 images, or
    256 MB of float64 for larger images, so a memory-mapped cache is read a part at a time)."""
    c = x.shape[1]
    chunk = chunk or max(1, min(8192, (256 << 20) // (8 * max(1, int(np.prod(x.shape[1:]))))))
    s, s2, n = np.zeros(c), np.zeros(c), 0
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(np.float64) / 255.0
        s += part.sum((0, 2, 3))
        s2 += (part ** 2).sum((0, 2, 3))
        n += part.shape[0] * part.shape[2] * part.shape[3]
    mean = s / max(n, 1)
    std = np.sqrt(np.maximum(s2 / max(n, 1) - mean ** 2, 0)).clip(1e-6)
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
