"""EfficientNet compound scaling (Tan & Le 2019) as pure rules: width/depth rounding, the compound multipliers, and
the alpha/beta/gamma grid. Networks are made from them in one place (dse.space.families.effnet, called by
dse.space.scaled.compound); this module imports nothing of dse but its error type.

Depth scales by alpha**phi, width by beta**phi and resolution by gamma**phi, with alpha * beta^2 * gamma^2 ~ 2
so that flops grow about 2**phi. Note: the published B1-B7 coefficients (width/depth/resolution 1.0/1.1/240,
1.1/1.2/260, 1.2/1.4/300, 1.4/1.8/380, 1.6/2.2/456, 1.8/2.6/528, 2.0/3.1/600) are NOT exact powers of
alpha = 1.2, beta = 1.1, gamma = 1.15 (e.g. 1.2**7 = 3.58, not 3.1); they are presets, not derived values.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import DseError


def round_filters(w: float, m: float = 1.0, divisor: int = 8) -> int:
    """The standard width rounding: nearest multiple of divisor, never below divisor or 90% of w * m."""
    v = w * m
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * v else new)


def round_repeats(d: int, m: float = 1.0) -> int:
    """Depths are rounded up."""
    return int(math.ceil(d * m))


MAX_RES = 4096  # the largest resolution a space file may declare (dse.space.spec.LIMITS)
MAX_SCALE = 100.0  # the largest depth or width multiplier (B7's are 3.1 and 2.0)


def max_phi(alpha: float, beta: float, gamma: float, base_res: int = 224) -> float:
    """The largest phi whose network dse builds and counts: depth and width at most MAX_SCALE times B0's, and a
    resolution of at most MAX_RES (inf when no multiplier grows)."""
    limits = [math.log(MAX_SCALE) / math.log(m) for m in (alpha, beta) if m > 1]
    if gamma > 1:
        limits.append(math.log(MAX_RES / base_res) / math.log(gamma))
    return min(limits, default=math.inf)


def check_phi(phi: float, alpha: float, beta: float, gamma: float, base_res: int = 224) -> None:
    """Refuse coefficients that are not finite numbers >= 1 (phi >= 0), and a phi beyond max_phi."""
    for n, v, lo in (("phi", phi, 0), ("alpha", alpha, 1), ("beta", beta, 1), ("gamma", gamma, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
            raise DseError(f"{n} must be a finite number >= {lo}, got {v}")
    if not 1 <= base_res <= MAX_RES:
        raise DseError(f"the base resolution must be in 1..{MAX_RES}, got {base_res}")
    most = max_phi(alpha, beta, gamma, base_res)
    if phi > most:
        raise DseError(f"phi={phi} scales beyond what dse builds: with alpha={alpha:g} beta={beta:g} gamma={gamma:g} "
                       f"and base resolution {base_res}, phi <= {math.floor(most + 1e-9)} keeps depth and width within "
                       f"x{MAX_SCALE:g} and the resolution within {MAX_RES}")


def compound(alpha: float, beta: float, gamma: float, phi: float, base_res: int = 224) -> tuple[float, float, int]:
    """(depth multiplier, width multiplier, resolution) for compound coefficient phi (check_phi's bounds)."""
    check_phi(phi, alpha, beta, gamma, base_res)
    return alpha ** phi, beta ** phi, int(round(base_res * gamma ** phi))


def grid(step: float = 0.05, tol: float = 0.05, max_value: float = 2.0) -> list[tuple[float, float, float]]:
    """All (alpha, beta, gamma) >= 1 on a step grid with alpha * beta^2 * gamma^2 within 2 * (1 +- tol)."""
    for n, x in (("step", step), ("tolerance", tol), ("max", max_value)):
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise DseError(f"grid {n} must be a number, got {x!r}")
    if not 0 < step <= 1:
        raise DseError(f"grid step must be in (0, 1], got {step}")
    if not 0 <= tol < 1:
        raise DseError(f"grid tolerance must be in [0, 1), got {tol}")
    v = np.round(np.arange(1.0, max_value + step / 2, step), 6)
    a, b, g = np.meshgrid(v, v, v, indexing="ij")
    flops = a * b ** 2 * g ** 2
    ok = np.abs(flops - 2) <= 2 * tol + 1e-9
    out = sorted(zip(a[ok].tolist(), b[ok].tolist(), g[ok].tolist()), key=lambda t: (abs(t[0] * t[1] ** 2 * t[2] ** 2 - 2), t))
    if not out:
        raise DseError(f"the alpha/beta/gamma grid is empty (step {step}, tolerance {tol}): widen the tolerance")
    return out
