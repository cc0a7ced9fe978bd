"""Figures of sweep results (Radosavovic et al. 2019/2020): error EDFs, metric vs parameters, widths, width fits.

Every function builds a matplotlib.figure.Figure directly (no pyplot, so no global figure state) under one style
(STYLE, applied with rc_context) and returns it; save() writes one to .png, .svg or .pdf atomically. Figures draw the
finished rows (dse.analysis.table.finished: one row per model, noise repeats left out), one colour per space.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as _MplFigure
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from dse.analysis.edf import edfs
from dse.analysis.noise import noise, units
from dse.analysis.table import ascending, best, block_widths, finished, stage_columns
from dse.errors import DseError
from dse.io import check_new, write_atomic
from dse.space.regnet import linear_widths

STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
    "axes.spines.right": False, "lines.linewidth": 1.6, "legend.frameon": False, "figure.dpi": 100,
    "svg.hashsalt": "dse", "image.cmap": "viridis", "pdf.fonttype": 42,
}
DPI = 150


class Figure(_MplFigure):
    """A matplotlib Figure that shows itself in Jupyter (as PNG) without pyplot or an inline backend."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        with rc_context(STYLE):
            self.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()
STAGED = ("d", "w", "b", "g")  # per-stage parameters: columns d1..dk, shown as the group d_i
SCALARS = ("d", "w0", "wa", "wm", "b", "g", "alpha", "beta", "gamma", "flops", "params", "acts")
DEFAULT_SKIP = ("acts",)  # plotted only when asked for
LOG_X = {"w", "w0", "wa", "flops", "params", "acts"}  # log axes when a space's declaration is not available
CATEGORICAL = {"b", "g"}  # likewise: choice / power-of-two parameters, drawn on categorical axes
COUNTS = {"flops", "params", "acts"}
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def _metric_label(metric: str) -> str:
    """The axis label of a metric: 'error (%)' for errors, else the column name."""
    return "error (%)" if metric in ("error", "best_error") else metric


