"""Batched image views, pure functions of (batch, generator, settings) that run unchanged on any device:
normalisation of uint8 batches, pad-and-crop, RandomResizedCrop (one affine_grid + grid_sample call per batch),
flips, and the test-time view (resize, then a centre crop). No Python loop over images."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CROPS = ("pad", "rrc", "none")
EVAL_CROPS = ("center", "none")
TRIES = 10  # RandomResizedCrop's attempts before its centre-crop fallback (torchvision's definition)


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 N×C×H×W → float32 (x / 255 - mean) / std, per channel (mean, std: C values in [0, 1] units)."""
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    return torch.addcmul((-mean / std).view(1, -1, 1, 1), x.float(), scale)


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an N×C×H×W batch (antialiased when shrinking; no-op at the same size)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=min(hw) < min(x.shape[-2:]))


def flips(n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """A bool per image: flip it (probability 1/2)."""
    return torch.rand(n, generator=generator, device=device) < 0.5


def pad_crop(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Random crop of the batch's own size from the batch padded by `pad` zeros (the mean, on normalised input),
    plus optional horizontal flips, by one index gather."""
    n, c, h, w = x.shape
    dev = x.device
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    rows = dy + torch.arange(h, device=dev)
    cols = dx + torch.arange(w, device=dev)
    if flip:
        cols = torch.where(flips(n, generator, dev)[:, None], cols.flip(1), cols)
    idx = (rows[:, :, None] * x.shape[-1] + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.flatten(2).gather(2, idx).view(n, c, h, w)  # one gather: 2-3x faster than 4-D advanced indexing


def rrc_boxes(n: int, h: int, w: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
              generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """RandomResizedCrop's boxes for n images of h×w, as torchvision's get_params defines them: up to 10 tries of
    (area fraction ~ U(scale), aspect ratio log-uniform in ratio), crop size rounded to whole pixels, the first try
    that fits; else a centre crop of the whole image with its aspect ratio clamped into `ratio`. The offset is
    uniform over the positions that fit. Returns an n×4 int64 tensor (top, left, height, width)."""
    area = torch.empty(n, TRIES, device=device).uniform_(scale[0], scale[1], generator=generator) * (h * w)
    logr = torch.empty(n, TRIES, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = logr.exp()
    cw, ch = (area * r).sqrt().round(), (area / r).sqrt().round()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)  # the first try that fits (0 when none does)
    found = ok.any(1)
    cw, ch = cw.gather(1, first)[:, 0], ch.gather(1, first)[:, 0]
    aspect = w / h  # the fallback: the whole image, its aspect clamped into [min(ratio), max(ratio)]
    if aspect < min(ratio):
        fw, fh = w, int(round(w / min(ratio)))
    elif aspect > max(ratio):
        fw, fh = int(round(h * max(ratio))), h
    else:
        fw, fh = w, h
    cw = torch.where(found, cw, torch.full_like(cw, fw))
    ch = torch.where(found, ch, torch.full_like(ch, fh))
    u = torch.rand(n, 2, device=device, generator=generator)
    top = torch.where(found, (u[:, 0] * (h - ch + 1)).floor(), ((h - ch) / 2).floor())
    left = torch.where(found, (u[:, 1] * (w - cw + 1)).floor(), ((w - cw) / 2).floor())
    return torch.stack([top, left, ch, cw], 1).long()


def crop_resize(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Each image's box (top, left, height, width in pixels) resampled bilinearly to size×size, mirrored where
    `flip` is true: one affine_grid + grid_sample for the batch (pixel centres at half-integers, so a box of the
    output's own size is copied exactly)."""
    n, c, h, w = x.shape
    top, left, bh, bw = boxes.to(x.dtype).unbind(1)
    sx, sy = bw / w, bh / h
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, (2 * left + bw) / w - 1], 1),
                         torch.stack([zero, sy, (2 * top + bh) / h - 1], 1)], 1)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def train_view(x: torch.Tensor, size: int, *, crop: str = "pad", pad: int | None = None, scale=(0.08, 1.0),
               ratio=(3 / 4, 4 / 3), flip: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """The training view of a normalised batch at size×size: `pad` resizes to size then pad-crops (pad None:
    size // 8); `rrc` is RandomResizedCrop from the stored images; `none` only resizes. Flips where asked."""
    if crop == "rrc":
        boxes = rrc_boxes(len(x), x.shape[-2], x.shape[-1], scale, ratio, generator, x.device)
        return crop_resize(x, boxes, size, flips(len(x), generator, x.device) if flip else None)
    x = resize(x, size)
    if crop == "pad":
        return pad_crop(x, size // 8 if pad is None else pad, flip, generator)
    if flip:
        x = torch.where(flips(len(x), generator, x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    return x


def test_size(size: int, resize_ratio: float) -> int:
    """The short side an image is resized to before its centre crop: floor(size * ratio) (e.g. 224 → 256 at
    1.143, torchvision's Resize(256) + CenterCrop(224)), never below size."""
    return max(size, int(math.floor(size * resize_ratio + 1e-6)))


def eval_view(x: torch.Tensor, size: int, resize_ratio: float = 1.0, crop: str = "none") -> torch.Tensor:
    """The test view at size×size: `none` resizes the image to size; `center` resizes its short side to
    floor(size * resize_ratio), then takes the centre size×size crop (the standard ImageNet protocol)."""
    if crop == "none":
        return resize(x, size)
    h, w = x.shape[-2:]
    short = test_size(size, resize_ratio)
    x = resize(x, (short, max(short, round(w * short / h))) if h <= w else (max(short, round(h * short / w)), short))
    top, left = int(round((x.shape[-2] - size) / 2)), int(round((x.shape[-1] - size) / 2))
    return x[..., top:top + size, left:left + size]
