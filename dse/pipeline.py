"""The whole protocol in one call: sample and train (continuing a stopped sweep), then the EDF figure and report."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import DseError
from .experiment import Experiment, parse


def same_sweep(exp: Experiment, out: Path) -> bool:
    """True when out holds a sweep of this experiment (so running again continues it); DseError if another one."""
    saved = out / "experiment.yaml"
    if not (out / "plan.jsonl").exists() or not saved.exists():
        return False
    try:
        old = parse(yaml.safe_load(saved.read_text()), str(saved))
    except (yaml.YAMLError, DseError) as e:
        raise DseError(f"{saved}: unreadable ({e}); pick a new --out") from None
    if old.to_dict() != exp.to_dict():
        raise DseError(f"{out}: holds a different experiment ('{old.name}'); pick a new --out, "
                       "or continue that one with dse sweep --resume")
    return True


def run(exp: Experiment, out: str | Path, *, address: str | None = None, verbose: int = 0,
        progress: bool = True) -> tuple:
    """Sweep exp into out (resuming when out holds it), then write out/edf.png and out/report.html.

    Returns (results DataFrame, {"results", "edf", "report": paths})."""
    from .analysis.plots import edf_figure, save
    from .analysis.report import write_report
    from .results import load_results
    from .sweep import sweep

    out = Path(out)
    sweep(exp, out, address=address, resume=same_sweep(exp, out), verbose=verbose, progress=progress)
    df = load_results(out)
    paths = {"results": out / "results.parquet", "edf": out / "edf.png", "report": out / "report.html"}
    save(edf_figure(df), paths["edf"], force=True)
    write_report(df, paths["report"], title=f"dse report: {out.name}", force=True)
    return df, paths
