"""Fit the quantized linear width rule (w0, wa, wm) to a model's per-block widths (Radosavovic et al. 2020, Sec. 3.3).

Notation: x = log w0, y = log wm, r = wa / w0. Block j gets the exponent s_j = round(log(1 + r j) / y) and the
width q * round(w0 * wm**s_j / q); e_fit = mean_j |log(w_j / what_j)|.

Algorithm (exact, not a grid search). The target is split into runs (D_k blocks of width W_k). A solution assigns
each run an exponent sig_k (non-decreasing; equal means the run joins the previous fitted stage) and a quantized
width V_k (a multiple of q; V_k = W_k when exact). For a fixed assignment every condition is an interval in y:
  * widths: V_k = q*round(e^(x + sig_k y) / q)  <=>  a_k < x + sig_k y < b_k with a, b = log(V -+ q/2); eliminating
    x pairwise (Fourier-Motzkin) leaves (a_k - b_l)/(sig_k - sig_l) < y < (b_k - a_l)/(sig_k - sig_l);
  * stage boundaries: a fitted stage starting at block J with exponent sig needs r >= lam(y) = expm1(y (sig - 1/2))/J,
    one ending before block E needs r < mu(y) = expm1(y (sig + 1/2))/(E - 1); some r exists iff every lam < every mu.
    mu - lam = 0 has at most one root in y > 0 (its derivative changes sign at most once), so each pair is a ray.
So the feasible y of an assignment is one interval, computed exactly (brentq for the ray ends). A best-first search
over runs (key: summed D_k |log W_k/V_k| cost plus an admissible bound for the runs left, then the
exponent sequence) pops the cheapest complete assignment
first; with cost 0 it is an exact fit, so quantized-linear widths are refit with e_fit == 0 whenever the generating
wm >= wm_min and no run spans two exponents (consecutive exponents rounding to the same multiple of q, which needs
w0 wm^s (wm - 1) < q: impossible in RegNet's wm >= 1.5 except for widths below 2q). If the search runs out of nodes
(not of allowance) without a cost-0 assignment, it has proved that none exists under those two conditions.

Widths that are not quantized-linear (AnyNet, non-multiples of q, group-adjusted RegNets) get the cheapest
assignment found within a work allowance, searched with budgets rising to the e_fit of a vectorised zooming grid
search (which also covers fits whose stage boundaries differ from the target's runs); the better of the two wins.
Group-adjusted widths (dse.space.regnet.regnet_stages) mostly leave a residual: adjust_compat rounds each stage width to
a multiple of g *after* quantization, moving it by up to g/2 (X-400MF: 24 -> 32 with g = 16) while keeping the
stage depths, and no (w0, wa, wm) satisfies both. E.g. X-400MF [32, 64, 160, 384] x [1, 2, 7, 12]: the widths need
wm in (2.364, 2.402), the depths need wm in (2.491, 4.594), so the search proves e_fit > 0. The residual is at most
e_fit of the generating parameters against the adjusted widths, as their assignment is among those searched
(unless max_work runs out first; it does not for any zoo model).

Canonical choice among the many exact (w0, wa, wm): the lexicographically smallest exponent sequence (fewest steps,
i.e. the largest wm), then w0 = the first width when that is feasible (pycls requires w0 % q == 0; this recovers the
published w0), else the centre of the x-section; y is the centre of its feasible interval and r the centre of
(max lam, min mu). Constant widths (one stage) get wa = 0 and wm = 2 (wm is then arbitrary).
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from dse.errors import DseError
from dse.space.regnet import linear_widths, quantized_widths, stages_from_widths


@dataclass(frozen=True)
class Fit:
    """A fitted quantized linear rule and its error e_fit against the target widths."""

    d: int
    w0: float
    wa: float
    wm: float
    e_fit: float
    widths: tuple[int, ...]

    def to_dict(self) -> dict:
        """The fields as a plain dict (widths as a list)."""
        return {"d": self.d, "w0": self.w0, "wa": self.wa, "wm": self.wm, "e_fit": self.e_fit,
                "widths": list(self.widths)}


def _check(ws) -> np.ndarray:
    """The widths as a 1-D int array, or DseError."""
    try:
        a = np.asarray(ws, dtype=float)
    except (TypeError, ValueError):
        a = np.array([np.nan])
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a != np.round(a)):
        raise DseError(f"widths must be positive integers: got {list(np.ravel(ws)) if np.ndim(ws) else ws!r}")
    return a.astype(int)


def e_fit(ws, w0: float, wa: float, wm: float, q: int = 8) -> float:
    """mean_j |log(w_j / what_j)| with what = quantized_widths(len(ws), w0, wa, wm, q)."""
    w = _check(ws)
    with np.errstate(divide="ignore"):
        return float(np.abs(np.log(w / quantized_widths(len(w), w0, wa, wm, q))).mean())


def _efits(w: np.ndarray, w0, wa, wm, q: int) -> np.ndarray:
    """e_fit for arrays of candidates: quantized_widths' operations broadcast over rows (one numpy pass)."""
    w0, wa, wm = (np.asarray(v, dtype=float)[:, None] for v in (w0, wa, wm))
    s = np.round(np.log(linear_widths(len(w), w0, wa) / w0) / np.log(wm))
    hat = np.round(w0 * np.power(wm, s) / q) * q
    with np.errstate(divide="ignore"):
        return np.abs(np.log(w / hat)).mean(axis=1)


