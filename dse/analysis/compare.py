"""Verdicts: is one design space (or run) better than another, by how much, and how sure are we?

For every pair of groups (a, b) (spaces, `run/space` when stacked runs repeat a space, or runs) on the finished rows
(one per model, dse.analysis.table.finished):
  - n_a, n_b: models per side;
  - delta_mean = mean(a) - mean(b) in the metric's units (points of error), with a 95% bootstrap interval
    [ci_low, ci_high]: both samples resampled independently n_boot times (seeded, vectorised), the percentile
    interval of the resampled differences (bootstrap_ci);
  - d_q10, d_q25, d_q50: a - b at the EDF quantiles 0.1, 0.25, 0.5 of the metric (numpy's linear quantiles; for an
    error, q10 is the good end; for a reward it is the bad end, as in the EDF figure);
  - ks, ks_p: the two-sample Kolmogorov-Smirnov statistic and p-value (scipy);
  - verdict: one plain line.

The decision rule, in order:
  1. too small: fewer than min_n (MIN_N = 10) models on either side. Small samples make the percentile interval
     too narrow (on normal samples it covers the true difference about 86% of the time at 4 per side, 94% at 10) and
     one unlucky model moves a mean by a tenth of the spread or more, so the line says "too small for conclusions"
     whatever the interval shows.
  2. no difference (in the mean) detected: the interval contains 0. The line adds how many models per side a
     standard two-sample power calculation says would detect a given shift (n_needed: 80% power, two-sided alpha
     0.05, the pooled std of the two groups measured in this run; by default a 2-point shift for percentages, half a
     pooled std otherwise), and, with enough models and an observed mean shift larger than that, the n that would
     detect a shift of the observed size. When the KS test still finds the EDFs different (p < KS_ALPHA), the line
     says so and names the group that is better at the q25 and q50 quantiles (the paper's reading of EDFs).
  3. better: the interval excludes 0; the better side follows the metric's direction (lower error, higher reward).
     When the noise floor was measured (the median per-model seed std, dse.analysis.noise) and |delta_mean| is below
     it, the line says the difference is smaller than the noise floor and is not a conclusion.
The numbers in a "better" line are the better group minus the other (negative for errors, positive for rewards).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from dse.analysis.edf import ks
from dse.analysis.noise import Noise, noise as measure_noise, units
from dse.analysis.table import ascending, by_run_and_space, finished
from dse.errors import DseError

MIN_N = 10
KS_ALPHA = 0.05  # a "no difference in the mean" line names EDFs that differ at this KS level
SHIFT = 2.0  # points: the shift the power line speaks of, for percentage metrics
QUANTILES = (0.1, 0.25, 0.5)
COLUMNS = ["a", "b", "n_a", "n_b", "delta_mean", "ci_low", "ci_high", "d_q10", "d_q25", "d_q50", "ks", "ks_p",
           "verdict"]


def bootstrap_ci(a, b, n_boot: int = 2000, ci: float = 0.95, seed=0) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b): a and b resampled independently n_boot times, seeded."""
    a, b = (np.asarray(x, dtype=float) for x in (a, b))
    if a.size == 0 or b.size == 0:
        raise DseError("bootstrap_ci needs a value on each side")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1) or not 0 < ci < 1:
        raise DseError(f"n_boot must be a positive integer and 0 < ci < 1: got n_boot={n_boot!r}, ci={ci!r}")
    rng = np.random.default_rng(seed)
    d = (a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1)
         - b[rng.integers(0, b.size, (n_boot, b.size))].mean(axis=1))
    lo, hi = np.quantile(d, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def n_needed(sd: float, shift: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Models per group to detect a mean shift with a two-sided two-sample test: 2 ((z_{1-alpha/2} + z_power) sd /
    shift)^2 rounded up (normal approximation); NaN when sd or shift is unknown or not positive."""
    if not (np.isfinite(sd) and np.isfinite(shift) and sd > 0 and shift > 0):
        return math.nan
    return float(math.ceil(2 * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd / shift) ** 2))


def pooled_std(a, b) -> float:
    """The pooled standard deviation of two samples (ddof 1 each); NaN below 3 values in all."""
    a, b = (np.asarray(x, dtype=float) for x in (a, b))
    dof = a.size + b.size - 2
    if dof <= 0:
        return math.nan
    ss = (a.size - 1) * (a.var(ddof=1) if a.size > 1 else 0.0) + (b.size - 1) * (b.var(ddof=1) if b.size > 1 else 0.0)
    return float(math.sqrt(ss / dof))


def groups(df: pd.DataFrame, by: str = "space", metric: str = "error") -> dict[str, np.ndarray]:
    """{label: finished metric values} per group, sorted by label; spaces seen in several runs become `run/space`."""
    if by == "run" and "run" not in df.columns:
        raise DseError("--by run needs several runs (name two or more sweep folders or results files)")
    if by not in df.columns:
        raise DseError(f"unknown column {by!r}: the table has {', '.join(map(str, df.columns))}")
    t = finished(by_run_and_space(df) if by == "space" else df, metric)
    v = pd.to_numeric(t[metric], errors="coerce").astype(float)
    return {str(k): g.to_numpy() for k, g in v.groupby(t[by].astype(str), sort=True)}


def _num(x: float, metric: str) -> str:
    """A signed number for a verdict: one decimal for percentages (two significant digits when that would show
    +/-0.0, so an interval end keeps its sign), 3 significant digits otherwise."""
    if not units(metric):
        return f"{x:+.3g}"
    return f"{x:+.2g}" if x != 0 and round(x, 1) == 0 else f"{x:+.1f}"


def _p(p: float) -> str:
    return f"{p:.2g}"


def verdict(a: str, b: str, n_a: int, n_b: int, delta: float, lo: float, hi: float, ks_p: float, *, metric: str,
            floor: float = math.nan, n_req: float = math.nan, shift: float = SHIFT, min_n: int = MIN_N,
            per: str = "space", dq: tuple = (), n_obs: float = math.nan) -> str:
    """The plain line of one comparison by the rule of the module doc (delta = a - b, [lo, hi] its interval;
    dq: a - b at the EDF quantiles q25 and q50; n_obs: the n per side that would detect |delta| itself)."""
    u, f = units(metric), (lambda x: _num(x, metric))
    shift_txt = f"a {shift:g}-point shift" if u else f"a shift of {shift:.3g} (half a pooled std)"
    power = (f"about {int(n_req)} per {per} would detect {shift_txt}" if np.isfinite(n_req)
             else f"the spread is unknown (every error is equal, or too few), so the n that would detect "
                  f"{shift_txt} is unknown too")
    power_obs = power
    if np.isfinite(n_obs) and np.isfinite(n_req) and abs(delta) > shift:
        power_obs = (f"about {int(n_obs)} per {per} would detect a mean shift of this size "
                     f"({f(delta).lstrip('+-')}{u}), {int(n_req)} {shift_txt}")
    excludes = lo > 0 or hi < 0
    a_better = (delta < 0) == ascending(metric)
    win, lose, nw, nl = (a, b, n_a, n_b) if a_better else (b, a, n_b, n_a)
    dw, lw, hw = (delta, lo, hi) if a_better else (-delta, -hi, -lo)
    if min(n_a, n_b) < min_n:
        small = f"too small for conclusions (fewer than {min_n} per {per})"
        if not excludes:
            return (f"{a} vs {b}: no difference detected at n = {n_a}/{n_b}, {small}: mean {f(delta)}{u} "
                    f"[{f(lo)}, {f(hi)}], KS p = {_p(ks_p)}; {power}")
        return (f"{a} vs {b}: {small} at n = {n_a}/{n_b}, although {win} looks better: mean {f(dw)}{u} "
                f"[{f(lw)}, {f(hw)}], KS p = {_p(ks_p)}; {power}")
    if not excludes:
        edf = ""
        if ks_p < KS_ALPHA and len(dq) == 2:  # the means do not settle it, but the distributions differ
            low = b if (np.mean(dq) > 0) == ascending(metric) else a
            edf = (f"; the EDFs differ (KS p = {_p(ks_p)}): {low} is better at q25 and q50 by "
                   f"{abs(dq[0]):.1f} and {abs(dq[1]):.1f}{u}")
        return (f"{a} vs {b}: no difference in the mean detected at n = {n_a}/{n_b}: mean {f(delta)}{u} "
                f"[{f(lo)}, {f(hi)}]{edf or f', KS p = {_p(ks_p)}'}; {power_obs}")
    head = f"{win} is better than {lose}"
    tail = f"KS p = {_p(ks_p)}, n = {nw}/{nl}"
    if np.isfinite(floor) and abs(delta) < floor:
        return (f"{head} by less than the noise floor: mean {f(dw)}{u} [{f(lw)}, {f(hw)}] is within the median seed "
                f"std {floor:.2g}{u}, so it is not a conclusion; {tail}")
    floor_txt = f"noise floor {floor:.2g}{u}" if np.isfinite(floor) else "noise floor not measured"
    return f"{head}: mean {f(dw)}{u} [{f(lw)}, {f(hw)}], {tail}, {floor_txt}"


def compare(df: pd.DataFrame, by: str = "space", metric: str = "error", *, n_boot: int = 2000, ci: float = 0.95,
            seed: int = 0, noise: float | None = None, shift: float | None = None, min_n: int = MIN_N) -> pd.DataFrame:
    """One row per pair of groups (a before b in label order): COLUMNS (see the module doc). Empty for one group.

    noise: the noise floor in the metric's units (default: measured from the table's repeats, NaN without them).
    shift: the shift the power line speaks of (default 2 points for percentages, half the pair's pooled std else).
    """
    if not (isinstance(min_n, (int, np.integer)) and min_n >= 2):
        raise DseError(f"min_n must be an integer >= 2, got {min_n!r}")
    g = groups(df, by, metric)
    floor = measure_noise(df, metric).noise if noise is None else float(noise)
    names, rows = list(g), []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            x, y = g[a], g[b]
            d = float(x.mean() - y.mean())
            lo, hi = bootstrap_ci(x, y, n_boot, ci, seed=[seed, i, j])
            qa, qb = np.quantile(x, QUANTILES), np.quantile(y, QUANTILES)
            stat, p = ks(x, y)
            sd = pooled_std(x, y)
            sh = shift if shift is not None else (SHIFT if units(metric) else 0.5 * sd)
            dq = tuple(float(v) for v in (qa - qb)[1:3])
            line = verdict(a, b, x.size, y.size, d, lo, hi, p, metric=metric, floor=floor, n_req=n_needed(sd, sh),
                           shift=sh, min_n=min_n, per=by if by in ("space", "run") else "group", dq=dq,
                           n_obs=n_needed(sd, abs(d)))
            rows.append([a, b, int(x.size), int(y.size), d, lo, hi, *map(float, qa - qb), stat, p, line])
    return pd.DataFrame(rows, columns=COLUMNS)


def too_small(cmp: pd.DataFrame, min_n: int = MIN_N) -> bool:
    """True when any comparison has fewer than min_n models on a side (its verdict says: too small for conclusions)."""
    return bool(len(cmp)) and bool((cmp[["n_a", "n_b"]].min(axis=1) < min_n).any())


def format_verdicts(cmp: pd.DataFrame, nz: Noise, *, by: str = "space", min_n: int = MIN_N) -> list[str]:
    """The terminal lines: the noise floor, a too-small banner when it applies, then one verdict per pair."""
    out = [nz.line()]
    if cmp.empty:
        return out + [f"one {by} only: nothing to compare"]
    if too_small(cmp, min_n):
        n = int(cmp[["n_a", "n_b"]].to_numpy().min())
        out.append(f"TOO SMALL FOR CONCLUSIONS: {n} models on a side, the verdicts need at least {min_n} per side")
    return out + list(cmp["verdict"])


def verdict_lines(df: pd.DataFrame, by: str = "space", metric: str = "error", *, min_n: int = MIN_N,
                  **kw) -> list[str]:
    """The lines `dse run`, `dse compare` and the report print: noise floor, too-small banner, verdicts."""
    nz = measure_noise(df, metric)
    cmp = compare(df, by, metric, noise=nz.noise, min_n=min_n, **kw)
    return format_verdicts(cmp, nz, by=by, min_n=min_n)
