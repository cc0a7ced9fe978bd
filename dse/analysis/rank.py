"""Low-epoch validity: does a model's error after k epochs already rank the models as their final error does?"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dse.analysis.table import finished, spearman
from dse.errors import DseError


def _errors(v, rid) -> np.ndarray:
    """One row's per-epoch val errors as a float array (empty when missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return np.empty(0)
    try:
        return np.asarray(v, dtype=float).ravel()
    except (TypeError, ValueError):
        raise DseError(f"row {rid!r}: 'errors' must be a list of numbers") from None


def epoch_rank(df: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """Per space (and 'all' rows together) and epoch k: n, Spearman rho and p of the epoch-k val error vs the metric.

    Uses the finished rows and their `errors` list (epoch 1 first); a row with fewer epochs enters only the epochs it
    has, and a non-finite epoch error drops that row from that epoch. rho and p are NaN below 2 rows or on ties only;
    p is also NaN below 4 rows (dse.analysis.table.spearman).
    """
    t = finished(df, metric)
    if "errors" not in t.columns:
        raise DseError("no per-epoch errors: the results have no 'errors' column")
    final = t[metric].to_numpy(dtype=float)
    errs = [_errors(v, rid) for v, rid in zip(t["errors"], t["id"] if "id" in t.columns else range(len(t)))]
    spaces = t["space"].astype(str).to_numpy() if "space" in t.columns else np.full(len(t), "all")
    rows = []
    for name in [*sorted(set(spaces) - {"all"}), "all"]:
        idx = np.arange(len(t)) if name == "all" else np.flatnonzero(spaces == name)
        for k in range(max((errs[i].size for i in idx), default=0)):
            ix = [i for i in idx if errs[i].size > k and np.isfinite(errs[i][k])]
            x = np.array([errs[i][k] for i in ix])
            rho, p = spearman(x, final[ix])
            rows.append({"space": name, "epoch": k + 1, "n": len(ix), "rho": rho, "p": p})
    if not rows:
        raise DseError("no per-epoch errors: every finished row has an empty 'errors' list")
    return pd.DataFrame(rows, columns=["space", "epoch", "n", "rho", "p"])