def _lem(z: float) -> float:
    """log(expm1(z)) for z > 0 without overflow."""
    return z + math.log(-math.expm1(-z))


def _ray(lo: float, hi: float, lam: tuple, mu: tuple):
    """The part of (lo, hi) where mu(y) > lam(y), or None; lam = (alpha, J), mu = (beta, E - 1)."""
    (al, ja), (be, jb) = lam, mu
    h = lambda y: _lem(be * y) - math.log(jb) - _lem(al * y) + math.log(ja)  # same sign as mu - lam
    h_lo = h(lo)
    h_hi = h(hi) if math.isfinite(hi) else (be - al if be != al else ja - jb)  # the sign as y -> inf
    if h_lo > 0 and h_hi > 0:
        return lo, hi
    if h_lo <= 0 and h_hi <= 0:
        return None
    top = hi
    if not math.isfinite(top):
        top = 2 * lo
        while (h(top) > 0) == (h_lo > 0):
            top *= 2
    y = brentq(h, lo, top, xtol=1e-15, rtol=1e-15)
    return (lo, y) if h_lo > 0 else (y, hi)


def _strip(v: int, q: int) -> tuple[float, float]:
    """(a, b) with q * round(z / q) == v iff log(z) in (a, b); for v == q the low end is q / 2."""
    return math.log(max(v - q / 2, q / 2)), math.log(v + q / 2)


