"""The noise floor a run measured: how much a model's metric moves with the training seed, against the spread of
the metric across models.

Rows with the same model (`id`, within one run and space) and a different `repeat` (and training `seed`) are one
model trained several times. From them:
  - per model: the sample standard deviation (ddof=1) of the metric over all its finished seeds, primary included
    (models with fewer than 2 finished seeds have none);
  - noise: the median of those per-model standard deviations (dse.analysis.table.median), in the metric's units;
  - spread: the inter-quartile range (q75 - q25, numpy's linear quantiles) of the primary metric across all models
    (the EDF rows: one per model), pooled over spaces, and per space;
  - ratio: noise / spread. A ratio of 0.1 means the seed moves a model by a tenth of the range that separates models.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from dse.analysis.table import finished, median, model_keys, primary_mask, seed_rows
from dse.errors import DseError

NO_REPEATS = "no noise repeats in this run: add `noise: {models: 8, seeds: 3}` to the experiment"
MODEL_COLUMNS = ["space", "id", "seeds", "mean", "std", "min", "max", "primary"]


@dataclass(frozen=True)
class Noise:
    """The noise figures of a results table (see the module doc); NaN noise and ratio when nothing was repeated."""

    metric: str
    noise: float          # median per-model seed std
    spread: float         # IQR of the primary metric across models, all spaces pooled
    ratio: float          # noise / spread
    n_models: int         # models with at least 2 finished seeds
    seeds_min: int        # finished seeds per repeated model (primary included): fewest and most
    seeds_max: int
    by_space: tuple = ()  # one dict per space: space, n (models), n_repeated, noise, spread, ratio

    @property
    def measured(self) -> bool:
        return self.n_models > 0

    def seeds(self) -> str:
        """'3', or '2-3' when some repeats failed."""
        return f"{self.seeds_min}" if self.seeds_min == self.seeds_max else f"{self.seeds_min}-{self.seeds_max}"

    def to_dict(self) -> dict:
        """Plain JSON-ready values (NaN as None)."""
        clean = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
        d = asdict(self)
        d["by_space"] = [{k: clean(v) for k, v in r.items()} for r in self.by_space]
        return {k: clean(v) for k, v in d.items()} | {"note": None if self.measured else NO_REPEATS}

    def line(self) -> str:
        """One terminal line: the noise floor, or how to measure it."""
        if not self.measured:
            return f"noise floor: not measured ({NO_REPEATS})"
        u = units(self.metric)
        return (f"noise floor: median seed std {self.noise:.2f}{u} over {self.n_models} models x {self.seeds()} seeds; "
                f"spread of models (IQR) {self.spread:.2f}{u}; ratio {self.ratio:.2f}")


def units(metric: str) -> str:
    """' points' for percentages (errors, accuracies), '' for other metrics."""
    return " points" if ("error" in metric or "acc" in metric or metric == "top1") else ""


def iqr(values) -> float:
    """q75 - q25 of the finite values (numpy's linear quantiles); NaN if none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.subtract(*np.quantile(v, [0.75, 0.25]))) if v.size else math.nan


def per_model(df: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """One row per model trained with at least 2 finished seeds: space, id, seeds, mean, std (ddof=1), min, max, and
    its primary (repeat 0) value (NaN when the primary failed). Stacked runs keep a `run` column. Empty when none."""
    t = seed_rows(df, metric)
    t = t if "space" in t.columns else t.assign(space="all")
    keys = model_keys(t)
    cols = (["run"] if "run" in keys else []) + MODEL_COLUMNS
    if t.empty:
        return pd.DataFrame(columns=cols)
    t = t.assign(_m=pd.to_numeric(t[metric], errors="coerce").astype(float), _p=primary_mask(t))
    g = t.groupby(keys, sort=True)
    out = pd.DataFrame({"seeds": g.size(), "mean": g["_m"].mean(), "std": g["_m"].std(ddof=1), "min": g["_m"].min(),
                        "max": g["_m"].max(),
                        "primary": t["_m"].where(t["_p"]).groupby([t[k] for k in keys], sort=True).first()})
    out = out[out["seeds"] >= 2].reset_index()
    return out[cols].reset_index(drop=True)


def noise(df: pd.DataFrame, metric: str = "error") -> Noise:
    """The noise floor of a results table (see the module doc). A table without repeats gives n_models 0, NaN noise."""
    prim = finished(df, metric)
    pm = per_model(df, metric)
    v = pd.to_numeric(prim[metric], errors="coerce").to_numpy(dtype=float)
    spread = iqr(v)
    nz = median(pm["std"]) if len(pm) else math.nan
    spaces = prim["space"].astype(str) if "space" in prim.columns else pd.Series("all", index=prim.index)
    by = []
    for s in sorted(spaces.unique()):
        ps = pm[pm["space"].astype(str) == s] if len(pm) else pm
        sp, ns = iqr(v[(spaces == s).to_numpy()]), (median(ps["std"]) if len(ps) else math.nan)
        by.append({"space": s, "n": int((spaces == s).sum()), "n_repeated": int(len(ps)), "noise": ns, "spread": sp,
                   "ratio": _ratio(ns, sp)})
    seeds = pm["seeds"].to_numpy(dtype=int) if len(pm) else np.zeros(1, dtype=int)
    return Noise(metric=metric, noise=nz, spread=spread, ratio=_ratio(nz, spread), n_models=int(len(pm)),
                 seeds_min=int(seeds.min()), seeds_max=int(seeds.max()), by_space=tuple(by))


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when either is NaN or b is 0."""
    return a / b if np.isfinite(a) and np.isfinite(b) and b > 0 else math.nan


def by_space_table(nz: Noise) -> pd.DataFrame:
    """The per-space noise figures as a DataFrame."""
    if not nz.by_space:
        raise DseError("no spaces in the noise figures")
    return pd.DataFrame(list(nz.by_space))
