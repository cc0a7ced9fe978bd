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

Arms (a table with an `arm` column, from an experiment's `arms:`) are compared by arm, within their group (`x@g`
arms only with arms of group g): each arm's units are its finished trials, every seed included. When two arms trained
the same models with the same seeds (training variants of one population), they are compared paired: n is the number
of shared (model, seed) units, delta_mean the mean of the per-unit differences, its interval the percentile bootstrap
of that mean (units resampled, paired_ci). Arms of one network each (compound against single-dimension scaling:
its seeds are its units) are compared by Welch's t interval (welch_ci), which keeps its coverage at a few seeds when
the seed noise is roughly normal, where the percentile bootstrap does not; such a verdict needs MIN_SEEDS seeds per
arm, not MIN_N. Other unpaired arms: the bootstrap above. The noise floor of an arms experiment is the median seed
std of its (arm, model) groups.

Comparing runs (by="run") compares protocols as much as designs: when two runs' recipe, data or band differ (the
rows' context columns, key by key), the row's `differ` names those keys (recipe.lr, data.res, band.flops) and the
verdict is "not comparable", unless force=True, which gives the verdict and still names the keys.
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
MIN_SEEDS = 5  # seeds per arm for a verdict between two single networks (Welch's t interval)
KS_ALPHA = 0.05  # a "no difference in the mean" line names EDFs that differ at this KS level
SHIFT = 2.0  # points: the shift the power line speaks of, for percentage metrics
QUANTILES = (0.1, 0.25, 0.5)
CONTEXT = ("recipe", "data", "band")  # what must agree for two runs to be compared
COLUMNS = ["a", "b", "n_a", "n_b", "delta_mean", "ci_low", "ci_high", "d_q10", "d_q25", "d_q50", "ks", "ks_p",
           "verdict"]
ARM_COLUMNS = COLUMNS[:-1] + ["paired", "interval", "verdict"]


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


def paired_ci(d, n_boot: int = 2000, ci: float = 0.95, seed=0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences d (the pairs resampled n_boot times)."""
    d = np.asarray(d, dtype=float)
    if d.size == 0:
        raise DseError("paired_ci needs at least one pair")
    rng = np.random.default_rng(seed)
    m = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(m, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def welch_ci(a, b, ci: float = 0.95) -> tuple[float, float]:
    """Welch's t interval of mean(a) - mean(b) (unequal variances, Satterthwaite's degrees of freedom); NaN below 2
    values a side."""
    from scipy.stats import t as student

    a, b = (np.asarray(x, dtype=float) for x in (a, b))
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    d = float(a.mean() - b.mean())
    if se == 0:
        return d, d
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    h = float(student.ppf((1 + ci) / 2, dof)) * se
    return d - h, d + h


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
    each = {"pair": "pairs", "seed": "seeds per arm"}.get(per, f"per {per}")  # paired comparisons count pairs
    shift_txt = f"a {shift:g}-point shift" if u else f"a shift of {shift:.3g} (half a pooled std)"
    power = (f"about {int(n_req)} {each} would detect {shift_txt}" if np.isfinite(n_req)
             else f"the spread is unknown (every error is equal, or too few), so the n that would detect "
                  f"{shift_txt} is unknown too")
    power_obs = power
    if np.isfinite(n_obs) and np.isfinite(n_req) and abs(delta) > shift:
        power_obs = (f"about {int(n_obs)} {each} would detect a mean shift of this size "
                     f"({f(delta).lstrip('+-')}{u}), {int(n_req)} {shift_txt}")
    excludes = lo > 0 or hi < 0
    a_better = (delta < 0) == ascending(metric)
    win, lose, nw, nl = (a, b, n_a, n_b) if a_better else (b, a, n_b, n_a)
    dw, lw, hw = (delta, lo, hi) if a_better else (-delta, -hi, -lo)
    floor_txt = f"noise floor {floor:.2g}{u}" if np.isfinite(floor) else "noise floor not measured"
    if min(n_a, n_b) < min_n:
        small = f"too small for conclusions (fewer than {min_n} {each})"
        if not excludes:
            return (f"{a} vs {b}: no difference detected at n = {n_a}/{n_b}, {small}: mean {f(delta)}{u} "
                    f"[{f(lo)}, {f(hi)}], KS p = {_p(ks_p)}; {power}; {floor_txt}")
        return (f"{a} vs {b}: {small} at n = {n_a}/{n_b}, although {win} looks better: mean {f(dw)}{u} "
                f"[{f(lw)}, {f(hw)}], KS p = {_p(ks_p)}; {power}; {floor_txt}")
    if not excludes:
        edf = ""
        if ks_p < KS_ALPHA and len(dq) == 2:  # the means do not settle it, but the distributions differ
            low = b if (np.mean(dq) > 0) == ascending(metric) else a
            edf = (f"; the EDFs differ (KS p = {_p(ks_p)}): {low} is better at q25 and q50 by "
                   f"{abs(dq[0]):.1f} and {abs(dq[1]):.1f}{u}")
        return (f"{a} vs {b}: no difference in the mean detected at n = {n_a}/{n_b}: mean {f(delta)}{u} "
                f"[{f(lo)}, {f(hi)}]{edf or f', KS p = {_p(ks_p)}'}; {power_obs}; {floor_txt}")
    head = f"{win} is better than {lose}"
    tail = f"KS p = {_p(ks_p)}, n = {nw}/{nl}"
    if np.isfinite(floor) and abs(delta) < floor:
        return (f"{head} by less than the noise floor: mean {f(dw)}{u} [{f(lw)}, {f(hw)}] is within the median seed "
                f"std {floor:.2g}{u}, so it is not a conclusion; {tail}")
    return f"{head}: mean {f(dw)}{u} [{f(lw)}, {f(hw)}], {tail}, {floor_txt}"


def default_by(df: pd.DataFrame) -> str:
    """arm for a table of arms, else space."""
    return "arm" if "arm" in df.columns and df["arm"].notna().any() else "space"


def arm_pairs(arms) -> list[tuple[str, str]]:
    """The pairs of arms a verdict speaks of: arms of one group (the text after @ in x@g, none without @), in the
    order given."""
    arms = list(arms)
    grp = lambda a: a.split("@", 1)[1] if "@" in a else ""  # noqa: E731
    return [(a, b) for i, a in enumerate(arms) for b in arms[i + 1:] if grp(a) == grp(b)]


def arm_units(df: pd.DataFrame, metric: str = "error") -> dict[str, pd.Series]:
    """{arm: the metric of its finished trials, indexed by (id, repeat)}, arms in the table's order."""
    from dse.analysis.table import seed_rows

    t = seed_rows(df[df["arm"].notna()], metric)
    rep = pd.to_numeric(t["repeat"], errors="coerce").fillna(0).astype(int) if "repeat" in t.columns else 0
    v = pd.Series(pd.to_numeric(t[metric], errors="coerce").to_numpy(dtype=float),
                  index=pd.MultiIndex.from_arrays([t["id"].astype(str), rep], names=["id", "repeat"]))
    order = list(dict.fromkeys(df["arm"].dropna().astype(str)))
    return {a: v[(t["arm"].astype(str) == a).to_numpy()].sort_index() for a in order}