def _fmt(x: float) -> str:
    """A short number for labels (3 significant digits, no trailing noise)."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _log_x(ax, kind: str) -> None:
    """A log x axis with ticks at 1, 2, 5 x 10^k labelled as plain numbers (SI prefixes for counts)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(EngFormatter(sep="") if kind in COUNTS else PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log2_y(ax) -> None:
    """A log2 y axis (widths) labelled as plain numbers, and integer block indices on x."""
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# ---------------------------------------------------------------- EDFs

def _units_table(t: pd.DataFrame, by: str) -> pd.DataFrame:
    """The finished rows an EDF is drawn from (dse.analysis.edf's choice: one per model, or one per seed for arms
    that each train one network)."""
    from dse.analysis.edf import _table

    u = _table(t, by)
    return u[u["ok"]]


def edf_figure(df: pd.DataFrame, by: str = "space", normalized: str | None = None, band: bool = False,
               metric: str = "error", bins: int = 10, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Figure:
    """Step EDFs F(e) = fraction of models with metric < e per group; legend: n, best (min for errors, max for
    rewards) and mean of the finished rows; the title names the rows, the normalisation and the band."""
    if metric not in df.columns:
        raise DseError(f"unknown column {metric!r}: the table has {', '.join(map(str, df.columns))}")
    t = df.assign(error=pd.to_numeric(df[metric], errors="coerce")) if metric != "error" else df
    curves = edfs(t, by=by, normalized=normalized, n_boot=n_boot if band else 0, bins=bins, seed=seed, ci=ci)
    ok = finished(t, "error")
    units_of = _units_table(t, by)  # the rows the curves are drawn from (seeds, for arms of one network each)
    seeds = len(units_of) != len(ok)
    top = "min" if ascending(metric) else "max"
    stats = units_of.groupby(units_of[by])["error"].agg(["size", top, "mean"])
    with rc_context(STYLE):
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.add_subplot()
        for i, (k, c) in enumerate(curves.groupby("group", sort=False)):
            n, b, mean = stats.loc[k]
            col = f"C{i % 10}"
            f = ".1f" if units(metric) else ".3g"
            ax.step(c["e"], c["F"], where="pre", color=col, label=f"{k} (n={int(n)}, {top} {b:{f}}, mean {mean:{f}})",
                    zorder=3)
            if band:  # a light fill and thin outlines: 3-5 overlapping bands stay apart instead of mixing colours
                ax.fill_between(c["e"], c["lo"], c["hi"], step="pre", color=col, alpha=0.06, linewidth=0, zorder=1)
                for edge in ("lo", "hi"):
                    ax.step(c["e"], c[edge], where="pre", color=col, linewidth=0.7, linestyle=(0, (4, 2)),
                            alpha=0.8, zorder=2)
        ax.set_xlim(curves["e"].min(), curves["e"].max())
        ax.set_ylim(0, 1)
        ax.set_xlabel(_metric_label(metric))
        ax.set_ylabel("cumulative prob.")
        title = (f"{metric} EDF of {len(units_of)} {'runs (networks x seeds)' if seeds else 'models'}, one curve per {by}"
                 + (f", normalized by {normalized}" if normalized else ""))
        if band:
            title += f"\ndashed outlines: each curve's pointwise {ci:.0%} bootstrap band ({n_boot} resamples)"
        try:
            nz = noise(df, metric)
        except DseError:  # a table without model ids: repeats cannot be told from models
            nz = None
        title += (f"\nnoise floor: a model's {metric} moves {nz.noise:.2f}{units(metric)} with its seed (median std, "
                  f"{nz.n_models} models)" if nz is not None and nz.measured else
                  "\nnoise floor not measured (no seed repeats)")
        ax.set_title(title)
        ax.legend(loc="lower right")
    return fig


# ---------------------------------------------------------------- metric vs design parameters

def _available(df: pd.DataFrame) -> dict[str, list[str]]:
    """Plottable parameter name -> its columns (d_i -> d1..dk), for what the table has."""
    out = {}
    for p in STAGED:
        cols = stage_columns(df, p)
        if cols:
            out[f"{p}_i"] = cols
    for p in SCALARS:
        if p in df.columns:
            out[p] = [p]
    return out


def _resolve(df: pd.DataFrame, params) -> dict[str, list[str]]:
    """The requested parameters (default: all that vary) as name -> columns; DseError for an unknown name."""
    have = _available(df)
    varies = lambda cols: any(pd.to_numeric(df[c], errors="coerce").nunique() > 1 for c in cols)  # noqa: E731
    if params is None:
        out = {k: v for k, v in have.items() if k not in DEFAULT_SKIP and varies(v)}
        if not out:
            raise DseError(f"no design parameter varies in the table (it has: {', '.join(have) or 'none'})")
        return out
    out = {}
    for p in params:
        p = p.strip()
        key = p if p in have else (f"{p}_i" if f"{p}_i" in have else None)  # d: scalar d, else per-stage d_i
        if key is None and p in df.columns and p[:1] in STAGED and p in stage_columns(df, p[:1]):
            out[p] = [p]  # one stage, e.g. w3
            continue
        if key is None:
            raise DseError(f"unknown parameter {p!r}: the table has {', '.join(have) or 'no design parameters'}")
        out[key] = have[key]
    return out


def _declared(labels) -> tuple[set, dict, bool]:
    """(log-sampled names, {categorical name: its declared values}) of the spaces named in labels ('run/space'
    allowed), and whether every space was found; unknown spaces add nothing (the caller falls back to LOG_X and
    CATEGORICAL)."""
    from dse.space.sampler import load

    logs, cats, known = set(), {}, True
    for name in sorted({str(x).rsplit("/", 1)[-1] for x in labels}):
        try:
            sp = load(name)
        except (DseError, OSError, ValueError, KeyError):
            known = False
            continue
        for p in sp.params:
            if p.log:
                logs.add(p.name)
            if p.kind == "pow2" and p.low and p.high:
                cats.setdefault(p.name, set()).update(2 ** k for k in range(int(np.log2(p.low)),
                                                                            int(np.log2(p.high)) + 1))
            elif p.kind == "choice":
                vals = [v for v in p.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
                if vals:
                    cats.setdefault(p.name, set()).update(vals)
    return logs, cats, known


def _shares(labels) -> dict:
    """{label: the per-stage parameters its space shares across stages (its file's `shared` constraints)}, None for a
    label whose space file is not found."""
    from dse.space.sampler import load

    out = {}
    for label in labels:
        try:
            sp = load(str(label).rsplit("/", 1)[-1])
        except (DseError, OSError, ValueError, KeyError):
            out[label] = None
            continue
        out[label] = {p for k, p in sp.constraints if k == "shared"}
    return out


def _panels(ok: pd.DataFrame, chosen: dict, lab: np.ndarray, names: list) -> list[tuple[str, dict]]:
    """(x label, {space label: its column}) per panel. A per-stage parameter that a space shares across stages is
    drawn once for that space, in the panel of its plain name (beside RegNet's scalar of that name), not once per
    stage; unknown spaces share a parameter when its stage values are equal in every row and vary between rows."""
    shares = _shares(names)
    shared: dict[str, set] = {}
    for key, cols in chosen.items():
        if not key.endswith("_i") or len(cols) < 2:
            continue
        p = key[:-2]
        for name in names:
            s = shares.get(name)
            if s is None:
                v = ok.loc[lab == name, cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
                fin = np.isfinite(v).all(axis=1)
                s = {p} if fin.sum() > 1 and (v[fin] == v[fin][:, :1]).all() and np.unique(v[fin][:, 0]).size > 1 \
                    else set()
            if p in s:
                shared.setdefault(p, set()).add(name)
    out = []
    for key, cols in chosen.items():
        if key.endswith("_i"):
            p = key[:-2]
            rest = [n for n in names if n not in shared.get(p, ())]
            out += [(c, {n: c for n in rest}) for c in cols] if rest else []
    for key, cols in chosen.items():
        if not key.endswith("_i"):
            for c in cols:
                out.append((c, {n: c for n in names}))
    for key, cols in chosen.items():  # the shared ones: in the scalar panel of the same name (made if missing)
        p = key[:-2] if key.endswith("_i") else None
        if p in shared:
            panel = next((m for lbl, m in out if lbl == p), None)
            if panel is None:
                out.append((p, {}))
                panel = out[-1][1]
            panel.update({n: cols[0] for n in shared[p]})
    return out


def _bins(x: np.ndarray, bins: int, log: bool, min_n: int = 1):
    """(bin key of each x, bin centres): one bin per distinct value when there are at most `bins` of them, else
    `bins` equal-width bins of x (of log10 x when log); then neighbouring bins are merged until each holds at least
    min_n values, and a bin's centre is the median of its values (the geometric median on log axes)."""
    u = np.unique(x)
    if u.size <= bins:
        key = np.searchsorted(u, x)
    else:
        f = np.log10 if log else np.asarray
        edges = np.linspace(f(u[0]), f(u[-1]), bins + 1)
        key = np.clip(np.searchsorted(edges, f(x), side="right") - 1, 0, bins - 1)
    counts = np.bincount(key, minlength=key.max() + 1 if key.size else 0)
    group, acc, g = np.zeros(counts.size, dtype=int), 0, 0
    for i, c in enumerate(counts):  # merge forward until a bin holds min_n values
        group[i] = g
        acc += c
        if acc >= min_n:
            g, acc = g + 1, 0
    if 0 < acc < min_n and g > 0:  # the last bins fell short: they join the previous bin
        group[group == g] = g - 1
    new = group[key]
    _, new = np.unique(new, return_inverse=True)
    f, finv = (np.log, np.exp) if log and np.all(x > 0) else (np.asarray, np.asarray)
    centres = np.array([finv(np.median(f(x[new == k]))) for k in range(new.max() + 1)]) if x.size else np.array([])
    return new, centres


def bin_means(key: np.ndarray, y: np.ndarray, ci: float = 0.95, min_n: int = 3, bounds=None) -> pd.DataFrame:
    """Per bin key: n, mean and the t interval of the mean (lo, hi; NaN for a bin of fewer than min_n models, whose
    interval would span the plot: t_0.975 is 12.7 with 2 models), cut to `bounds` (lo, hi) when given: the range the
    mean cannot leave (0-100 for a percentage), so the cut interval still covers it as often."""
    from scipy.stats import t as student

    g = pd.Series(y).groupby(key)
    out = pd.DataFrame({"n": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)})
    with np.errstate(invalid="ignore", divide="ignore"):
        h = student.ppf((1 + ci) / 2, out["n"] - 1) * out["sd"] / np.sqrt(out["n"])
    h = h.where(out["n"] >= min_n)
    out = out.assign(lo=out["mean"] - h, hi=out["mean"] + h).drop(columns="sd")
    if bounds is not None:
        out["lo"], out["hi"] = out["lo"].clip(lower=bounds[0]), out["hi"].clip(upper=bounds[1])
    return out


MIN_BIN = 5  # models per bin of a numeric parameter (per space): fewer make a mean that one model moves


def params_figure(df: pd.DataFrame, params=None, metric: str = "error", bins: int = 10, by: str = "space",
                  ci: float = 0.95, min_bin: int = MIN_BIN, progress=None) -> Figure:
    """The metric against each design parameter: the models as points and, per space (one colour each), the mean
    of the metric per bin of the parameter with its ci t-interval.

    Numeric parameters: a line through the bin means with the interval as a band. Axes are log for parameters the
    spaces sample log-uniformly (read from the space files; LOG_X when a space is unknown) when the values span more
    than 4x; one bin per value when a parameter takes at most `bins` values, else equal-width bins (of log x on log
    axes), then neighbouring bins merged until each holds at least `min_bin` models of that space; a bin sits at the
    median of its values. Categorical parameters (choice and power-of-two, such as b and g): a strip of the models
    per category and its mean with the interval as an error bar, never a line joining categories. Intervals are
    drawn only for bins of at least 3 models, and the y axis covers every interval drawn. A per-stage parameter a
    space shares across stages is drawn once (see _panels). progress(done, total) is called after each panel."""
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise DseError(f"bins must be a positive integer: got {bins!r}")
    ok = finished(df, metric)
    chosen = _resolve(ok, params)
    y = pd.to_numeric(ok[metric], errors="coerce").to_numpy(dtype=float)
    lab = ok[by].astype(str).to_numpy() if by in ok.columns else np.full(len(ok), "all")
    names = sorted(set(lab))
    logs, cats, known = _declared(names) if by in ok.columns else (set(), {}, False)
    if not known:
        logs, cats = logs | LOG_X, {k: set() for k in CATEGORICAL} | cats
    panels = _panels(ok, chosen, lab, names) if params is None or len(chosen) > 1 or \
        any(k.endswith("_i") for k in chosen) else [(c, {n: c for n in names}) for v in chosen.values() for c in v]
    if params is None:  # a panel whose drawn values do not vary says nothing
        panels = [(x, m) for x, m in panels if pd.concat([pd.to_numeric(ok.loc[lab == n, c], errors="coerce")
                                                          for n, c in m.items()]).nunique() > 1] or panels
    stage_cols = {c for k, v in chosen.items() if k.endswith("_i") for c in v}
    staged = [x for x, _ in panels if x in stage_cols]
    groups: dict[str, list] = {}
    for x in staged:
        groups.setdefault(x.rstrip("0123456789"), []).append(x)
    single = sorted((x for x, _ in panels if x not in staged),
                    key=lambda x: SCALARS.index(x) if x in SCALARS else len(SCALARS))
    ncols = max([len(v) for v in groups.values()] + [min(4, len(single))] + [1])
    nrows = len(groups) + -(-len(single) // ncols)
    where = {x: (r, c) for r, xs in enumerate(groups.values()) for c, x in enumerate(xs)}
    where |= {x: (len(groups) + i // ncols, i % ncols) for i, x in enumerate(single)}
    jitter = np.random.default_rng(0).uniform(-0.07, 0.07, len(ok))
    bounds = (0.0, 100.0) if units(metric) else None  # a mean percentage cannot leave 0-100
    lo_all, hi_all = [np.nanmin(y)] if np.isfinite(y).any() else [], [np.nanmax(y)] if np.isfinite(y).any() else []
    with rc_context(STYLE):
        fig = Figure(figsize=(2.9 * ncols + 0.4, 2.5 * nrows + 0.9), layout="constrained")
        gs = fig.add_gridspec(nrows, ncols)
        first = None
        for done, (xlabel, cols) in enumerate(panels):
            r, c = where[xlabel]
            ax = fig.add_subplot(gs[r, c], sharey=first)
            first = first or ax
            x = np.full(len(ok), np.nan)
            for name, col in cols.items():
                sel = lab == name
                x[sel] = pd.to_numeric(ok.loc[sel, col], errors="coerce").to_numpy(dtype=float)
            m = np.isfinite(x)
            kind = xlabel if xlabel in SCALARS else xlabel.rstrip("0123456789")
            cat = kind in cats and m.any()
            log = (not cat and (kind in logs or kind in COUNTS) and m.any() and bool(np.all(x[m] > 0))
                   and x[m].max() > 4 * x[m].min())
            if cat:
                u = np.unique(np.r_[x[m], sorted(cats[kind])])  # every declared value gets a place
                pos = np.full(len(x), np.nan)
                pos[m] = np.searchsorted(u, x[m])
            drawn = [n for n in names if n in cols and (m & (lab == n)).any()]
            width = 0.7 / max(len(drawn), 1)
            for i, name in enumerate(names):
                colour, sel = f"C{i % 10}", m & (lab == name)
                if name not in drawn:
                    continue
                if cat:  # a strip per category, then its mean and interval: no line joins categories
                    dx = (drawn.index(name) - (len(drawn) - 1) / 2) * width
                    ax.scatter(pos[sel] + dx + jitter[sel] * width * 4, y[sel], s=9, color=colour, alpha=0.45,
                               linewidths=0, zorder=2)
                    t = bin_means(pos[sel].astype(int), y[sel], ci, bounds=bounds)
                    cx = t.index.to_numpy(dtype=float) + dx
                    ax.plot(cx, t["mean"], linestyle="none", marker="o", color=colour, markersize=4.5, label=name,
                            zorder=4)
                    ax.errorbar(cx, t["mean"], yerr=[t["mean"] - t["lo"], t["hi"] - t["mean"]], fmt="none",
                                ecolor=colour, elinewidth=1.2, capsize=2.5, zorder=4)
                else:
                    ax.scatter(x[sel], y[sel], s=10, color=colour, alpha=0.45, linewidths=0, zorder=2)
                    nb = bins if np.unique(x[sel]).size <= bins else int(np.clip(sel.sum() // 8, 3, max(bins, 3)))
                    key, centres = _bins(x[sel], nb, log, min_bin)
                    t = bin_means(key, y[sel], ci, bounds=bounds)
                    cx = centres[t.index.to_numpy(dtype=int)]
                    ax.plot(cx, t["mean"], "-o", color=colour, markersize=3.5, label=name, zorder=4)
                    ax.fill_between(cx, t["lo"], t["hi"], color=colour, alpha=0.18, linewidth=0, zorder=3)
                lo_all += [v for v in t["lo"] if np.isfinite(v)]
                hi_all += [v for v in t["hi"] if np.isfinite(v)]
            if cat:
                ax.set_xticks(np.arange(u.size), [f"{v:g}" for v in u])
                ax.set_xlim(-0.6, u.size - 0.4)
            elif log:
                _log_x(ax, kind)
            elif kind in COUNTS:
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(_metric_label(metric))
            else:
                ax.tick_params(labelleft=False)
            if progress is not None:
                progress(done + 1, len(panels))
        if lo_all:  # the models and every interval drawn set the y range: no error bar runs off its axes
            lo, hi = min(lo_all), max(hi_all)
            pad = 0.04 * max(hi - lo, 1e-9)
            first.set_ylim(lo - pad, hi + pad)
        seen = {}
        for ax in fig.axes:
            for h, label in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(label, h)
        labels = sorted(seen)
        fig.legend([seen[k] for k in labels], labels, loc="outside lower center", ncols=min(len(labels), 6))
        fig.suptitle(f"{metric} vs design parameters: {len(ok)} models (points)\nper {by}: the mean per bin (at least "
                     f"{min_bin} models; one bin per category) and its {ci:.0%} t-interval where a bin has 3 or more"
                     + (" (clipped to 0-100%)" if units(metric) else ""))
    return fig


# ---------------------------------------------------------------- widths and width fits

def widths_figure(df: pd.DataFrame, top: int = 20, metric: str = "error", by: str = "space") -> Figure:
    """Per-block widths of the top-K models of each space by the metric (one panel per space) on a log2 axis,
    coloured by the metric on one scale for all panels."""
    ok = finished(df, metric)
    lab = ok[by].astype(str) if by in ok.columns else pd.Series("all", index=ok.index)
    names = sorted(lab.unique())
    parts = [(k, best(ok[lab == k], top, metric), int((lab == k).sum())) for k in names]
    vals = np.concatenate([pd.to_numeric(r[metric]).to_numpy(dtype=float) for _, r, _ in parts])
    norm = Normalize(vals.min(), vals.max() if vals.max() > vals.min() else vals.min() + 1)
    sm = ScalarMappable(norm=norm, cmap="viridis" if ascending(metric) else "viridis_r")
    ncols = min(3, len(parts))
    nrows = -(-len(parts) // ncols)
    with rc_context(STYLE):
        fig = Figure(figsize=(4.2 * ncols + 1.0, 3.3 * nrows + 0.5), layout="constrained")
        axs = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        for ax, (k, rows, n) in zip(axs.flat, parts):
            ws = [block_widths(r) for _, r in rows.iterrows()]
            v = pd.to_numeric(rows[metric]).to_numpy(dtype=float)
            for w, x in reversed(list(zip(ws, v))):  # worst first, so the best are drawn on top
                ax.plot(np.arange(len(w)), w, drawstyle="steps-mid", color=sm.to_rgba(x), alpha=0.8, linewidth=0.9)
            _log2_y(ax)
            ax.set_xlabel("block index $j$")
            ax.set_title(f"{k}: best {len(rows)} of {n}" if len(parts) > 1 or by in ok.columns
                         else f"best {len(rows)} of {n}")
        for ax in axs[:, 0]:
            ax.set_ylabel("width $w_j$")
        for ax in list(axs.flat)[len(parts):]:
            ax.set_visible(False)
        k = max(len(r) for _, r, _ in parts)
        fig.suptitle(f"per-block widths of the best {k} models" + (f" of each {by}" if len(parts) > 1 else "")
                     + f" by {metric}")
        fig.colorbar(sm, ax=axs, label=_metric_label(metric))
    return fig


def fit_figure(ws, fit) -> Figure:
    """Target widths w_j, the linear u_j = w0 + wa*j and the fitted quantized widths of a dse.analysis.fit.Fit."""
    w = np.asarray(ws, dtype=float)
    if w.ndim != 1 or len(w) != fit.d:
        raise DseError(f"fit_figure: {len(np.atleast_1d(w))} widths but the fit has d={fit.d}")
    j = np.arange(fit.d)
    with rc_context(STYLE):
        fig = Figure(figsize=(5.2, 3.6), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(j, w, "o", color="0.2", markersize=5, label="$w_j$ (target)")
        ax.plot(j, linear_widths(fit.d, fit.w0, fit.wa), "--", color="C1", label="$u_j = w_0 + w_a j$")
        ax.plot(j, fit.widths, drawstyle="steps-mid", color="C0", label="quantized fit")
        _log2_y(ax)
        ax.set_xlabel("block index $j$")
        ax.set_ylabel("width")
        ax.set_title(f"d={fit.d}, w0={_fmt(fit.w0)}, wa={_fmt(fit.wa)}, wm={fit.wm:.3f}, e_fit={fit.e_fit:.4f}")
        ax.legend(loc="upper left")
    return fig


def _families(labels) -> dict:
    """{label: its space's family (anynet, regnet, effnet)} for the labels whose space file is found."""
    from dse.space.sampler import load

    out = {}
    for label in labels:
        try:
            out[label] = load(str(label).rsplit("/", 1)[-1]).family
        except (DseError, OSError, ValueError, KeyError):
            pass
    return out


def fits_figure(fits: pd.DataFrame, metric: str = "error", by: str = "space") -> Figure:
    """Quantized-linear fits of a sweep's models, one colour per space: e_fit against the metric with Spearman's rho
    per space in the legend, and the fitted w0, wa and wm per space as step histograms on log axes.

    RegNet spaces are left out of the e_fit panel, and the figure says so: their widths come from the rule itself,
    so e_fit is 0 by construction (up to the group-width adjustment) and says nothing about the error."""
    from dse.analysis.table import spearman

    missing = [c for c in (metric, "e_fit", "w0", "wa", "wm") if c not in fits.columns]
    if missing:
        raise DseError(f"fits table has no column {missing[0]!r} (it has: {', '.join(map(str, fits.columns))})")
    t = fits[[metric, "e_fit", "w0", "wa", "wm"]].apply(pd.to_numeric, errors="coerce")
    keep = np.isfinite(t.to_numpy(dtype=float)).all(axis=1)
    t = t[keep].assign(_g=(fits[by].astype(str) if by in fits.columns else pd.Series("all", index=fits.index))[keep])
    if t.empty:
        raise DseError("fits table has no row with finite values")
    names = sorted(t["_g"].unique())
    fam = _families(names)
    rule = [k for k in names if fam.get(k) == "regnet" or (k not in fam and (t.loc[t["_g"] == k, "e_fit"] < 1e-9).all()
                                                          and (t["_g"] == k).sum() > 1)]
    with rc_context(STYLE):
        fig = Figure(figsize=(11.2, 3.1), layout="constrained")
        axs = fig.subplots(1, 4)
        ax = axs[0]
        for i, k in enumerate(names):
            g = t[t["_g"] == k]
            if k in rule:
                continue
            rho, p = spearman(g["e_fit"], g[metric])
            ax.scatter(g["e_fit"], g[metric], s=11, color=f"C{i % 10}", alpha=0.7, linewidths=0,
                       label=f"{k} (n={len(g)}, rho {rho:.2f})" if rho == rho else f"{k} (n={len(g)})")
        ax.set_xlabel("e_fit")
        ax.set_ylabel(_metric_label(metric))
        if ax.collections:
            ax.legend(loc="best", fontsize=7, handletextpad=0.2)
        ax.set_title("e_fit vs " + metric + (f"\n{', '.join(rule)} left out: e_fit = 0 by construction" if rule
                                             else ""), fontsize=8)
        handles = {}
        for ax, p in zip(axs[1:], ("w0", "wa", "wm")):
            v = t[p].to_numpy(dtype=float)
            pos = v[v > 0]  # wa = 0 (a model of one width) has no place on a log axis: counted in the title
            log = pos.size > 0 and pos.max() > pos.min()
            edges = np.geomspace(pos.min(), pos.max(), 16) if log else np.histogram_bin_edges(v, bins=15)
            for i, k in enumerate(names):
                vals = t.loc[t["_g"] == k, p].to_numpy(dtype=float)
                _, _, patches = ax.hist(vals[vals > 0] if log else vals, bins=edges, histtype="step",
                                        color=f"C{i % 10}", linewidth=1.3)
                handles.setdefault(k, patches[0])
            if log:
                _log_x(ax, p)
            zero = int((v <= 0).sum()) if log else 0
            if zero:
                ax.set_title(f"{zero} models with {p} = 0 (one width) not shown", fontsize=8)
            ax.set_xlabel(p)
            ax.set_ylabel("models")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 6))
        fig.suptitle(f"quantized linear fits of {len(t)} models, per {by}: e_fit against {metric}, and the fitted "
                     "w0, wa, wm (log axes)")
    return fig


# ---------------------------------------------------------------- low-epoch validity and live curves

def rank_figure(er: pd.DataFrame) -> Figure:
    """Spearman rho of the epoch-k val error with the final error against k (dse.analysis.rank.epoch_rank), one line
    per space and the spaces together ('all', dashed); open markers where n < 4 (no p-value)."""
    from dse.analysis.table import MIN_P

    if er.empty:
        raise DseError("no per-epoch errors to draw")
    names = sorted(set(er["space"]) - {"all"})
    with rc_context(STYLE):
        fig = Figure(figsize=(6.4, 3.8), layout="constrained")
        ax = fig.add_subplot()
        for i, k in enumerate(names + ["all"]):
            g = er[er["space"] == k].sort_values("epoch")
            if g.empty:
                continue
            col, ls = ("0.25", "--") if k == "all" else (f"C{i % 10}", "-")
            n = int(g["n"].max())
            ax.plot(g["epoch"], g["rho"], ls, color=col, marker="o", markersize=3.5, label=f"{k} (n={n})")
            few = g[g["n"] < MIN_P]
            if len(few):
                ax.plot(few["epoch"], few["rho"], "o", color="white", markeredgecolor=col, markersize=3.5)
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("epoch k")
        ax.set_ylabel("Spearman rho (epoch k vs final)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right")
        ax.set_title("low-epoch validity: rank correlation of the epoch-k val error with the final error\n"
                     "rho near 1 early: short runs already rank the models as full runs do")
    return fig


def curves_figure(curves: pd.DataFrame, by: str = "space") -> Figure:
    """Live training curves (dse.load_curves): val error and train loss against the epoch, one thin line per trial,
    one colour per space."""
    if curves is None or len(curves) == 0:
        raise DseError("no epoch recorded yet: nothing to draw")
    names = sorted(curves[by].astype(str).unique())
    with rc_context(STYLE):
        fig = Figure(figsize=(10.4, 3.8), layout="constrained")
        axs = fig.subplots(1, 2, sharex=True)
        for i, k in enumerate(names):
            sel = curves[curves[by].astype(str) == k]
            for j, (_, g) in enumerate(sel.groupby("key", sort=False)):
                g = g.sort_values("epoch")
                for ax, m in zip(axs, ("val_error", "train_loss")):
                    if m in g:
                        ax.plot(g["epoch"], pd.to_numeric(g[m], errors="coerce"), "-o", color=f"C{i % 10}",
                                alpha=0.6, linewidth=0.9, markersize=2.5,
                                label=f"{k} ({sel['key'].nunique()} trials)" if j == 0 else None)
        axs[0].set_ylabel("val error (%)")
        axs[1].set_ylabel("train loss")
        for ax in axs:
            ax.set_xlabel("epoch")
            ax.set_xlim(0.5, int(curves["epoch"].max()) + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axs[0].legend(loc="upper right")
        fig.suptitle(f"training curves of {curves['key'].nunique()} trials ({len(curves)} epochs recorded), one line "
                     f"per trial, one colour per {by}")
    return fig


# ---------------------------------------------------------------- searches

def search_curves(df: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """Per search (run/searcher/scheduler) and trial in finish order: cumulative trial-epochs and trial-seconds spent,
    and the best metric among the trials completed so far (stopped trials cost compute but complete no model)."""
    if "searcher" not in df.columns:
        raise DseError("not a search: the table has no 'searcher' column (run dse search)")
    asc = ascending(metric)
    t = df[df["repeat"].fillna(0) == 0] if "repeat" in df.columns else df
    keys = [c for c in ("run", "searcher", "scheduler") if c in t.columns]
    parts = []
    for k, g in t.groupby(keys, sort=True):
        v = pd.to_numeric(g[metric], errors="coerce").where(g["status"] == "ok").to_numpy(dtype=float)
        fill = np.inf if asc else -np.inf
        acc = np.fmin.accumulate if asc else np.fmax.accumulate
        bestv = acc(np.where(np.isnan(v), fill, v))
        parts.append(pd.DataFrame({
            "search": "/".join(map(str, k if isinstance(k, tuple) else (k,))), "trial": np.arange(1, len(g) + 1),
            "epochs": np.cumsum(pd.to_numeric(g.get("epochs"), errors="coerce").fillna(0).to_numpy()),
            "seconds": np.cumsum(pd.to_numeric(g.get("wall"), errors="coerce").fillna(0).to_numpy()),
            "best": np.where(np.isfinite(bestv), bestv, np.nan)}))
    return pd.concat(parts, ignore_index=True)


def search_figure(df: pd.DataFrame, metric: str = "error") -> Figure:
    """Best completed metric against the compute spent (trial-epochs, trial-seconds), one line per search."""
    c = search_curves(df, metric)
    with rc_context(STYLE):
        fig = Figure(figsize=(9.6, 3.6), layout="constrained")
        axs = fig.subplots(1, 2, sharey=True)
        for i, (name, g) in enumerate(c.groupby("search", sort=True)):
            n = len(g)
            for ax, x in zip(axs, ("epochs", "seconds")):
                ax.step(g[x], g["best"], where="post", color=f"C{i % 10}", label=f"{name} ({n} trials)")
        axs[0].set_xlabel("compute spent (trial-epochs)")
        axs[1].set_xlabel("compute spent (trial-seconds)")
        axs[0].set_ylabel(f"best {_metric_label(metric)} so far")
        axs[0].legend(loc="best")
        better = "lower" if ascending(metric) else "higher"
        fig.suptitle(f"search progress: best completed model against compute ({better} is better; stopped trials "
                     "count as compute)")
    return fig


# ---------------------------------------------------------------- output

FORMATS = ("png", "svg", "pdf")
META = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}  # no dates: same figure, same bytes


def save(fig: Figure, path, force: bool = False) -> Path:
    """Render fig to .png, .svg or .pdf (by suffix) in memory, then write it atomically; refuses to overwrite unless
    force."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise DseError(f"{p}: unsupported figure format {p.suffix or '(none)'!r}: use .png, .svg or .pdf")
    check_new(p, force)
    buf = io.BytesIO()
    with rc_context(STYLE):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=META.get(fmt))
    return write_atomic(p, buf.getvalue(), force=force)
