"""The whole protocol in one call: sample and train (continuing a stopped sweep), then the verdicts, EDF and report."""
from __future__ import annotations

from pathlib import Path

from .experiment import Experiment


def run(exp: Experiment, out: str | Path, *, address: str | None = None, verbose: int = 0,
        progress: bool = True) -> tuple:
    """Sweep exp into out (continuing it when out holds it), then write out/edf.png and out/report.html.

    Returns (results DataFrame, {"results", "edf", "report": paths}, the terminal lines: summary, noise floor and
    verdicts). An interrupted sweep raises dse.run.sweep.Interrupted and writes no figure or report."""
    from ..analysis import claims
    from ..analysis.compare import default_by, verdict_lines
    from ..analysis.noise import noise
    from ..analysis.edf import summary
    from ..analysis.plots import edf_figure, save
    from ..analysis.report import write_report
    from ..results import load_results
    from .sweep import PLAN, sweep

    out = Path(out)
    sweep(exp, out, address=address, resume=(out / PLAN).exists(), verbose=verbose, progress=progress)
    df = load_results(out)
    paths = {"results": out / "results.parquet", "edf": out / "edf.png", "report": out / "report.html"}
    save(edf_figure(df, by=default_by(df), band=True), paths["edf"], force=True)
    write_report(df, paths["report"], title=f"dse report: {out.name}", force=True)
    by = default_by(df)
    lines = [summary(df, by).round(2).to_string(), "", *verdict_lines(df, by), *claims.lines(df, noise(df).noise)]
    return df, paths, lines