def _search(D, W, q: int, ymin: float, budget: float, work: list):
    """Best-first search over (exponent, quantized width) per run: the cheapest feasible assignment, or None.

    work = [n] is a shared allowance of examined candidates, decremented in place; the search gives up at 0.
    """
    K = len(D)
    J = np.concatenate([[0], np.cumsum(D)]).astype(int)
    lw = np.log(W).tolist()
    D = [int(x) for x in D]
    # cheapest width cost of each run: its nearest multiple of q (0 when W is one)
    m = [min(abs(lw[k] - math.log(v)) for v in (max(q, math.floor(W[k] / q) * q), math.ceil(W[k] / q) * q))
         for k in range(K)]

    def rest(k, v):
        """A lower bound on the cost of runs k.. when their widths must be >= v (admissible A* heuristic)."""
        lv = math.log(v)
        return sum(D[i] * max(lv - lw[i], m[i]) for i in range(k, K))

    def widths_ok(stages, sig, a, b, lo, hi):
        for s, _, au, bu in stages:
            lo = max(lo, (a - bu) / (sig - s))
            hi = min(hi, (b - au) / (sig - s))
        return (lo, hi) if lo < hi else None

    def rays(lo, hi, lams, mus, new_lams, new_mus):
        pairs = [(lam, mu) for lam in new_lams for mu in mus + new_mus] + [(lam, mu) for mu in new_mus for lam in lams]
        for lam, mu in pairs:
            iv = _ray(lo, hi, lam, mu)
            if iv is None:
                return None
            lo, hi = iv
        return lo, hi

    def window(k, vmin, rem):
        """The multiples of q >= vmin whose cost D_k |log(W_k / V)| fits in rem, as (lowest, highest)."""
        t = rem / D[k] + 1e-12
        # runs k.. all need widths >= V, so sum_{i>=k} D_i (log V - log W_i) <= rem caps V (keeps the loops finite
        # when a large budget meets a short run, e.g. [8, 256 x 14, 8 x 10])
        cap = (rem + sum(D[i] * lw[i] for i in range(k, K))) / sum(D[k:]) + 1e-12
        top = min(math.floor(W[k] * math.exp(t) / q), math.floor(math.exp(cap) / q)) * q
        return max(vmin, q, math.ceil(W[k] * math.exp(-t) / q) * q), top

    heap, n = [], 0
    v_lo, v_hi = window(0, q, budget)
    mu0 = ((0.5, J[1] - 1),) if J[1] > 1 else ()
    for v in range(v_lo, v_hi + 1, q):
        c = D[0] * abs(lw[0] - math.log(v))
        heap.append((c + rest(1, v), (0,), n, c, 1, ((0, v, *_strip(v, q)),), ymin, math.inf, (), mu0))
        n += 1
    heapq.heapify(heap)
    while heap and work[0] > 0:
        _, key, _, cost, k, stages, lo, hi, lams, mus = heapq.heappop(heap)
        if k == K:
            return cost, stages, (lo, hi), lams, mus
        s_last, v_last = stages[-1][:2]
        # merge run k into the last fitted stage (same exponent and width): its end moves to J[k+1]
        c = cost + D[k] * abs(lw[k] - math.log(v_last))
        work[0] -= 1
        f = c + rest(k + 1, v_last)
        if f <= budget:
            nm = ((s_last + 0.5, J[k + 1] - 1),)
            iv = rays(lo, hi, lams, mus, (), nm)
            if iv:
                heapq.heappush(heap, (f, key + (s_last,), n, c, k + 1, stages, *iv, lams, mus + nm))
                n += 1
        # or start a new fitted stage: exponent sig > s_last and width V >= v_last that x + sig y can reach
        v_lo, v_hi = window(k, v_last, budget - cost)
        if v_lo > v_hi:
            continue
        z_lo, z_hi = _strip(v_lo, q)[0], _strip(v_hi, q)[1]
        s_hi = min(math.ceil(s + (z_hi - a) / lo) for s, _, a, _b in stages)
        for sig in range(s_last + 1, s_hi + 1):
            e_lo = max(a + (sig - s) * lo for s, _, a, _b in stages)
            e_hi = min(b + (sig - s) * hi for s, _, _a, b in stages)
            if e_lo >= z_hi or e_hi <= z_lo:
                continue
            r_lo = max(v_lo, math.ceil((math.exp(e_lo) - q / 2) / q) * q)
            r_hi = v_hi if e_hi > z_hi else min(v_hi, math.floor((math.exp(e_hi) + q / 2) / q) * q)
            if r_lo > r_hi:
                continue
            nl, nm = ((sig - 0.5, J[k]),), ((sig + 0.5, J[k + 1] - 1),)
            iv_r = rays(lo, hi, lams, mus, nl, nm)  # the stage-boundary part does not depend on V
            work[0] -= 1
            if iv_r is None:
                continue
            for v in range(r_lo, r_hi + 1, q):
                work[0] -= 1
                c = cost + D[k] * abs(lw[k] - math.log(v))
                if c > budget:
                    continue
                f = c + rest(k + 1, v)
                if f > budget:
                    continue
                a, b = _strip(v, q)
                iv = widths_ok(stages, sig, a, b, *iv_r)
                if iv:
                    heapq.heappush(heap, (f, key + (sig,), n, c, k + 1, stages + ((sig, v, a, b),), *iv, lams + nl,
                                          mus + nm))
                    n += 1
    return None


def _centre(stages, y_iv, lams, mus, q: int):
    """The canonical (w0, wa, wm) inside an assignment's feasible region (see the module docstring)."""
    lo, hi = y_iv
    if len(stages) == 1:
        y = math.log(2.0) if lo < math.log(2.0) < hi else lo + 1.0
        return float(stages[0][1]), 0.0, math.exp(y)
    x0, plo, phi = math.log(stages[0][1]), lo, hi
    for s, _, a, b in stages[1:]:
        plo, phi = max(plo, (a - x0) / s), min(phi, (b - x0) / s)
    if plo < phi:
        y, x = (plo + phi) / 2, x0  # w0 is then exactly the first width
    else:
        y = (lo + hi) / 2
        x = (max(a - s * y for s, _, a, _b in stages) + min(b - s * y for s, _, _a, b in stages)) / 2
    rl = max(math.expm1(al * y) / ja for al, ja in lams)
    ru = min(math.expm1(be * y) / jb for be, jb in mus)
    w0 = float(stages[0][1]) if x == x0 else math.exp(x)
    return w0, (rl + ru) / 2 * w0, math.exp(y)


