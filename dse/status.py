"""`dse status DIR`: progress of a running or stopped sweep, read from its files only."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DseError
from .results import JSONL, PLAN, planned_keys, read_rows, row_key


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (OSError, TypeError):
        return False


def _per_space(rows: list[dict]) -> list[str]:
    """Per space: n models, min and median error, on the finished rows (dse.analysis.table: one row per model, noise
    repeats apart) with the one median of dse, so they match the report's summary."""
    import pandas as pd

    from .analysis.table import finished, median, primary_mask

    df = pd.DataFrame(rows)
    if df.empty or "error" not in df.columns or "space" not in df.columns:
        return []
    try:
        ok = finished(df, "error")
    except DseError:
        return []
    reps = df[~primary_mask(df)].groupby("space").size() if "repeat" in df.columns else pd.Series(dtype=int)
    out = []
    for space, e in ok.groupby("space", sort=True)["error"]:
        extra = f"  (+{int(reps[space])} noise repeats)" if space in reps.index else ""
        out.append(f"  {space:12s} n={len(e):4d}  min {e.min():.2f}%  median {median(e):.2f}%{extra}")
    return out


def status(d: str | Path) -> str:
    """A short report: done/failed/remaining, the driver's state, and the best errors per space."""
    d = Path(d)
    if not (d / PLAN).exists():
        raise DseError(f"{d}: not a sweep folder (no {PLAN})")
    planned = planned_keys(d)  # the noise-floor repeats, once chosen, are trials too
    st = {}
    if (d / "status.json").exists():
        try:
            st = json.loads((d / "status.json").read_text())
        except json.JSONDecodeError:
            st = {}
    rows, foreign, seen = [], 0, set()
    for r in read_rows(d / JSONL) if (d / JSONL).exists() else []:
        k = row_key(r)
        if planned is not None and k not in planned:
            foreign += 1  # never done: a row added by hand or by another sweep
        elif k not in seen:  # one row per trial, the first
            seen.add(k)
            rows.append(r)
    budget = st.get("total") if isinstance(st.get("total"), int) else 0  # a TPE search plans nothing: its budget
    total = len(planned) if planned is not None else max(len(rows), budget)
    state = st.get("state", "not started")
    if state == "running" and not _alive(st.get("pid")):
        state = "stopped (the driver is gone; resume with --resume)"
    failed = [r for r in rows if r.get("status") != "ok"]
    lines = [f"{d}: {state}", f"  {len(rows)}/{total} done, {len(failed)} failed, {total - len(rows)} to go"]
    if foreign:
        lines.append(f"  {foreign} row(s) set aside: their trials are not in the plan (added by hand or by another "
                     "sweep)")
    lines += _per_space(rows)
    for r in failed[:5]:
        lines.append(f"  failed {r['id']} ({r['space']}): {r.get('reason')}")
    return "\n".join(lines)
