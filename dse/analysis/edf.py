"""Error EDFs of design spaces (Radosavovic et al. 2019): plain, complexity-normalised, bootstrapped, compared.

Inputs are a results frame (columns `error` in %, NaN when failed, optional `status`, plus a grouping column, default
`space`), a dict {group: errors}, or one array of errors. A row is finished when its error is finite and, if there
is a `status` column, status == "ok"; only finished rows enter an EDF. A frame's noise repeats (`repeat` > 0, the
extra-seed retrainings of a model) are left out: one row per model (dse.analysis.table.primary_mask).

Complexity normalisation bins log10(complexity) (flops or params span orders of magnitude in a design space, and the
2019 paper plots them on log axes) into equal-width bins over a common range and gives every non-empty bin the same
total weight, split equally between its models; models outside the range get weight 0.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from dse.analysis.table import median, primary_mask, single_networks
from dse.errors import DseError


def _table(data, by: str = "space", cols=("error",)) -> pd.DataFrame:
    """A frame with the columns by, cols and `ok` (finished) from a results frame, a dict of arrays or one array."""
    if isinstance(data, pd.DataFrame):
        missing = [c for c in (by, *cols) if c not in data.columns]
        if missing:
            raise DseError(f"unknown column {missing[0]!r}: the table has {list(data.columns)}")
        if not (by == "arm" and single_networks(data)):  # arms of one network each: their seeds are the units
            data = data[primary_mask(data)]
        t = data[[by, *cols] + (["status"] if "status" in data.columns else [])].copy()
    elif isinstance(data, Mapping):
        if set(cols) - {"error"}:
            raise DseError(f"unknown column {sorted(set(cols) - {'error'})[0]!r}: a dict of arrays only has errors")
        parts = [pd.DataFrame({by: k, "error": np.atleast_1d(np.asarray(v, dtype=float))}) for k, v in data.items()]
        t = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({by: [], "error": []})
    else:
        t = pd.DataFrame({by: "all", "error": np.atleast_1d(np.asarray(data, dtype=float))})
    if len(t) == 0:
        raise DseError("empty input: no result rows")
    t["error"] = pd.to_numeric(t["error"], errors="coerce")
    t["ok"] = np.isfinite(t["error"].to_numpy(dtype=float))
    t["stopped"] = False
    if "status" in t.columns:
        status = t.pop("status")
        t["ok"] &= status.eq("ok").to_numpy()
        t["stopped"] = status.eq("stopped").to_numpy()  # stopped early by a scheduler: not a failure
    if not t["ok"].any():
        raise DseError("no finished rows (status ok and a finite error)")
    return t


def _finite(errors, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Finite errors and their weights (uniform if None) normalised to sum 1."""
    e = np.atleast_1d(np.asarray(errors, dtype=float))
    if e.ndim != 1 or e.size == 0:
        raise DseError(f"errors must be a non-empty 1-D array: got shape {e.shape}")
    w = np.ones_like(e) if weights is None else np.atleast_1d(np.asarray(weights, dtype=float))
    if w.shape != e.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DseError(f"weights must be {e.size} finite non-negative numbers: got shape {w.shape}")
    ok = np.isfinite(e)
    if not ok.any():
        raise DseError("no finished rows (status ok and a finite error)")
    e, w = e[ok], w[ok]
    if w.sum() <= 0:
        raise DseError("weights of the finished rows sum to 0")
    return e, w / w.sum()


def _grid(e) -> np.ndarray:
    """The default grid: the sorted unique errors plus one point 1% of the range past the largest."""
    u = np.unique(np.asarray(e, dtype=float))
    span = u[-1] - u[0]
    return np.r_[u, u[-1] + (0.01 * span if span > 0 else 0.01 * max(abs(u[-1]), 1.0))]