def compare_arms(df: pd.DataFrame, metric: str = "error", *, pairs=None, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0, noise: float | None = None, shift: float | None = None,
                 min_n: int = MIN_N) -> pd.DataFrame:
    """One row per pair of arms (`pairs`, default arm_pairs): ARM_COLUMNS, paired where the arms share their
    (model, seed) units (see the module doc)."""
    u = arm_units(df, metric)
    floor = measure_noise(df, metric).noise if noise is None else float(noise)
    single = {a for a, v in u.items() if v.index.get_level_values("id").nunique() == 1}  # one network, its seeds
    rows = []
    for i, (a, b) in enumerate(pairs if pairs is not None else arm_pairs(u)):
        if a not in u or b not in u:
            raise DseError(f"no finished trials of arm {a if a not in u else b!r} (the table has "
                           f"{', '.join(u) or 'none'})")
        x, y = u[a], u[b]
        shared = x.index.intersection(y.index)
        paired = len(shared) >= 2
        welch = not paired and a in single and b in single
        if paired:
            x, y = x.loc[shared], y.loc[shared]
            diff = x.to_numpy() - y.to_numpy()
            lo, hi = paired_ci(diff, n_boot, ci, seed=[seed, i])
            sd = float(np.std(diff, ddof=1)) / math.sqrt(2) if diff.size > 1 else math.nan
        elif welch:
            lo, hi = welch_ci(x.to_numpy(), y.to_numpy(), ci)
            sd = pooled_std(x.to_numpy(), y.to_numpy())
        else:
            lo, hi = bootstrap_ci(x.to_numpy(), y.to_numpy(), n_boot, ci, seed=[seed, i])
            sd = pooled_std(x.to_numpy(), y.to_numpy())
        xa, ya = x.to_numpy(), y.to_numpy()
        d = float(xa.mean() - ya.mean())
        qa, qb = np.quantile(xa, QUANTILES), np.quantile(ya, QUANTILES)
        stat, p = ks(xa, ya)
        sh = shift if shift is not None else (SHIFT if units(metric) else 0.5 * sd)
        line = verdict(a, b, xa.size, ya.size, d, lo, hi, p, metric=metric, floor=floor, n_req=n_needed(sd, sh),
                       shift=sh, min_n=min(min_n, MIN_SEEDS) if welch else min_n,
                       per="pair" if paired else "seed" if welch else "arm",
                       dq=tuple(float(v) for v in (qa - qb)[1:3]), n_obs=n_needed(sd, abs(d)))
        if paired:
            line = line.replace(f"n = {xa.size}/{ya.size}", f"n = {xa.size} paired")
        elif welch:
            line = line.replace(f"n = {xa.size}/{ya.size}", f"n = {xa.size}/{ya.size} seeds (Welch t)")
        method = "paired bootstrap" if paired else "welch t" if welch else "bootstrap"
        rows.append([a, b, int(xa.size), int(ya.size), d, lo, hi, *map(float, qa - qb), stat, p, paired, method,
                     line])
    return pd.DataFrame(rows, columns=ARM_COLUMNS)


