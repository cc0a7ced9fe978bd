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


def status(d: str | Path) -> str:
    """A short report: done/failed/remaining, the driver's state, and the best errors per space."""
    d = Path(d)
    if not (d / "plan.jsonl").exists():
        raise DseError(f"{d}: not a sweep folder (no plan.jsonl)")
    plan = read_rows(d / "plan.jsonl")
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
    by = {}
    for r in rows:
        if r.get("status") == "ok" and r.get("error") is not None:
            by.setdefault(r["space"], []).append(r["error"])
    for space, errs in sorted(by.items()):
        errs.sort()
        lines.append(f"  {space:12s} n={len(errs):4d}  min {errs[0]:.2f}%  median {errs[len(errs) // 2]:.2f}%")
    for r in failed[:5]:
        lines.append(f"  failed {r['id']} ({r['space']}): {r.get('reason')}")
    return "\n".join(lines)
