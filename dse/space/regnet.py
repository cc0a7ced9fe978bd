"""The quantized linear width rule of RegNet and the group/bottleneck compatibility adjustment (pure functions)."""
from __future__ import annotations

from itertools import groupby

import numpy as np


def linear_widths(d: int, w0: float, wa: float) -> np.ndarray:
    """The continuous widths u_j = w0 + wa * j for j < d."""
    return w0 + wa * np.arange(d, dtype=float)


def quantized_widths(d: int, w0: float, wa: float, wm: float, q: int = 8) -> np.ndarray:
    """Per-block widths w_j = q * round(w0 * wm**s_j / q), s_j = round(log(u_j / w0) / log(wm))."""
    return np.array(quantized_widths_many([d], [w0], [wa], [wm], q)[0], dtype=int)


def quantized_widths_many(d, w0, wa, wm, q: int = 8) -> list[list[int]]:
    """quantized_widths for many models at once (one vectorised pass; rows cut to each model's d)."""
    d = np.asarray(d, dtype=int)
    w0, wa, wm = (np.asarray(x, dtype=float)[:, None] for x in (w0, wa, wm))
    u = w0 + wa * np.arange(max(int(d.max()), 1), dtype=float)
    s = np.round(np.log(u / w0) / np.log(wm))
    ws = (np.round(w0 * np.power(wm, s) / q) * q).astype(int).tolist()
    return [row[:n] for row, n in zip(ws, d.tolist())]


def stages_from_widths(ws) -> tuple[list[int], list[int]]:
    """Runs of equal consecutive widths: (stage depths, stage widths)."""
    runs = [(int(w), len(list(grp))) for w, grp in groupby(ws)]
    return [n for _, n in runs], [w for w, _ in runs]


def adjust_compat(w: int, b: float, g: int) -> tuple[int, int]:
    """Make the group width g fit the inner width w/b (the paper's Appendix D rule): returns (w, g).

    g becomes w_b when g > w_b; otherwise w_b is rounded to a multiple of g and w follows it.
    """
    wb = max(1, int(round(w / b)))
    g = min(g, wb)
    wb = max(g, int(round(wb / g)) * g)
    return int(round(wb * b)), int(g)


def regnet_stages(d: int, w0: float, wa: float, wm: float, b: float, g: int, q: int = 8, ws=None):
    """(ds, ws, gs) of a RegNet after the compatibility adjustment, in pycls's order of operations.

    `ws` may pass the per-block widths when they were computed in a batch.
    """
    ds, ws = stages_from_widths(quantized_widths(d, w0, wa, wm, q) if ws is None else ws)
    adj = [adjust_compat(w, b, g) for w in ws]
    return ds, [a[0] for a in adj], [a[1] for a in adj]
