"""`dse status DIR`: progress of a running or stopped sweep, read from its files only."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DseError
from ..results import JSONL, PLAN, planned_keys, read_rows, row_key


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (OSError, TypeError):
        return False


def _per_space(rows: list[dict]) -> list[dict]:
    """Per space: n models, min and median error, noise repeats, on the finished rows (dse.analysis.table: one row per
    model, noise repeats apart) with the one median of dse, so they match the report's summary."""
    import pandas as pd

    from ..analysis.table import finished, median, primary_mask

    df = pd.DataFrame(rows)
    if df.empty or "error" not in df.columns or "space" not in df.columns:
        return []
    try:
        ok = finished(df, "error")
    except DseError:
        return []
    reps = df[~primary_mask(df)].groupby("space").size() if "repeat" in df.columns else pd.Series(dtype=int)
    return [{"space": str(space), "n": int(len(e)), "min": float(e.min()), "median": median(e),
             "repeats": int(reps[space]) if space in reps.index else 0}
            for space, e in ok.groupby("space", sort=True)["error"]]


def summary(d: str | Path) -> dict:
    """The state of a sweep folder as plain values: state, total, done, failed, stopped (early, by a scheduler), to
    go, per space (n, min, median, repeats) and the first failed trials."""
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
    failed = [r for r in rows if r.get("status") == "failed"]
    stopped = sum(r.get("status") == "stopped" for r in rows)
    return {"folder": str(d), "state": state, "total": total, "done": len(rows), "failed": len(failed),
            "stopped": stopped, "to_go": max(0, total - len(rows)), "set_aside": foreign,
            "spaces": _per_space(rows),
            "failed_trials": [{"key": r.get("key", r["id"]), "space": r.get("space"), "reason": r.get("reason")}
                              for r in failed]}


def status(d: str | Path) -> str:
    """A short report: done/failed/stopped/remaining, the driver's state, and the best errors per space."""
    s = summary(d)
    stop = f", {s['stopped']} stopped early" if s["stopped"] else ""
    lines = [f"{s['folder']}: {s['state']}",
             f"  {s['done']}/{s['total']} done, {s['failed']} failed{stop}, {s['to_go']} to go"]
    if s["set_aside"]:
        lines.append(f"  {s['set_aside']} row(s) set aside: their trials are not in the plan (added by hand or by "
                     "another sweep)")
    for r in s["spaces"]:
        extra = f"  (+{r['repeats']} noise repeats)" if r["repeats"] else ""
        lines.append(f"  {r['space']:12s} n={r['n']:4d}  min {r['min']:.2f}%  median {r['median']:.2f}%{extra}")
    for r in s["failed_trials"][:5]:
        lines.append(f"  failed {r['key']} ({r['space']}): {r['reason']}")
    return "\n".join(lines)
