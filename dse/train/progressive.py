"""Progressive learning with adaptive regularisation (EfficientNetV2, Sec. 4.2), as pure schedule functions
plus batched tensor augmentations: image size, dropout, RandAugment magnitude and mixup alpha all rise together
over K stages of training."""
from __future__ import annotations

import torch

from ..errors import DseError
from .recipe import V2S, Progressive

__all__ = ["Progressive", "V2S", "mixup", "randaugment", "schedule", "set_dropout"]


def schedule(p: Progressive, epochs: int, res: int) -> list[dict]:
    """Per epoch (1-based): stage, res, dropout, randaug and mixup; each rises linearly from min to max by stage."""
    lo = p.res_min or max(4, round(res * V2S["res"][0] / V2S["res"][1]))
    hi = p.res_max or res
    if lo > hi:
        raise DseError(f"progressive: res_min {lo} > res_max {hi}")
    k = min(p.stages, epochs)
    out = []
    for e in range(epochs):
        s = e * k // epochs  # stage of this epoch, 0..k-1
        t = s / (k - 1) if k > 1 else 1.0
        lerp = lambda v: v[0] + (v[1] - v[0]) * t  # noqa: E731
        out.append({"epoch": e + 1, "stage": s + 1, "res": int(round(lo + (hi - lo) * t)),
                    "dropout": lerp(p.dropout), "randaug": lerp(p.randaug), "mixup": lerp(p.mixup)})
    return out


def randaugment(x: torch.Tensor, magnitude: float, generator: torch.Generator | None = None, n_ops: int = 2,
                max_magnitude: float = 30.0) -> torch.Tensor:
    """A batched RandAugment-style transform on normalised tensors: every image gets n_ops ops drawn from
    identity, brightness, contrast, translate x/y and cutout, at strength magnitude/max_magnitude."""
    if magnitude <= 0:
        return x
    m = min(magnitude / max_magnitude, 1.0)
    n, c, h, w = x.shape
    dev = x.device
    ar = lambda k: torch.arange(k, device=dev)  # noqa: E731
    x = x.clone()
    for _ in range(n_ops):
        op = torch.randint(0, 6, (n,), generator=generator, device=dev)
        sign = torch.where(torch.rand(n, generator=generator, device=dev) < 0.5, -1.0, 1.0)
        sel = lambda k: (op == k).view(n, 1, 1, 1)  # noqa: E731
        x = torch.where(sel(1), x + sign.view(n, 1, 1, 1) * m, x)  # brightness (in std units)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = torch.where(sel(2), mean + (x - mean) * (1 + sign.view(n, 1, 1, 1) * 0.9 * m), x)  # contrast
        shift = (sign * m * 0.3 * w).round().long()
        cols = (ar(w).view(1, w) - shift.view(n, 1)).clamp(0, w - 1)
        tx = x.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
        x = torch.where(sel(3), tx, x)  # translate x (edge replicate)
        rows = (ar(h).view(1, h) - (sign * m * 0.3 * h).round().long().view(n, 1)).clamp(0, h - 1)
        ty = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w))
        x = torch.where(sel(4), ty, x)  # translate y
        size = max(1, int(round(m * 0.5 * min(h, w))))
        cy = torch.randint(0, h, (n, 1), generator=generator, device=dev)
        cx = torch.randint(0, w, (n, 1), generator=generator, device=dev)
        hole = ((ar(h).view(1, h) - cy).abs() <= size // 2).view(n, 1, h, 1) & \
               ((ar(w).view(1, w) - cx).abs() <= size // 2).view(n, 1, 1, w)
        x = torch.where(sel(5) & hole, torch.zeros_like(x), x)  # cutout
    return x


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator | None = None):
    """Mix a batch with a permutation of itself: (x_mixed, y, y_perm, lam); alpha <= 0 leaves it unchanged."""
    if alpha <= 0:
        return x, y, y, 1.0
    lam = float(torch.distributions.Beta(alpha, alpha).sample())  # torch's seeded global stream
    perm = torch.randperm(len(y), generator=generator, device=x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set the rate of every dropout layer of a model."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p