def _context(t: pd.DataFrame) -> dict:
    """A run's recipe, data and band as {dotted key: value} (the first value each key has in the run's rows)."""
    import json

    out: dict = {}
    for col in CONTEXT:
        vals = [json.loads(v) if isinstance(v, str) and v[:1] == "{" else v
                for v in (t[col] if col in t.columns else [])]
        for v in vals:
            if isinstance(v, dict):
                for k, x in v.items():
                    out.setdefault(f"{col}.{k}", x)
            elif v is not None and not (isinstance(v, float) and math.isnan(v)):
                out.setdefault(col, v)
    return out


def run_differences(df: pd.DataFrame, a: str, b: str) -> list[str]:
    """The dotted keys (recipe.lr, data.res, band.flops, ...) whose values differ between runs a and b."""
    ca, cb = (_context(df[df["run"].astype(str) == r]) for r in (a, b))
    return sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))


def compare(df: pd.DataFrame, by: str | None = None, metric: str = "error", *, n_boot: int = 2000,
            ci: float = 0.95, seed: int = 0, noise: float | None = None, shift: float | None = None,
            min_n: int = MIN_N, force: bool = False) -> pd.DataFrame:
    """One row per pair of groups (a before b in label order): COLUMNS (see the module doc). Empty for one group.

    by: space, run or arm (default: arm for a table of arms, else space).
    noise: the noise floor in the metric's units (default: measured from the table's repeats, NaN without them).
    shift: the shift the power line speaks of (default 2 points for percentages, half the pair's pooled std else).
    by="run" adds the column `differ` (the recipe, data and band keys in which the two runs differ); such a pair's
    verdict is "not comparable" unless force.
    """
    if not (isinstance(min_n, (int, np.integer)) and min_n >= 2):
        raise DseError(f"min_n must be an integer >= 2, got {min_n!r}")
    by = by or default_by(df)
    if by == "arm":
        return compare_arms(df, metric, n_boot=n_boot, ci=ci, seed=seed, noise=noise, shift=shift, min_n=min_n)
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
            extra = []
            if by == "run":
                keys = run_differences(df, a, b)
                extra = [", ".join(keys)]
                if keys and not force:
                    line = (f"{a} vs {b}: not comparable: the runs differ in {', '.join(keys)}, so a difference "
                            "would mix the designs with the protocols (--force gives the verdict anyway)")
                elif keys:
                    line += f" (the runs differ in {', '.join(keys)})"
            rows.append([a, b, int(x.size), int(y.size), d, lo, hi, *map(float, qa - qb), stat, p, line, *extra])
    return pd.DataFrame(rows, columns=COLUMNS + (["differ"] if by == "run" else []))


def too_small(cmp: pd.DataFrame, min_n: int = MIN_N) -> bool:
    """True when any comparison has fewer than min_n models on a side (MIN_SEEDS seeds for a Welch comparison of two
    single networks): its verdict says "too small for conclusions"."""
    if not len(cmp):
        return False
    need = np.where(cmp["interval"] == "welch t", min(min_n, MIN_SEEDS), min_n) if "interval" in cmp.columns \
        else min_n
    return bool((cmp[["n_a", "n_b"]].min(axis=1).to_numpy() < need).any())


def format_verdicts(cmp: pd.DataFrame, nz: Noise, *, by: str | None = "space", min_n: int = MIN_N) -> list[str]:
    """The terminal lines: the noise floor, a too-small banner when it applies, then one verdict per pair."""
    out = [nz.line()]
    if cmp.empty:
        return out + [f"one {by} only: nothing to compare"]
    if too_small(cmp, min_n):
        n = int(cmp[["n_a", "n_b"]].to_numpy().min())
        what = "units" if by == "arm" else "models"
        welch = "interval" in cmp.columns and (cmp["interval"] == "welch t").all()
        need = f"{min(min_n, MIN_SEEDS)} seeds per arm" if welch else f"{min_n} per side"
        out.append(f"TOO SMALL FOR CONCLUSIONS: {n} {what} on a side, the verdicts need at least {need}")
    return out + list(cmp["verdict"])


def verdict_lines(df: pd.DataFrame, by: str | None = None, metric: str = "error", *, min_n: int = MIN_N,
                  **kw) -> list[str]:
    """The lines `dse run`, `dse compare` and the report print: noise floor, too-small banner, verdicts."""
    by = by or default_by(df)
    nz = measure_noise(df, metric)
    cmp = compare(df, by, metric, noise=nz.noise, min_n=min_n, **kw)
    return format_verdicts(cmp, nz, by=by, min_n=min_n)
