"""Figures of sweep results (Radosavovic et al. 2019/2020): error EDFs, metric vs parameters, widths, width fits.

Every function builds a matplotlib.figure.Figure directly (no pyplot, so no global figure state) under one style
(STYLE, applied with rc_context) and returns it; save() writes one to .png or .svg atomically.
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
from dse.analysis.table import ascending, best, block_widths, finished, stage_columns
from dse.errors import DseError
from dse.io import check_new, write_atomic
from dse.regnet import linear_widths

STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
    "axes.spines.right": False, "lines.linewidth": 1.6, "legend.frameon": False, "figure.dpi": 100,
    "svg.hashsalt": "dse", "image.cmap": "viridis",
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
SCALARS = ("d", "w0", "wa", "wm", "b", "g", "flops", "params", "acts")
DEFAULT_SKIP = ("acts",)  # plotted only when asked for
LOG_X = {"w", "w0", "wa", "flops", "params", "acts"}
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

def edf_figure(df: pd.DataFrame, by: str = "space", normalized: str | None = None, band: bool = False,
               metric: str = "error", bins: int = 10, n_boot: int = 1000, seed: int = 0) -> Figure:
    """Step EDFs F(e) = fraction of models with metric < e per group; legend: n, min, mean of the finished rows."""
    if metric not in df.columns:
        raise DseError(f"unknown column {metric!r}: the table has {', '.join(map(str, df.columns))}")
    t = df.assign(error=pd.to_numeric(df[metric], errors="coerce")) if metric != "error" else df
    curves = edfs(t, by=by, normalized=normalized, n_boot=n_boot if band else 0, bins=bins, seed=seed)
    ok = finished(t, "error")
    stats = ok.groupby(ok[by])["error"].agg(["size", "min", "mean"])
    with rc_context(STYLE):
        fig = Figure(figsize=(5.2, 3.8), layout="constrained")
        ax = fig.add_subplot()
        for i, (k, c) in enumerate(curves.groupby("group", sort=False)):
            n, lo, mean = stats.loc[k]
            col = f"C{i % 10}"
            ax.step(c["e"], c["F"], where="pre", color=col,
                    label=f"{k} (n={int(n)}, min {lo:.1f}, mean {mean:.1f})")
            if band:
                ax.fill_between(c["e"], c["lo"], c["hi"], step="pre", color=col, alpha=0.2, linewidth=0)
        ax.set_xlim(curves["e"].min(), curves["e"].max())
        ax.set_ylim(0, 1)
        ax.set_xlabel(_metric_label(metric))
        ax.set_ylabel("cumulative prob.")
        title = f"{metric} EDF" + (f", normalized by {normalized}" if normalized else "")
        ax.set_title(title + (" (95% bootstrap band)" if band else ""))
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


def _trend(x: np.ndarray, y: np.ndarray, bins: int, log: bool, asc: bool):
    """Per bin of x: (centre, best, mean); one bin per distinct x when there are at most `bins` of them."""
    u = np.unique(x)
    if u.size <= bins:
        key, centres = np.searchsorted(u, x), u
    else:
        f, finv = (np.log10, lambda v: 10 ** v) if log else (np.asarray, np.asarray)
        edges = np.linspace(f(u[0]), f(u[-1]), bins + 1)
        key = np.clip(np.searchsorted(edges, f(x), side="right") - 1, 0, bins - 1)
        centres = finv((edges[:-1] + edges[1:]) / 2)
    g = pd.Series(y).groupby(key)
    b = g.min() if asc else g.max()
    return centres[b.index.to_numpy()], b.to_numpy(), g.mean().to_numpy()


def params_figure(df: pd.DataFrame, params=None, metric: str = "error", bins: int = 10) -> Figure:
    """The metric against each design parameter (scatter) with the best and the mean per bin of the parameter."""
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise DseError(f"bins must be a positive integer: got {bins!r}")
    ok = finished(df, metric)
    chosen = _resolve(ok, params)
    y = pd.to_numeric(ok[metric], errors="coerce").to_numpy(dtype=float)
    asc = ascending(metric)
    staged = {k: v for k, v in chosen.items() if k.endswith("_i")}
    single = [c for k, v in chosen.items() if not k.endswith("_i") for c in v]
    ncols = max([len(v) for v in staged.values()] + [min(4, len(single))] + [1])
    nrows = len(staged) + -(-len(single) // ncols)
    cells = [(r, c, col) for r, cols in enumerate(staged.values()) for c, col in enumerate(cols)]
    cells += [(len(staged) + i // ncols, i % ncols, col) for i, col in enumerate(single)]
    with rc_context(STYLE):
        fig = Figure(figsize=(2.6 * ncols + 0.4, 2.2 * nrows + 0.5), layout="constrained")
        gs = fig.add_gridspec(nrows, ncols)
        first = None
        for r, c, col in cells:
            ax = fig.add_subplot(gs[r, c], sharey=first)
            first = first or ax
            x = pd.to_numeric(ok[col], errors="coerce").to_numpy(dtype=float)
            m = np.isfinite(x)
            kind = col if col in SCALARS else col.rstrip("0123456789")
            # log only where natural (widths, complexity) and the values span more than 4x
            log = kind in LOG_X and m.any() and bool(np.all(x[m] > 0)) and x[m].max() > 4 * x[m].min()
            ax.scatter(x[m], y[m], s=10, color="0.45", alpha=0.5, linewidths=0, label="models", zorder=3)
            if m.any():
                cx, yb, ym = _trend(x[m], y[m], bins, log, asc)
                ax.plot(cx, yb, "-o", color="C0", markersize=3, alpha=0.9, label="best")
                ax.plot(cx, ym, "-o", color="C1", markersize=3, alpha=0.9, label="mean")
            if log:
                _log_x(ax, kind)
            elif kind in COUNTS:
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.set_xlabel(col)
            if c == 0:
                ax.set_ylabel(_metric_label(metric))
            else:
                ax.tick_params(labelleft=False)
        first.legend(loc="best")
        fig.suptitle(f"{metric} vs design parameters ({len(ok)} models; lines: best and mean per bin)")
    return fig


# ---------------------------------------------------------------- widths and width fits

def widths_figure(df: pd.DataFrame, top: int = 20, metric: str = "error") -> Figure:
    """Per-block widths of the top-K models by the metric on a log2 axis, coloured by the metric."""
    rows = best(df, top, metric)
    vals = pd.to_numeric(rows[metric]).to_numpy(dtype=float)
    ws = [block_widths(r) for _, r in rows.iterrows()]
    norm = Normalize(vals.min(), vals.max() if vals.max() > vals.min() else vals.min() + 1)
    sm = ScalarMappable(norm=norm, cmap="viridis" if ascending(metric) else "viridis_r")
    with rc_context(STYLE):
        fig = Figure(figsize=(5.6, 3.8), layout="constrained")
        ax = fig.add_subplot()
        for w, v in reversed(list(zip(ws, vals))):  # worst first, so the best are drawn on top
            ax.plot(np.arange(len(w)), w, drawstyle="steps-mid", color=sm.to_rgba(v), alpha=0.85)
        _log2_y(ax)
        ax.set_xlabel("block index $j$")
        ax.set_ylabel("width $w_j$")
        ax.set_title(f"per-block widths of the top {len(rows)} models by {metric}")
        fig.colorbar(sm, ax=ax, label=_metric_label(metric))
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


def fits_figure(fits: pd.DataFrame, metric: str = "error") -> Figure:
    """One row per fitted model: e_fit vs the metric, and histograms of the fitted w0, wa and wm."""
    missing = [c for c in (metric, "e_fit", "w0", "wa", "wm") if c not in fits.columns]
    if missing:
        raise DseError(f"fits table has no column {missing[0]!r} (it has: {', '.join(map(str, fits.columns))})")
    t = fits[[metric, "e_fit", "w0", "wa", "wm"]].apply(pd.to_numeric, errors="coerce")
    t = t[np.isfinite(t.to_numpy(dtype=float)).all(axis=1)]
    if t.empty:
        raise DseError("fits table has no row with finite values")
    with rc_context(STYLE):
        fig = Figure(figsize=(10.4, 2.8), layout="constrained")
        axs = fig.subplots(1, 4)
        axs[0].scatter(t["e_fit"], t[metric], s=10, color="C0", alpha=0.7, linewidths=0)
        axs[0].set_xlabel("e_fit")
        axs[0].set_ylabel(_metric_label(metric))
        for ax, p in zip(axs[1:], ("w0", "wa", "wm")):
            v = t[p].to_numpy(dtype=float)
            log = p != "wm" and bool(np.all(v > 0)) and v.max() > 4 * v.min()
            edges = np.geomspace(v.min(), v.max(), 16) if log else np.histogram_bin_edges(v, bins="auto")
            ax.hist(v, bins=edges, color="C0", alpha=0.8)
            if log:
                _log_x(ax, p)
            ax.set_xlabel(p)
            ax.set_ylabel("models")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.suptitle(f"quantized linear fits of {len(t)} models")
    return fig


# ---------------------------------------------------------------- output

def save(fig: Figure, path, force: bool = False) -> Path:
    """Render fig to .png or .svg (by suffix) in memory, then write it atomically; refuses to overwrite unless force."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise DseError(f"{p}: unsupported figure format {p.suffix or '(none)'!r}: use .png or .svg")
    check_new(p, force)
    buf = io.BytesIO()
    with rc_context(STYLE):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
    return write_atomic(p, buf.getvalue(), force=force)
