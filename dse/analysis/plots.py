"""Figures of sweep results (Radosavovic et al. 2019/2020): error EDFs, metric vs parameters, widths, width fits.

Every function builds a matplotlib.figure.Figure directly (no pyplot, so no global figure state) under one style
(STYLE, applied with rc_context) and returns it; save() writes one to .png or .svg atomically. Figures draw the
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

def edf_figure(df: pd.DataFrame, by: str = "space", normalized: str | None = None, band: bool = False,
               metric: str = "error", bins: int = 10, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> Figure:
    """Step EDFs F(e) = fraction of models with metric < e per group; legend: n, best (min for errors, max for
    rewards) and mean of the finished rows; the title names the rows, the normalisation and the band."""
    if metric not in df.columns:
        raise DseError(f"unknown column {metric!r}: the table has {', '.join(map(str, df.columns))}")
    t = df.assign(error=pd.to_numeric(df[metric], errors="coerce")) if metric != "error" else df
    curves = edfs(t, by=by, normalized=normalized, n_boot=n_boot if band else 0, bins=bins, seed=seed, ci=ci)
    ok = finished(t, "error")
    top = "min" if ascending(metric) else "max"
    stats = ok.groupby(ok[by])["error"].agg(["size", top, "mean"])
    with rc_context(STYLE):
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.add_subplot()
        for i, (k, c) in enumerate(curves.groupby("group", sort=False)):
            n, b, mean = stats.loc[k]
            col = f"C{i % 10}"
            f = ".1f" if units(metric) else ".3g"
            ax.step(c["e"], c["F"], where="pre", color=col, label=f"{k} (n={int(n)}, {top} {b:{f}}, mean {mean:{f}})")
            if band:
                ax.fill_between(c["e"], c["lo"], c["hi"], step="pre", color=col, alpha=0.2, linewidth=0)
        ax.set_xlim(curves["e"].min(), curves["e"].max())
        ax.set_ylim(0, 1)
        ax.set_xlabel(_metric_label(metric))
        ax.set_ylabel("cumulative prob.")
        title = (f"{metric} EDF of {len(ok)} models, one curve per {by}"
                 + (f", normalized by {normalized}" if normalized else ""))
        if band:
            title += f"\nshaded: pointwise {ci:.0%} bootstrap band ({n_boot} resamples)"
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
    from dse.space import load

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


def _bins(x: np.ndarray, bins: int, log: bool):
    """(bin key of each x, bin centres): one bin per distinct value when there are at most `bins` of them, else
    `bins` equal-width bins of x (of log10 x when log)."""
    u = np.unique(x)
    if u.size <= bins:
        return np.searchsorted(u, x), u
    f, finv = (np.log10, lambda v: 10 ** v) if log else (np.asarray, np.asarray)
    edges = np.linspace(f(u[0]), f(u[-1]), bins + 1)
    return np.clip(np.searchsorted(edges, f(x), side="right") - 1, 0, bins - 1), finv((edges[:-1] + edges[1:]) / 2)


def bin_means(key: np.ndarray, y: np.ndarray, ci: float = 0.95, min_n: int = 3) -> pd.DataFrame:
    """Per bin key: n, mean and the t interval of the mean (lo, hi; NaN for a bin of fewer than min_n models, whose
    interval would span the plot: t_0.975 is 12.7 with 2 models)."""
    from scipy.stats import t as student

    g = pd.Series(y).groupby(key)
    out = pd.DataFrame({"n": g.size(), "mean": g.mean(), "sd": g.std(ddof=1)})
    with np.errstate(invalid="ignore", divide="ignore"):
        h = student.ppf((1 + ci) / 2, out["n"] - 1) * out["sd"] / np.sqrt(out["n"])
    h = h.where(out["n"] >= min_n)
    return out.assign(lo=out["mean"] - h, hi=out["mean"] + h).drop(columns="sd")


def params_figure(df: pd.DataFrame, params=None, metric: str = "error", bins: int = 10, by: str = "space",
                  ci: float = 0.95) -> Figure:
    """The metric against each design parameter: the models as points and, per space (one colour each), the mean
    of the metric per bin of the parameter with its ci t-interval (a band, or error bars on categorical axes).

    Axes: log for parameters the spaces sample log-uniformly (read from the space files; LOG_X when a space is
    unknown) when the values span more than 4x; categorical (equally spaced values) for choice and power-of-two
    parameters such as b and g; one bin per value when a parameter takes at most `bins` values, else equal-width
    bins (of log x on log axes), as many as keep about 8 models of the smallest space per bin (3 to `bins`). Bins of
    fewer than 3 models get a mean but no interval."""
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
    staged = {k: v for k, v in chosen.items() if k.endswith("_i")}
    single = [c for k, v in chosen.items() if not k.endswith("_i") for c in v]
    ncols = max([len(v) for v in staged.values()] + [min(4, len(single))] + [1])
    nrows = len(staged) + -(-len(single) // ncols)
    cells = [(r, c, col) for r, cols in enumerate(staged.values()) for c, col in enumerate(cols)]
    cells += [(len(staged) + i // ncols, i % ncols, col) for i, col in enumerate(single)]
    jitter = np.random.default_rng(0).uniform(-0.05, 0.05, len(ok))
    nbins = int(np.clip(min((lab == k).sum() for k in names) // 8, 3, max(bins, 3))) if bins > 3 else bins
    with rc_context(STYLE):
        fig = Figure(figsize=(2.9 * ncols + 0.4, 2.5 * nrows + 0.9), layout="constrained")
        gs = fig.add_gridspec(nrows, ncols)
        first = None
        for r, c, col in cells:
            ax = fig.add_subplot(gs[r, c], sharey=first)
            first = first or ax
            x = pd.to_numeric(ok[col], errors="coerce").to_numpy(dtype=float)
            m = np.isfinite(x)
            kind = col if col in SCALARS else col.rstrip("0123456789")
            cat = kind in cats and m.any()
            log = (not cat and (kind in logs or kind in COUNTS) and m.any() and bool(np.all(x[m] > 0))
                   and x[m].max() > 4 * x[m].min())
            if cat:
                u = np.unique(np.r_[x[m], sorted(cats[kind])])  # every declared value gets a place
                pos = np.full(len(x), np.nan)
                pos[m] = np.searchsorted(u, x[m])
                key, centres = pos, np.arange(u.size, dtype=float)
            elif m.any():
                key = np.full(len(x), -1)
                key[m], centres = _bins(x[m], nbins, log) if np.unique(x[m]).size > bins else _bins(x[m], bins, log)
            for i, name in enumerate(names):
                colour, sel = f"C{i % 10}", m & (lab == name)
                if not sel.any():
                    continue
                dx = (i - (len(names) - 1) / 2) * 0.12 if cat else 0.0
                px = pos[sel] + dx + jitter[sel] if cat else x[sel]
                ax.scatter(px, y[sel], s=10, color=colour, alpha=0.45, linewidths=0, zorder=2)
                t = bin_means(key[sel], y[sel], ci)
                cx = centres[t.index.to_numpy(dtype=int)] + dx
                ax.plot(cx, t["mean"], "-o", color=colour, markersize=3.5, label=name, zorder=4)
                if cat:
                    ax.errorbar(cx, t["mean"], yerr=[t["mean"] - t["lo"], t["hi"] - t["mean"]], fmt="none",
                                ecolor=colour, elinewidth=1.2, capsize=2.5, zorder=4)
                else:
                    ax.fill_between(cx, t["lo"], t["hi"], color=colour, alpha=0.18, linewidth=0, zorder=3)
            if cat:
                ax.set_xticks(np.arange(u.size), [f"{v:g}" for v in u])
                ax.set_xlim(-0.6, u.size - 0.4)
            elif log:
                _log_x(ax, kind)
            elif kind in COUNTS:
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.set_xlabel(col)
            if c == 0:
                ax.set_ylabel(_metric_label(metric))
            else:
                ax.tick_params(labelleft=False)
        if np.isfinite(y).any():  # the models set the y range; wider bands (few models in a bin) are clipped
            pad = 0.06 * max(np.ptp(y[np.isfinite(y)]), 1e-9)
            first.set_ylim(np.nanmin(y) - pad, np.nanmax(y) + pad)
        seen = {}
        for ax in fig.axes:
            for h, label in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(label, h)
        labels = sorted(seen)
        fig.legend([seen[k] for k in labels], labels, loc="outside lower center", ncols=min(len(labels), 6))
        fig.suptitle(f"{metric} vs design parameters: {len(ok)} models (points); lines: mean per bin and "
                     f"{by} with its {ci:.0%} interval (t)")
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
                ax.plot(np.arange(len(w)), w, drawstyle="steps-mid", color=sm.to_rgba(x), alpha=0.85)
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
