"""Progressive learning's speed claim read from a table of arms (EfficientNetV2, Sec. 4.2): how long does an arm
whose image size grows (rows whose `schedule` changes `res`) take to reach the error the fixed-size arm (the first
arm whose size does not change) ends with, and how long does it train in all? Paired by model and seed: per unit,
time ratio = the arm's time / the fixed arm's total time, from the rows' per-epoch `train_times` (training steps
only: the paper's quantity; each epoch's validation at the full size is the same in every arm and is left out), or
`epoch_times` (validation included) for rows made before dse recorded them; the lines say which. They give the
median ratio with a percentile bootstrap interval of the median over units, and how many units reached the fixed
error at all."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dse.analysis.compare import MIN_N
from dse.analysis.table import seed_rows


def _key(t: pd.DataFrame) -> pd.Index:
    rep = pd.to_numeric(t["repeat"], errors="coerce").fillna(0).astype(int) if "repeat" in t.columns else 0
    return pd.MultiIndex.from_arrays([t["id"].astype(str), rep])


def _has_schedule(v) -> bool:
    return isinstance(v, list) and len(v) > 0


def _grows(v) -> bool:
    """A schedule whose image size changes over training."""
    return _has_schedule(v) and len({e.get("res") for e in v if isinstance(e, dict)}) > 1


def median_ci(x, n_boot: int = 2000, seed=0) -> tuple[float, float, float]:
    """(median, 95% percentile-bootstrap interval of the median) of x."""
    x = np.asarray(x, dtype=float)
    if not x.size:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    m = np.median(x[rng.integers(0, x.size, (n_boot, x.size))], axis=1)
    lo, hi = np.quantile(m, [0.025, 0.975])
    return float(np.median(x)), float(lo), float(hi)


def _clock(t: pd.DataFrame) -> str:
    """The column of per-epoch times to use: train_times where every row has them, else epoch_times."""
    ok = "train_times" in t.columns and t["train_times"].map(
        lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(x, (int, float)) for x in v)).all()
    return "train_times" if ok else "epoch_times"


def times(df: pd.DataFrame, arm: str, ref: str) -> pd.DataFrame:
    """Per unit (model, seed) trained in both arms: the fixed arm's final error and total time, the arm's time to
    reach that error (NaN when it never does) and its total time."""
    t = seed_rows(df)
    t = t[t["arm"].notna()]
    a, f = t[t["arm"].astype(str) == arm], t[t["arm"].astype(str) == ref]
    a, f = a.set_axis(_key(a)), f.set_axis(_key(f))
    shared = a.index.intersection(f.index)
    col = _clock(pd.concat([a.loc[shared], f.loc[shared]]))
    rows = []
    for k in shared:
        ra, rf = a.loc[k], f.loc[k]
        target = float(rf["error"])
        ta = np.cumsum(np.asarray(ra[col], dtype=float))
        hit = np.nonzero(np.asarray(ra["errors"], dtype=float) <= target)[0]
        rows.append({"id": k[0], "repeat": k[1], "target": target, "fixed_time": float(np.sum(rf[col])),
                     "time_to_target": float(ta[hit[0]]) if hit.size else math.nan, "total_time": float(ta[-1])})
    return pd.DataFrame(rows).assign(clock=col) if rows else pd.DataFrame(rows)


def lines(df: pd.DataFrame, noise: float = math.nan, min_n: int = MIN_N, seed: int = 0) -> list[str]:
    """One line per arm whose image size grows, against the first arm whose size does not (the fixed-size arm):
    n paired runs, the intervals, and the run's noise floor (how far the fixed error it must reach moves by seed)."""
    t = df[df["arm"].notna()]
    arms = list(dict.fromkeys(t["arm"].astype(str)))
    sched = {a for a in arms if t[t["arm"].astype(str) == a]["schedule"].map(_grows).any()}
    fixed = [a for a in arms if a not in sched]
    if not sched or not fixed:
        return []
    ref, out = fixed[0], []
    floor = f"noise floor {noise:.2g} points" if np.isfinite(noise) else "noise floor not measured"
    for arm in (a for a in arms if a in sched):
        tm = times(df, arm, ref)
        if tm.empty:
            continue
        n = len(tm)
        reached = tm["time_to_target"].notna()
        r_to = (tm["time_to_target"] / tm["fixed_time"])[reached]
        m, lo, hi = median_ci(r_to, seed=[seed, 1])
        mt, lt, ht = median_ci(tm["total_time"] / tm["fixed_time"], seed=[seed, 2])
        small = f"; too small for conclusions (fewer than {min_n} pairs)" if n < min_n else ""
        to = (f"time to it {m:.2f}x the {ref} arm's training [{lo:.2f}, {hi:.2f}] (median ratio)" if reached.any()
              else "never")
        clock = "training steps only" if tm["clock"].iloc[0] == "train_times" else "validation included"
        out.append(f"{arm} vs {ref}: reached {ref}'s final error in {int(reached.sum())} of {n} paired runs, {to}; "
                   f"total time {mt:.2f}x [{lt:.2f}, {ht:.2f}] ({clock}); {floor}{small}")
    return out
