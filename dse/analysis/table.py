"""Shared pieces of the analysis: reading several runs, the finished rows (and the noise repeats), the median, a
metric's direction, block widths."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from dse.errors import DseError

HIGHER_IS_BETTER = frozenset({"reward", "acc", "accuracy", "top1"})


def ascending(metric: str) -> bool:
    """True when a smaller value of the metric is better (errors), False for rewards and accuracies."""
    return metric not in HIGHER_IS_BETTER


def load_runs(paths, labels=None) -> pd.DataFrame:
    """The results tables of one or more sweeps (folders or files) stacked, with a `run` column naming each."""
    from dse.results import load_results

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise DseError("no results given: name one or more sweep folders or results files")
    seen = [Path(p).resolve() for p in paths]
    twice = next((p for i, p in enumerate(paths) if seen[i] in seen[:i]), None)
    if twice is not None:
        raise DseError(f"{twice}: the same run is given twice")
    labels = list(labels) if labels is not None else _labels(paths)
    if len(labels) != len(paths):
        raise DseError(f"{len(paths)} runs but {len(labels)} labels")
    if len(set(labels)) != len(labels):
        raise DseError(f"two runs have the same label: {', '.join(map(str, labels))}")
    frames = [load_results(p).assign(run=lab) for p, lab in zip(paths, labels)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _labels(paths) -> list[str]:
    """Short names for runs: their folder names, with the parent folder added where two names clash."""
    labels = [_label(p) for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{_parent(p)}/{lab}" if labels.count(lab) > 1 else lab for p, lab in zip(paths, labels)]
    return labels


def _parent(p) -> str:
    p = Path(p).resolve()
    p = p.parent if p.is_file() and p.stem == "results" else p
    return p.parent.name


def _label(p) -> str:
    """A short name for a run: its folder name (or file stem for a results file)."""
    p = Path(p)
    return p.parent.name if p.is_file() and p.stem == "results" else (p.name if p.is_dir() else p.stem)


def primary_mask(df: pd.DataFrame) -> np.ndarray:
    """True for a model's primary training (`repeat` 0, missing or NaN); False for its extra-seed repeats."""
    if "repeat" not in df.columns:
        return np.ones(len(df), dtype=bool)
    r = pd.to_numeric(df["repeat"], errors="coerce").fillna(0).to_numpy(dtype=float)
    return r == 0


def _ok(df: pd.DataFrame, metric: str) -> np.ndarray:
    """Status ok (when there is a status column) and a finite metric."""
    if metric not in df.columns:
        raise DseError(f"unknown column {metric!r}: the table has {', '.join(map(str, df.columns))}")
    ok = np.isfinite(pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float))
    if "status" in df.columns:
        ok &= (df["status"] == "ok").to_numpy()
    return ok


def finished(df: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """The model rows: status ok, a finite metric, and the primary training only (`repeat` 0 or absent); DseError if
    none. This is the one definition of a finished row that EDFs, plots, refine, rank, reports and status use."""
    ok = _ok(df, metric)
    if not ok.any():
        raise DseError(f"no finished rows (status ok and a finite {metric})")
    ok &= primary_mask(df)
    if not ok.any():
        raise DseError(f"no finished primary rows (repeat 0): only noise repeats have a finite {metric}")
    return df[ok]


def seed_rows(df: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """The finished rows (status ok, finite metric) of every seed, primary and repeats: the noise-floor rows.

    May be empty (a table without repeats); dse.analysis.noise groups them per model."""
    return df[_ok(df, metric)]


def single_networks(df: pd.DataFrame) -> bool:
    """True for a table of arms that each train one network with several seeds (EfficientNet's scaling arms): every
    row has an arm and each arm one model id, so its seeds, not its models, are its units."""
    if "arm" not in df.columns or "id" not in df.columns or df["arm"].isna().any() or df.empty:
        return False
    return bool((df.groupby(df["arm"].astype(str))["id"].nunique() == 1).all())


def model_keys(df: pd.DataFrame) -> list[str]:
    """The columns that name one model across its seeds: run (when stacked), space and arm (when present), id."""
    if "id" not in df.columns:
        raise DseError("the table has no 'id' column: repeats cannot be matched to their model")
    return [c for c in ("run", "space", "arm") if c in df.columns] + ["id"]


def median(values) -> float:
    """The median of the finite values (numpy's: the mean of the two middle values for an even count); NaN if none.

    The one median of dse: `dse status`, the summary table, the report and `dse run` all use it."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def best(df: pd.DataFrame, k: int | None = None, metric: str = "error") -> pd.DataFrame:
    """The finished rows sorted best first by the metric (all of them, or the top k)."""
    if k is not None and (not isinstance(k, (int, np.integer)) or k <= 0):
        raise DseError(f"top K must be a positive integer, got {k!r}")
    out = finished(df, metric).sort_values(metric, ascending=ascending(metric), kind="stable")
    return out if k is None else out.head(k)


def block_widths(row) -> list[int]:
    """A result row's per-block widths: its `ws` column, or its stage table expanded by depth."""
    ws = row.get("ws") if hasattr(row, "get") else None
    if ws is not None and not (isinstance(ws, float) and np.isnan(ws)) and len(ws):
        return [int(w) for w in ws]
    st = row.get("stages") if hasattr(row, "get") else None
    if st is None or (isinstance(st, float) and np.isnan(st)) or not len(st):
        raise DseError(f"row {row.get('id', '?')!r} has no widths (no 'ws' or 'stages' column)")
    return [int(s["w"]) for s in st for _ in range(int(s["d"]))]


def select_spaces(df: pd.DataFrame, spaces) -> pd.DataFrame:
    """The rows of the named spaces; DseError naming what the table has when one is absent."""
    have = sorted(map(str, df["space"].unique())) if "space" in df.columns else []
    missing = [s for s in spaces if s not in have]
    if missing:
        raise DseError(f"space {missing[0]!r} is not in the results (they have: {', '.join(have) or 'none'})")
    return df[df["space"].isin(list(spaces))]


def stage_columns(df: pd.DataFrame, p: str) -> list[str]:
    """The per-stage columns p1..pk of a parameter in stage order (numbered from 1, so RegNet's w0 is not one)."""
    cols = [c for c in df.columns if isinstance(c, str) and re.fullmatch(rf"{re.escape(p)}[1-9]\d*", c)]
    return sorted(cols, key=lambda c: int(c[len(p):]))


def by_run_and_space(df: pd.DataFrame) -> pd.DataFrame:
    """df with `space` relabelled 'run/space' when one space comes from several runs (so their curves stay apart)."""
    if "run" not in df.columns or "space" not in df.columns or df.groupby("space")["run"].nunique().max() <= 1:
        return df
    return df.assign(space=df["run"].astype(str) + "/" + df["space"].astype(str))


MIN_P = 4  # pairs below which a rank correlation gets no p-value (scipy's are meaningless there: 0 at n = 2)


def spearman(x, y) -> tuple[float, float]:
    """Spearman (rho, p) of x and y; NaN for fewer than 2 pairs or constant input (scipy's warning silenced), and p
    NaN below MIN_P pairs."""
    import math
    import warnings

    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
        r = spearmanr(x, y)
    return float(r.statistic), float(r.pvalue) if x.size >= MIN_P else math.nan