def edf(errors, grid=None, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """(grid, F) with F(e) = sum_i w_i 1[e_i < e], w uniform 1/n by default; NaN errors are dropped."""
    e, w = _finite(errors, weights)
    grid = _grid(e) if grid is None else np.asarray(grid, dtype=float)
    o = np.argsort(e, kind="stable")
    cw = np.r_[0.0, np.cumsum(w[o])]
    return grid, cw[np.searchsorted(e[o], grid, side="left")] / cw[-1]


def _range(lo: float, hi: float) -> str:
    """A complexity range as people write it: 370.9M\u2013377.8M."""
    from dse.space.units import fmt

    return f"{fmt(lo)}\u2013{fmt(hi)}"


def common_range(groups) -> tuple[float, float]:
    """The intersection (max of minima, min of maxima) of the finite value ranges of several groups."""
    vals = [np.asarray(v, dtype=float) for v in (groups.values() if isinstance(groups, Mapping) else groups)]
    vals = [v[np.isfinite(v)] for v in vals]
    if not vals or any(v.size == 0 for v in vals):
        raise DseError("common_range needs groups that each have a finite value")
    lo, hi = max(v.min() for v in vals), min(v.max() for v in vals)
    if lo > hi:
        raise DseError(f"the complexity ranges do not overlap: {_range(lo, hi)} is empty")
    return float(lo), float(hi)


def normalized_weights(errors, complexity, bins: int = 10, range=None, log: bool = True) -> np.ndarray:
    """Weights making the complexity distribution uniform over `bins` (log10) bins of `range`; 0 outside it."""
    c = np.atleast_1d(np.asarray(complexity, dtype=float))
    ok = np.isfinite(c)
    if errors is not None:
        e = np.atleast_1d(np.asarray(errors, dtype=float))
        if e.shape != c.shape:
            raise DseError(f"errors and complexity differ in shape: {e.shape} vs {c.shape}")
        ok &= np.isfinite(e)
    if c.ndim != 1 or not ok.any():
        raise DseError("normalized_weights needs a 1-D complexity with at least one finished row")
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise DseError(f"bins must be a positive integer: got {bins!r}")
    if log and np.any(c[ok] <= 0):
        raise DseError("complexity must be positive for log bins")
    lo, hi = (c[ok].min(), c[ok].max()) if range is None else map(float, range)
    inr = ok & (c >= lo) & (c <= hi)
    if not inr.any():
        raise DseError(f"no finished models within the complexity range {_range(lo, hi)}")
    f = np.log10 if log else np.asarray
    edges = np.linspace(f(lo), f(hi), bins + 1)
    b = np.clip(np.searchsorted(edges, f(c[inr]), side="right") - 1, 0, bins - 1)
    n = np.bincount(b, minlength=bins)
    w = np.zeros(c.shape)
    w[inr] = 1.0 / (n[b] * np.count_nonzero(n))
    return w


def edf_band(errors, grid, weights=None, n_boot: int = 1000, ci: float = 0.95, seed: int = 0):
    """Pointwise bootstrap band (lo, hi) of the (weighted) EDF on grid: n_boot resamples of the rows, seeded."""
    e, w = _finite(errors, weights)
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1) or not 0 < ci < 1:
        raise DseError(f"n_boot must be a positive integer and 0 < ci < 1: got n_boot={n_boot!r}, ci={ci!r}")
    grid = np.asarray(grid, dtype=float)
    n, o = e.size, np.argsort(e, kind="stable")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    counts = np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n)  # times each row was drawn
    cw = np.concatenate([np.zeros((n_boot, 1)), np.cumsum(counts[:, o] * w[o], axis=1)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of only zero-weight rows has no EDF
        fb = cw[:, np.searchsorted(e[o], grid, side="left")] / cw[:, -1:]
    lo, hi = np.nanquantile(fb, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    return lo, hi


def ks(a, b) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (statistic, p-value) between two spaces' finite errors."""
    a, b = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        raise DseError("ks needs a finished row in each sample")
    r = ks_2samp(a, b)
    return float(r.statistic), float(r.pvalue)


def summary(data, by: str = "space") -> pd.DataFrame:
    """Per group: n, n_failed (n_stopped too when a scheduler stopped trials early) and min, mean, q05, q25, q50,
    q75, max of the finished errors (one row per model; for arms that each train one network, one row per seed:
    the units their verdicts compare).

    q50 is dse.analysis.table.median, the median `dse status` and the report print too."""
    t = _table(data, by)
    g = t[by]
    fin = t["error"].where(t["ok"]).groupby(g)
    counts = [t.groupby(by).size().rename("n"), (~t["ok"] & ~t["stopped"]).groupby(g).sum().rename("n_failed")]
    if t["stopped"].any():
        counts.append(t["stopped"].groupby(g).sum().rename("n_stopped"))
    out = pd.concat([*counts, fin.min().rename("min"), fin.mean().rename("mean")], axis=1)
    qs = fin.quantile([0.05, 0.25, 0.75]).unstack()
    qs.columns = ["q05", "q25", "q75"]
    qs.insert(2, "q50", fin.agg(median))
    return out.join(qs).assign(max=fin.max())


def edfs(df, by: str = "space", normalized: str | None = None, grid=None, n_boot: int = 0, bins: int = 10,
         ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Tidy EDFs per group on a common grid: columns group, e, F (and lo, hi when n_boot > 0)."""
    t = _table(df, by, ("error",) + ((normalized,) if normalized else ()))
    t = t[t["ok"]]
    grid = _grid(t["error"]) if grid is None else np.asarray(grid, dtype=float)
    groups = dict(tuple(t.groupby(by, sort=by != "arm")))  # arms keep the experiment's order (and colours)
    rng = common_range({k: g[normalized] for k, g in groups.items()}) if normalized else None
    parts = []
    for k, g in groups.items():
        try:
            w = normalized_weights(None, g[normalized], bins, rng) if normalized else None
        except DseError as e:
            raise DseError(f"{by} {k!r}: {e}") from None
        _, f = edf(g["error"], grid, w)
        part = {"group": k, "e": grid, "F": f}
        if n_boot:
            part["lo"], part["hi"] = edf_band(g["error"], grid, w, n_boot, ci, seed)
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)
