"""`dse status DIR`: progress of a running or stopped sweep, read from its files only."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DseError
from .results import JSONL, read_rows


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
    if not (d / "plan.jsonl").exists():
        raise DseError(f"{d}: not a sweep folder (no plan.jsonl)")
    plan = read_rows(d / "plan.jsonl")
    if (d / "noise.jsonl").exists():  # the noise-floor repeats, once chosen, are trials too
        plan += read_rows(d / "noise.jsonl")
    rows = read_rows(d / JSONL) if (d / JSONL).exists() else []
    st = {}
    if (d / "status.json").exists():
        try:
            st = json.loads((d / "status.json").read_text())
        except json.JSONDecodeError:
            st = {}
    state = st.get("state", "not started")
    if state == "running" and not _alive(st.get("pid")):
        state = "stopped (the driver is gone; resume with --resume)"
    failed = [r for r in rows if r.get("status") != "ok"]
    lines = [f"{d}: {state}", f"  {len(rows)}/{len(plan)} done, {len(failed)} failed, {len(plan) - len(rows)} to go"]
    lines += _per_space(rows)
    for r in failed[:5]:
        lines.append(f"  failed {r['id']} ({r['space']}): {r.get('reason')}")
    return "\n".join(lines)
