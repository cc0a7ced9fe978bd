"""Compound scaling's configurations: one route from alpha, beta, gamma, phi to a network (B0 of the compound space
scaled), for `dse scale apply`, `dse scale grid` and the grid plan; the rules themselves are dse.space.scaling."""
from __future__ import annotations

import dataclasses

from ..models.complexity import complexity
from .sampler import Sample, load

COMPOUND = "efficientnet_compound"


def compound(alpha: float, beta: float, gamma: float, phi: float, *, width: float = 1.0, depth: float = 1.0,
             res: int | None = None, dropout: float | None = None, space: str = COMPOUND) -> Sample:
    """B0 (the compound space's base) scaled by phi: depth x alpha**phi, width x beta**phi, resolution
    round(res * gamma**phi); `width`, `depth` and `res` set the base that is scaled (default: the space's)."""
    sp = load(space)
    spec = dict(sp.spec)
    if (width, depth) != (1.0, 1.0):
        spec["scale"] = {**spec.get("scale", {}), "width": width, "depth": depth}
    if res is not None:
        spec["res"] = int(res)
    if spec != sp.spec:
        sp = dataclasses.replace(sp, spec=spec)
    p = {"alpha": alpha, "beta": beta, "gamma": gamma, "phi": phi}
    if dropout is not None:
        p["dropout"] = dropout
    cfg = sp.make(p, check=False)  # any phi that dse.space.scaling.check_phi allows, not only the space's sampled range
    return Sample(cfg, complexity(cfg.net))


def compound_family(alpha: float, beta: float, gamma: float, phis=range(0, 8), base_res: int = 224):
    """The compound-scaled family for each phi: a DataFrame with multipliers, resolution, id and complexity."""
    import pandas as pd

    from .scaling import compound as multipliers

    rows = []
    for phi in phis:
        s = compound(alpha, beta, gamma, phi, res=base_res)
        d, w, _ = multipliers(alpha, beta, gamma, phi, base_res)
        rows.append({"phi": phi, "depth": round(d, 6), "width": round(w, 6), "res": s.config.net.res, "id": s.id,
                     "flops": s.cx.flops, "params": s.cx.params, "acts": s.cx.acts})
    return pd.DataFrame(rows)


def compound_grid(step: float = 0.05, tol: float = 0.05, max_value: float = 2.0, phi: float = 1, *,
                  width: float = 1.0, depth: float = 1.0, res: int = 224, dropout: float = 0.0,
                  space: str = COMPOUND) -> list[Sample]:
    """EfficientNet's step 1: one scaled base per (alpha, beta, gamma) of dse.space.scaling.grid, at phi; in grid order,
    one Sample per point (several points can build the same network: keep the first of an id)."""
    from .scaling import grid

    return [compound(a, b, c, phi, width=width, depth=depth, res=res, dropout=dropout, space=space)
            for a, b, c in grid(step, tol, max_value)]
