"""FixRes's claims read from a results table (Touvron et al. 2019): does testing at a larger size than the training
size lower the error, and does fine-tuning at that size lower it further? Every model was tested at every size, so
each comparison is paired over models: delta = error at size s - error at the training size r, per model; its mean
and the percentile bootstrap interval of that mean (dse.analysis.compare.paired_ci). The rows need `test_errors`
({size: error}, from trial.test_sizes) and, for fine-tuning, `tuned_errors` (from trial.finetune). Repeats (extra
seeds) are left out: one row per model and arm."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dse.analysis.compare import MIN_N, paired_ci
from dse.analysis.table import finished
from dse.errors import DseError


def _sizes(col: pd.Series) -> pd.DataFrame:
    """A column of {size: error} mappings as a frame with one integer column per size."""
    rows = [{int(k): float(v) for k, v in d.items()} if isinstance(d, dict) else {} for d in col]
    return pd.DataFrame(rows, index=col.index).sort_index(axis=1)


def arms_of(df: pd.DataFrame) -> list:
    """The arms whose rows were tested at several sizes ([None] for a table without arms)."""
    if "test_errors" not in df.columns:
        raise DseError("no test_errors in the table: train with trial.test_sizes (FixRes)")
    if "arm" not in df.columns or df["arm"].isna().all():
        return [None]
    t = df[df["test_errors"].map(lambda d: isinstance(d, dict) and len(d) > 0)]
    return list(dict.fromkeys(t["arm"].dropna().astype(str)))


def train_size(t: pd.DataFrame) -> int:
    """The training resolution of the rows (their train_res, else data.res)."""
    if "train_res" in t.columns and t["train_res"].notna().any():
        v = pd.to_numeric(t["train_res"], errors="coerce").dropna().unique()
    else:
        v = pd.Series([d.get("res") for d in t["data"] if isinstance(d, dict)]).dropna().unique()
    if len(v) != 1:
        raise DseError(f"the rows were trained at {len(v)} sizes ({', '.join(map(str, v))}): FixRes compares one")
    return int(v[0])


def _stats(d: pd.Series, size: int, seed, mean_error: float = math.nan) -> dict:
    """{size, n, mean_error, delta, ci_low, ci_high} of paired differences d (NaNs left out)."""
    d = d.dropna().to_numpy(dtype=float)
    lo, hi = paired_ci(d, seed=seed) if d.size else (math.nan, math.nan)
    return {"size": int(size), "n": int(d.size), "mean_error": mean_error,
            "delta": float(d.mean()) if d.size else math.nan, "ci_low": lo, "ci_high": hi}


def _delta(x: pd.Series, base: pd.Series, size: int, seed) -> dict:
    """Paired x - base over the models that have both."""
    ok = x.notna() & base.notna()
    return _stats(x[ok] - base[ok], size, seed, float(x[ok].mean()) if ok.any() else math.nan)


def summary(df: pd.DataFrame, arm: str | None = None, seed: int = 0) -> dict:
    """{"arm", "train_size", "sizes": [{size, n, mean_error, delta, ci_low, ci_high}], "finetune": {the same keys
    for the size where fine-tuning gives the lowest mean error} or None}. delta at a size is the paired mean of
    (error at size - error at the training size r); finetune's delta is (error after fine-tuning at its size - error
    at r without it), FixRes's headline comparison. "adapted" (None when fine-tuning is best at r itself) has the
    same keys: (error after fine-tuning at finetune's size - error after fine-tuning at r), the test size's gain once
    both are adapted, which fine-tuning's own gain (an extra epoch at a low rate) cannot explain. "tuned" lists,
    per size, finetune's comparison at that size."""
    if "test_errors" not in df.columns:
        raise DseError("no test_errors in the table: train with trial.test_sizes (FixRes)")
    t = finished(df)
    if arm is not None:
        t = t[t["arm"].astype(str) == arm]
    t = t[t["test_errors"].map(lambda d: isinstance(d, dict) and len(d) > 0)] if len(t) else t
    if t.empty:
        raise DseError(f"no finished rows with test_errors{f' in arm {arm!r}' if arm else ''}")
    r = train_size(t)
    te = _sizes(t["test_errors"])
    base = te[r] if r in te.columns else pd.to_numeric(t["error"], errors="coerce")
    sizes = [_delta(te[s], base, s, [seed, s]) for s in te.columns]
    out = {"arm": arm, "train_size": r, "sizes": sizes, "finetune": None, "adapted": None, "tuned": []}
    if "tuned_errors" in t.columns and t["tuned_errors"].map(lambda d: isinstance(d, dict) and len(d) > 0).any():
        tu = _sizes(t["tuned_errors"])
        best = int(tu.mean().idxmin())
        out["tuned"] = [_delta(tu[c], base, c, [seed, c, 1]) for c in tu.columns]
        out["finetune"] = _delta(tu[best], base, best, [seed, best, 1])
        if best != r and r in tu.columns:  # both fine-tuned: the size's own effect, without fine-tuning's gain
            out["adapted"] = _delta(tu[best], tu[r], best, [seed, best, 3])
    return out


def _by_model(df: pd.DataFrame, arm: str | None) -> tuple[int, pd.DataFrame]:
    """(training size, per-model frame of test_errors by size) of one arm's finished primary rows."""
    t = finished(df)
    t = t[t["arm"].astype(str) == arm] if arm is not None else t
    t = t[t["test_errors"].map(lambda d: isinstance(d, dict) and len(d) > 0)]
    return train_size(t), _sizes(t["test_errors"]).set_axis(t["id"].astype(str).to_numpy())


def control(df: pd.DataFrame, arm: str, other: str, seed: int = 0) -> dict | None:
    """FixRes's control: at arm's best test size s, the paired difference in differences over the models both arms
    trained, (arm's error at s - at r) - (other's error at s - at r): negative when training as `arm` makes a larger
    test size help more (or hurt less). None when the arms share no model or size."""
    ra, a = _by_model(df, arm)
    rb, b = _by_model(df, other)
    ids = a.index.intersection(b.index)
    sizes = [c for c in a.columns if c in b.columns and c != ra]
    if ra != rb or not len(ids) or not sizes or ra not in a.columns or ra not in b.columns:
        return None
    a, b = a.loc[ids], b.loc[ids]
    best = min(sizes, key=lambda c: (a[c] - a[ra]).mean())
    out = _stats((a[best] - a[ra]) - (b[best] - b[ra]), best, [seed, best, 2])
    return {**out, "arm": arm, "other": other, "train_size": ra}


def _fmt(d: dict) -> str:
    return f"{d['delta']:+.1f} points [{d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"


def lines(df: pd.DataFrame, noise: float = math.nan, min_n: int = MIN_N, seed: int = 0) -> list[str]:
    """The verdict lines of every arm tested at several sizes: the best test size against the training size r, and
    fine-tuning at its best size against r without it; n models, the interval and the run's noise floor."""
    floor = f"noise floor {noise:.2g} points" if np.isfinite(noise) else "noise floor not measured"
    out = []
    for arm in arms_of(df):
        s = summary(df, arm, seed)
        who = f"{arm}: " if arm else ""
        r = s["train_size"]
        others = [x for x in s["sizes"] if x["size"] != r and x["n"]]
        if not others:
            out.append(f"{who}FixRes: no test size other than the training size {r} px")
            continue
        best = min(others, key=lambda x: x["delta"])
        k = f" (the best of {len(others)} sizes)" if len(others) > 1 else ""
        out.append(who + _line(best, r, "testing at", f"{best['size']} px{k}", floor, min_n))
        if s["finetune"]:
            ft = s["finetune"]
            k = len(s["sizes"])
            out.append(who + _line(ft, r, "fine-tuning the classifier and BN at", f"{ft['size']} px (the best of {k})",
                                   floor, min_n, against=f"testing at {r} px without it"))
        if s["adapted"]:
            ad = s["adapted"]
            out.append(who + _line(ad, r, "fine-tuned at both sizes, testing at", f"{ad['size']} px", floor, min_n))
    arms = arms_of(df)
    for other in arms[1:]:  # the first arm against each control (e.g. rrc against pad)
        c = control(df, arms[0], other, seed)
        if c is not None:
            out.append(_line(c, c["train_size"], f"{arms[0]} against {other}: the change from {c['train_size']} px to",
                             f"{c['size']} px", floor, min_n, against=f"{other}'s change"))
    return out


def _line(d: dict, r: int, what: str, at: str, floor: str, min_n: int, against: str | None = None) -> str:
    against = against or f"{r} px"
    n = f"n = {d['n']} models, {floor}"
    if d["n"] < min_n:
        return f"{what} {at} vs {against}: too small for conclusions (fewer than {min_n} models): {_fmt(d)}, {n}"
    if d["ci_high"] < 0:
        return f"{what} {at} beats {against}: {_fmt(d)}, {n}"
    if d["ci_low"] > 0:
        return f"{what} {at} is worse than {against}: {_fmt(d)}, {n}"
    return f"{what} {at} vs {against}: no difference detected: {_fmt(d)}, {n}"
