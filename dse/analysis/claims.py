"""The papers' claims a table of arms holds, as lines and figures for `dse run` and the report: FixRes's test sizes
and fine-tuning (dse.analysis.fixres), progressive learning's time to the fixed arm's error
(dse.analysis.progressive), and, for arms of one network each (compound against single-dimension scaling), the
error of each arm against its training FLOPs with 95% intervals. Reads the results table only."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dse.analysis import fixres, progressive
from dse.analysis.table import primary_mask, seed_rows, single_networks


def _has(df: pd.DataFrame, col: str, n: int = 0) -> bool:
    return col in df.columns and df[col].map(lambda v: isinstance(v, (dict, list)) and len(v) > n).any()


def _arms(df: pd.DataFrame) -> bool:
    return "arm" in df.columns and df["arm"].notna().any()


def lines(df: pd.DataFrame, noise: float = math.nan) -> list[str]:
    """FixRes's lines (rows tested at several sizes) and progressive learning's (arms with a schedule)."""
    out = []
    if _has(df, "test_errors", 1):
        out += fixres.lines(df, noise)
    if _arms(df) and _has(df, "schedule"):
        out += progressive.lines(df, noise)
    return out


def figures(df: pd.DataFrame) -> list[tuple[str, callable]]:
    """(title, make) of each claim figure the table supports."""
    out = []
    if _has(df, "test_errors", 1):
        out.append(("FixRes: error at each test size against the training size, per arm", lambda: fixres_figure(df)))
    if _arms(df) and _has(df, "schedule"):
        out.append(("Progressive learning: validation error against training time, per arm",
                    lambda: progress_figure(df)))
    if _arms(df) and single_networks(seed_rows(df).dropna(subset=["arm"])):
        out.append(("Scaling: error against training FLOPs, one network per arm", lambda: scaling_figure(df)))
    return out


def _floor(df: pd.DataFrame) -> str:
    """The run's noise floor as a figure states it."""
    from dse.analysis.noise import noise

    nz = noise(df).noise
    return f"noise floor {nz:.2g} points (median seed std)" if np.isfinite(nz) else "noise floor not measured"


def fixres_figure(df: pd.DataFrame) -> Figure:
    """Per arm: the paired delta (error at size - error at the training size) with its 95% interval, and, where
    measured, the same after fine-tuning at each size (dashed, still against the training size without it)."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    r, n = None, 0
    for i, arm in enumerate(fixres.arms_of(df)):
        s = fixres.summary(df, arm)
        r, n = s["train_size"], max(n, max(x["n"] for x in s["sizes"]))
        x = np.array([d["size"] for d in s["sizes"]], float)
        y = np.array([d["delta"] for d in s["sizes"]])
        err = np.array([[d["delta"] - d["ci_low"], d["ci_high"] - d["delta"]] for d in s["sizes"]]).T
        c = f"C{i}"
        ax.errorbar(x + 0.1 * i, y, yerr=err, color=c, marker="o", ms=4, capsize=3, lw=1.2,
                    label=f"{arm or 'all'}: tested at each size")
        if s["tuned"]:
            x = np.array([d["size"] for d in s["tuned"]], float)
            y = np.array([d["delta"] for d in s["tuned"]])
            err = np.array([[d["delta"] - d["ci_low"], d["ci_high"] - d["delta"]] for d in s["tuned"]]).T
            ax.errorbar(x + 0.1 * i + 0.2, y, yerr=err, color=c, marker="*", ms=8, capsize=3, lw=1.2, ls="--",
                        label=f"{arm or 'all'}: fine-tuned at each size (best {s['finetune']['size']} px)")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("test size (px)")
    ax.set_ylabel(f"error - error at {r} px (points)")
    ax.set_title(f"Trained at {r} px: error at each test size minus error at {r} px without fine-tuning\n"
                 f"paired over n = {n} models, 95% bootstrap intervals; {_floor(df)}", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return fig


def progress_figure(df: pd.DataFrame) -> Figure:
    """Per arm: the median (over paired runs) validation error against the median cumulative training time."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    t = seed_rows(df)
    t = t[t["arm"].notna() & primary_mask(t)]  # the runs the verdicts pair: each model's first seed in every arm
    clock = progressive._clock(t)
    for i, (arm, g) in enumerate(t.groupby("arm", sort=False)):
        errs = np.array([e for e in g["errors"] if isinstance(e, list)], float)
        secs = np.cumsum(np.array([e for e in g[clock] if isinstance(e, list)], float), axis=1)
        if not len(errs):
            continue
        ax.plot(np.median(secs, 0), np.median(errs, 0), marker="o", ms=3, color=f"C{i}",
                label=f"{arm} (n = {len(errs)})")
        ax.fill_between(np.median(secs, 0), *np.quantile(errs, [0.25, 0.75], 0), color=f"C{i}", alpha=0.12, lw=0)
    ax.set_xlabel("training time, median over runs (s, " + ("training steps only)" if clock == "train_times"
                                                             else "validation included)"))
    ax.set_ylabel("validation error (%)")
    ax.set_title(f"Median error per epoch (band: the runs' q25-q75); {_floor(df)}", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return fig


def scaling_figure(df: pd.DataFrame) -> Figure:
    """Per arm (one network, several seeds): mean error with a 95% t interval over seeds, against the network's
    training multiply-adds per image (log axis); arms of one group share a marker."""
    from scipy.stats import t as student

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    t = seed_rows(df)
    t = t[t["arm"].notna()]
    kinds: dict[str, list] = {}
    for arm, g in t.groupby("arm", sort=False):
        e = pd.to_numeric(g["error"], errors="coerce").to_numpy(float)
        x = float(pd.to_numeric(g.get("train_flops", g["flops"]), errors="coerce").iloc[0])
        h = student.ppf(0.975, e.size - 1) * e.std(ddof=1) / math.sqrt(e.size) if e.size > 1 else 0.0
        kinds.setdefault(arm.split("@")[0], []).append((x, e.mean(), h, e.size))
    for i, (kind, pts) in enumerate(kinds.items()):  # one line per way of scaling, through its targets
        x, y, h, n = map(np.array, zip(*sorted(pts)))
        ax.errorbar(x, y, yerr=h, color=f"C{i}", marker="o", capsize=3, lw=1, label=kind)
        for xi, yi, ni in zip(x, y, n):
            ax.annotate(f"n={ni}", (xi, yi), fontsize=6, xytext=(4, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("training multiply-adds per image (at the arm's resolution)")
    ax.set_ylabel("error (%)")
    ax.set_title(f"Mean error over each network's seeds (n beside each point), 95% t intervals\n{_floor(df)}",
                 fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return fig