def _grid(w: np.ndarray, q: int, wm_min: float, rounds: int = 4):
    """Vectorised grid search over (w0, r = wa/w0, wm), zooming on the best; returns (w0, wa, wm, e_fit)."""
    w0s = np.geomspace(max(q / 2, w.min() / 2), max(w.max(), q), 20)
    wms = np.geomspace(wm_min, max(4.0, w.max() / w.min()), 20)
    rs = np.r_[0.0, np.geomspace(1e-3, 1e3, 24)]
    best = None
    for it in range(rounds):
        w0, r, wm = (m.ravel() for m in np.meshgrid(w0s, rs, wms, indexing="ij"))
        e = _efits(w, w0, r * w0, wm, q)
        i = int(np.argmin(e))
        if best is None or e[i] < best[3]:
            best = (float(w0[i]), float(r[i] * w0[i]), float(wm[i]), float(e[i]))
        if best[3] == 0:
            break
        z = np.exp(np.linspace(-0.5, 0.5, 15) / 3**it)
        w0s, wms = best[0] * z, np.maximum(best[2] * np.sqrt(z), wm_min)
        rs = max(best[1] / best[0], 1e-3) * z**3
    return best


def fit(ws, q: int = 8, *, wm_min: float = 1.1, max_work: int = 20000) -> Fit:
    """Fit (w0, wa, wm) minimising e_fit to per-block widths ws (exact when ws is quantized-linear, see above)."""
    w = _check(ws)
    if not (isinstance(q, (int, np.integer)) and q > 0) or not wm_min > 1:
        raise DseError(f"q must be a positive integer and wm_min > 1: got q={q!r}, wm_min={wm_min!r}")
    ds, runs = stages_from_widths(w)
    D, W, ymin, work = np.array(ds), np.array(runs, dtype=float), math.log(wm_min), [max_work]
    hit = _search(D, W, q, ymin, 1e-12, work)
    cands = [_centre(*hit[1:], q)] if hit else []
    if not cands or _efits(w, *np.array(cands).T, q)[0] > 0:  # not exact (or lost to rounding): search widely
        g = _grid(w, q, wm_min)
        for b in g[3] * len(w) * (1 + 1e-9) / 2.0 ** np.arange(6, -1, -1):  # small budgets first: fewer children
            hit = _search(D, W, q, ymin, b, work)
            if hit is not None:
                cands.append(_centre(*hit[1:], q))
                break
        cands.append(g[:3])
    i = int(np.argmin(_efits(w, *np.array(cands).T, q)))  # ties go to the search's canonical point
    w0, wa, wm = (float(v) for v in cands[i])
    hat = quantized_widths(len(w), w0, wa, wm, q)
    return Fit(len(w), w0, wa, wm, float(np.abs(np.log(w / hat)).mean()), tuple(int(v) for v in hat))


def fit_many(wss, q: int = 8, **kw) -> pd.DataFrame:
    """fit() for each model's widths: one row per model (d, w0, wa, wm, e_fit, widths)."""
    rows = []
    for i, ws in enumerate(wss):
        try:
            rows.append(fit(ws, q, **kw).to_dict())
        except DseError as e:
            raise DseError(f"model {i}: {e}") from None
    return pd.DataFrame(rows, columns=["d", "w0", "wa", "wm", "e_fit", "widths"])


# ---------------------------------------------------------------- fits of a sweep (dse fit RUN)

