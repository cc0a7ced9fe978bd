"""The whole protocol in one call: sample and train (continuing a stopped sweep), then the verdicts, EDF and report."""
from __future__ import annotations

from pathlib import Path

from .experiment import Experiment


def run(exp: Experiment, out: str | Path, *, address: str | None = None, verbose: int = 0,
        progress: bool = True) -> tuple:
    """Sweep exp into out (continuing it when out holds it), then write out/edf.png and out/report.html.

    Returns (results DataFrame, {"results", "edf", "report": paths}, the terminal lines: summary, noise floor and
    verdicts). An interrupted sweep raises dse.sweep.Interrupted and writes no figure or report."""
    from .analysis.compare import verdict_lines
    from .analysis.edf import summary
    from .analysis.plots import edf_figure, save
    from .analysis.report import write_report
    from .results import load_results
    from .sweep import PLAN, sweep

    out = Path(out)
    sweep(exp, out, address=address, resume=(out / PLAN).exists(), verbose=verbose, progress=progress)
    df = load_results(out)
    paths = {"results": out / "results.parquet", "edf": out / "edf.png", "report": out / "report.html"}
    save(edf_figure(df, band=True), paths["edf"], force=True)
    write_report(df, paths["report"], title=f"dse report: {out.name}", force=True)
    lines = [summary(df).round(2).to_string(), "", *verdict_lines(df), *claim_lines(df)]
    return df, paths, lines


def claim_lines(df) -> list[str]:
    """The verdicts of the papers' claims a table holds: FixRes's test sizes and fine-tuning, progressive
    learning's time to the fixed arm's error."""
    from .analysis import fixres, progressive
    from .analysis.noise import noise

    out = []
    if "test_errors" in df.columns and df["test_errors"].map(lambda d: isinstance(d, dict) and len(d) > 1).any():
        out += fixres.lines(df, noise(df).noise)
    if "arm" in df.columns and "schedule" in df.columns:
        out += progressive.lines(df)
    return out
