"""Constraint discovery on an existing sweep (Radosavovic et al. 2020, Sec. 3): which subsets of the samples are better.

A candidate constraint is a row filter. It is tested per space (never pooling spaces: a space seen in several runs
is one group per `run/space`) on that space's finished rows (its whole set) without new training: the subset it
keeps is compared with the whole set by n, fraction, mean and best of the metric, their shifts, and the two-sample
KS statistic and p-value (dse.analysis.edf.ks). The built-in candidates read the per-stage columns of the sampled
configuration (b1..bk, g1..gk, w1..wk, d1..dk, numbered from 1, so RegNet's w0 is not one of them) and the
per-block widths (for e_fit). A candidate whose columns no row of the space has (b1..b4 in a RegNet space) is left
out; a row lacking them does not pass it; a candidate that keeps no row is reported with n = 0 and NaN statistics,
ranked last within its space.

The cumulative path A -> B -> C -> D -> E (refine_path) retraces AnyNetX_A to _E inside each AnyNet space. Each step
keeps fewer rows (shared b and shared g together keep about 1/27 * 1/216 of AnyNetX_A's samples), so where a step
leaves fewer than min_n rows the path stops there and says to sample that space itself instead.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dse.analysis.edf import ks
from dse.analysis.fit import fit
from dse.analysis.table import ascending, block_widths, by_run_and_space, finished, stage_columns
from dse.errors import DseError

E_FIT = (0.05, 0.1, 0.2)
COLUMNS = ["constraint", "n", "frac", "mean", "best", "d_mean", "d_best", "ks", "p"]
MIN_N = 10  # a subset of fewer models is "too few": its shifts are not a finding (one model was once "above noise")
TOO_FEW = "too few"


def stage_values(df: pd.DataFrame, p: str) -> np.ndarray:
    """The per-stage columns p1..pk of df as a float array (rows x k, NaN where missing); k = 0 when absent."""
    cols = stage_columns(df, p)
    if not cols:
        return np.empty((len(df), 0))
    return df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def shared(v: np.ndarray) -> np.ndarray:
    """Rows whose stage values (NaN ignored, at least one present) are all equal."""
    ok = np.isfinite(v)
    lo = np.where(ok, v, np.inf).min(axis=1, initial=np.inf)
    hi = np.where(ok, v, -np.inf).max(axis=1, initial=-np.inf)
    return ok.any(axis=1) & (lo == hi)


def nondecreasing(v: np.ndarray) -> np.ndarray:
    """Rows whose stage values (NaN ignored, at least one present) never decrease from stage i to i+1."""
    out = np.zeros(len(v), dtype=bool)
    for i, row in enumerate(v):
        x = row[np.isfinite(row)]
        out[i] = x.size > 0 and bool(np.all(np.diff(x) >= 0))
    return out


def row_e_fit(df: pd.DataFrame, q: int = 8, progress=None) -> np.ndarray:
    """e_fit of each row's per-block widths (NaN for a row without widths); progress(i) after each row."""
    out = np.full(len(df), np.nan)
    for i, r in enumerate(df.to_dict("records")):
        if progress is not None:
            progress(i)
        try:
            ws = block_widths(r)
        except DseError:
            continue
        try:
            out[i] = fit(ws, q).e_fit
        except DseError as e:
            raise DseError(f"model {r.get('id', '?')}: {e}") from None
    return out


def _stats(name: str, m: np.ndarray, keep: np.ndarray, asc: bool) -> dict:
    """One candidate's row: the subset's statistics and shifts against the whole set m."""
    s = m[keep]
    top = np.min if asc else np.max
    if s.size == 0:
        return {"constraint": name, "n": 0, "frac": 0.0, **dict.fromkeys(COLUMNS[3:], math.nan)}
    stat, p = ks(s, m)
    return {"constraint": name, "n": int(s.size), "frac": s.size / m.size, "mean": float(s.mean()),
            "best": float(top(s)), "d_mean": float(s.mean() - m.mean()), "d_best": float(top(s) - top(m)),
            "ks": stat, "p": p}


def _rank(out: pd.DataFrame, asc: bool) -> pd.DataFrame:
    """Best improvement of the mean first (lowest d_mean for errors, highest for rewards), NaN last, stable."""
    return out.sort_values("d_mean", ascending=asc, kind="stable", na_position="last").reset_index(drop=True)


def candidates(t: pd.DataFrame, e_fit=None, predicates=None, q: int = 8, progress=None) -> dict[str, np.ndarray]:
    """The candidate masks over the rows of t, in order: shared b, g; w, d nondecreasing; e_fit < t; the user's.

    A built-in candidate applies when some row of t has its columns (per-stage values, or widths for e_fit); the
    ones that do not apply (b, g, w, d stages for RegNet rows) are left out."""
    v = {p: stage_values(t, p) for p in "bgwd"}
    has = {p: bool(np.isfinite(x).any()) for p, x in v.items()}
    out = {k: f(v[p]) for k, p, f in (("shared b", "b", shared), ("shared g", "g", shared),
                                      ("w_{i+1} >= w_i", "w", nondecreasing), ("d_{i+1} >= d_i", "d", nondecreasing))
           if has[p]}
    ts = E_FIT if e_fit is None else tuple(e_fit)
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in ts):
        raise DseError(f"e_fit thresholds must be positive numbers, got {list(ts)!r}")
    if ts:
        e = row_e_fit(t, q, progress)
        if np.isfinite(e).any():
            with np.errstate(invalid="ignore"):
                out.update({f"e_fit < {x:g}": e < x for x in ts})
    for name, fn in (predicates or {}).items():
        if name in out:
            raise DseError(f"predicate {name!r}: the name of a built-in candidate")
        keep = []
        for r in t.to_dict("records"):
            try:
                keep.append(bool(fn(r)))
            except Exception as ex:  # a user function: report which one and where, on one line
                raise DseError(f"predicate {name!r} failed on row {r.get('id', '?')!r}: "
                               f"{type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}") from None
        out[name] = np.array(keep, dtype=bool)
    return out