def parse_widths(text: str) -> list[int]:
    """Per-block widths from a comma list such as '24,56,152'; DseError unless all are positive integers."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise DseError(f"--widths: expected positive integers separated by commas, got {text!r}")
    return [int(p) for p in parts]


def fit_results(df: pd.DataFrame, top: int | None = None, metric: str = "error", ids=None, q: int = 8,
                progress=None) -> pd.DataFrame:
    """fit() for each model of a results or samples table: id, space, metric, d, w0, wa, wm, e_fit, widths; per space
    (in label order), best first.

    With a metric column only finished rows are fitted, each space's sorted best first (its top k when top is given); a
    samples file (no metric) has all its rows fitted in file order, and top is then an error. ids keeps only those
    models. progress(done, total) is called after each fit.
    """
    from dse.analysis.table import best, block_widths

    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise DseError("empty results: no rows to fit")
    t = df
    if ids is not None:
        have = set(map(str, t["id"])) if "id" in t.columns else set()
        missing = [str(i) for i in ids if str(i) not in have]
        if missing:
            raise DseError(f"unknown id {missing[0]!r}: not among the {len(t)} rows of the results")
        t = t[t["id"].astype(str).isin([str(i) for i in ids])]
    has_metric = metric in t.columns
    if has_metric:
        t = best(t, None, metric)  # finished rows, best first; then each space's top k, spaces in label order
        if "space" in t.columns:
            t = pd.concat([g if top is None else g.head(top) for _, g in t.groupby(t["space"].astype(str), sort=True)])
        elif top is not None:
            t = t.head(top)
    elif top is not None:
        raise DseError(f"top {top} needs a metric: the table has no {metric!r} column (a samples file?)")
    rows = []
    for i, r in enumerate(t.to_dict("records")):
        if progress is not None:
            progress(i + 1, len(t))
        try:
            rows.append(fit(block_widths(r), q).to_dict())
        except DseError as e:
            raise DseError(f"model {r.get('id', '?')}: {e}") from None
    keys = [c for c in ("id", "space") + ((metric,) if has_metric else ()) if c in t.columns]
    out = pd.DataFrame(rows, columns=["d", "w0", "wa", "wm", "e_fit", "widths"])
    return pd.concat([t[keys].reset_index(drop=True), out], axis=1)


def fit_summary(fits: pd.DataFrame, metric: str = "error", k: int | None = None) -> pd.Series:
    """Sec. 3.3 of Radosavovic et al. 2020 on a sweep: Spearman(e_fit, metric), median e_fit of the top k vs the rest,
    and the quartiles of the fitted w0, wa, wm among the top k (k defaults to the best 10%, at least 1)."""
    from dse.analysis.table import best, spearman

    t = best(fits, None, metric)
    n = len(t)
    k = max(1, math.ceil(n / 10)) if k is None else k
    if not isinstance(k, (int, np.integer)) or k <= 0:
        raise DseError(f"top K must be a positive integer, got {k!r}")
    k = min(int(k), n)
    e, m = t["e_fit"].to_numpy(dtype=float), t[metric].to_numpy(dtype=float)
    rho, p = spearman(e, m)
    out = {"n": n, "k": k, "rho": rho, "p": p, "e_fit_top": float(np.median(e[:k])),
           "e_fit_rest": float(np.median(e[k:])) if n > k else math.nan}
    for c in ("w0", "wa", "wm"):
        qs = np.quantile(t[c].to_numpy(dtype=float)[:k], [0.25, 0.5, 0.75])
        out.update({f"{c}_q25": float(qs[0]), f"{c}_q50": float(qs[1]), f"{c}_q75": float(qs[2])})
    return pd.Series(out, dtype=object)


def fit_summaries(fits: pd.DataFrame, metric: str = "error", k: int | None = None) -> pd.DataFrame:
    """fit_summary() per space (never pooling spaces, whose errors and widths differ in kind): one row per space,
    in label order, with the column `space` first ('all' when the table has no space column)."""
    if "space" not in fits.columns:
        return pd.DataFrame([{"space": "all", **fit_summary(fits, metric, k).to_dict()}])
    rows = [{"space": str(s), **fit_summary(g, metric, k).to_dict()}
            for s, g in fits.groupby(fits["space"].astype(str), sort=True)]
    return pd.DataFrame(rows)


def fit_blocks(ws, f: Fit) -> pd.DataFrame:
    """Per block j: the target width w, the linear u = w0 + wa*j, the exponent s and the fitted quantized width."""
    w = _check(ws)
    if len(w) != f.d:
        raise DseError(f"{len(w)} widths but the fit has d={f.d}")
    u = linear_widths(f.d, f.w0, f.wa)
    s = np.round(np.log(u / f.w0) / np.log(f.wm)).astype(int)
    return pd.DataFrame({"j": np.arange(f.d), "w": w, "u": u, "s": s, "w_fit": list(f.widths)})