def _per_space(df: pd.DataFrame, metric: str, by: str | None):
    """(space label, its finished rows) for each space in label order; one group 'all' for by=None or no column."""
    t = finished(by_run_and_space(df) if by == "space" else df, metric)
    if by is None or by not in t.columns:
        if by not in (None, "space"):
            raise DseError(f"unknown column {by!r}: the table has {', '.join(map(str, df.columns))}")
        return [("all", t)]
    return [(str(k), g) for k, g in t.groupby(t[by].astype(str), sort=True)]


def refine(df: pd.DataFrame, metric: str = "error", e_fit=None, predicates=None, q: int = 8,
           by: str | None = "space", min_n: int = MIN_N, progress=None) -> pd.DataFrame:
    """Per space, each candidate constraint on its finished rows: space, constraint, n, frac, mean, best, d_mean,
    d_best, ks, p, note; spaces in label order, best d_mean first within a space (no rows for a space where no
    candidate applies). note is "too few" for a subset of fewer than min_n models: its shifts describe those models,
    not the constraint. progress(done, total) is called as the rows' e_fit are computed (the slow part).

    best is the min of the metric (the max for rewards and accuracies); d_ are subset minus the space's whole set.
    e_fit: the thresholds t of the candidates "e_fit < t" (default 0.05, 0.1, 0.2; () for none). predicates:
    {name: fn(row) -> bool} with row a dict of one result row. Candidates that do not apply are kept with n = 0 (see
    the module doc). by: the column that names the spaces; None treats the whole table as one set.
    """
    if not (isinstance(min_n, (int, np.integer)) and min_n >= 1):
        raise DseError(f"min_n must be a positive integer, got {min_n!r}")
    asc, parts = ascending(metric), []
    groups = _per_space(df, metric, by)
    total, done = sum(len(t) for _, t in groups), 0
    for space, t in groups:
        m = t[metric].to_numpy(dtype=float)
        tick = (lambda i, d=done: progress(d + i + 1, total)) if progress is not None else None
        rows = [_stats(k, m, v, asc) for k, v in candidates(t, e_fit, predicates, q, tick).items()]
        done += len(t)
        out = _rank(pd.DataFrame(rows, columns=COLUMNS), asc).assign(space=space)
        out["note"] = np.where(out["n"] < min_n, TOO_FEW, "")
        parts.append(out[["space"] + COLUMNS + ["note"]])
    return pd.concat(parts, ignore_index=True)


PATH = (("A", "all"), ("B", "shared b"), ("C", "shared g"), ("D", "w_{i+1} >= w_i"), ("E", "d_{i+1} >= d_i"))


def refine_path(df: pd.DataFrame, metric: str = "error", min_n: int = MIN_N, by: str | None = "space") -> pd.DataFrame:
    """Per AnyNet space, the cumulative path A -> B -> C -> D -> E: each step adds one constraint to the previous.

    Columns: space, step, constraint (the one added), the statistics of refine() for the rows kept so far against
    the space's whole set A, and note. The path stops at the first step that keeps fewer than min_n rows: that step
    is not computed, and the last row's note says so ("sample anynetx_c itself: filtering leaves 3 of 300"). Spaces
    without per-stage b, g, w, d columns (RegNet, EfficientNet) have no path; DseError when no space has one.
    """
    if not (isinstance(min_n, (int, np.integer)) and min_n >= 1):
        raise DseError(f"min_n must be a positive integer, got {min_n!r}")
    asc, rows = ascending(metric), []
    for space, t in _per_space(df, metric, by):
        masks = candidates(t, e_fit=())
        if not all(name in masks for _, name in PATH[1:]):
            continue
        m = t[metric].to_numpy(dtype=float)
        keep, done = np.ones(len(t), dtype=bool), []
        for step, name in PATH:
            keep = keep & masks.get(name, True)
            n = int(keep.sum())
            if step != "A" and n < min_n:
                done[-1]["note"] = (f"stops before {step} ({name}): sample anynetx_{step.lower()} itself: filtering "
                                    f"leaves {n} of {len(t)} (fewer than {min_n})")
                break
            done.append({"space": space, "step": step, **_stats(name, m, keep, asc), "note": ""})
        rows += done
    if not rows:
        raise DseError("no AnyNet space in the table: the A -> E path needs per-stage b, g, w, d columns")
    return pd.DataFrame(rows, columns=["space", "step"] + COLUMNS + ["note"])


def path_notes(path: pd.DataFrame) -> list[str]:
    """The stopping notes of a refine_path table, one line per space that stopped: 'space: note'."""
    return [f"{r.space}: {r.note}" for r in path.itertuples() if r.note]
