"""`dse report`: one self-contained HTML page (figures inline as PNG data) about one or more sweeps."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from dse.errors import DseError

CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #eee;
text-align:right}th{background:#f4f4f4}img{max-width:100%}.note{color:#666;font-style:italic}code{background:#f4f4f4}"""


def _png(fig) -> str:
    """A figure as an <img> with inline PNG data (the figure is closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(df: pd.DataFrame, digits: int = 4) -> str:
    """A small DataFrame as an HTML table with numbers rounded for reading."""
    return df.to_html(index=False, border=0, na_rep="", float_format=lambda x: f"{x:.{digits}g}")


def _section(title: str, make) -> str:
    """A titled section; a section that cannot be made (missing columns, too few rows) says why instead."""
    try:
        body = make()
    except DseError as e:
        body = f'<p class="note">not available: {html.escape(str(e))}</p>'
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def _ks_table(df: pd.DataFrame, metric: str) -> str:
    """Pairwise two-sample KS statistics and p-values between the spaces' metric distributions."""
    from .edf import ks
    from .table import finished

    f = finished(df, metric)
    groups = {k: g[metric].to_numpy(dtype=float) for k, g in f.groupby("space", sort=True)}
    names = list(groups)
    if len(names) < 2:
        raise DseError("one space only: nothing to compare")
    rows = [{"space A": a, "space B": b, **dict(zip(("KS", "p-value"), ks(groups[a], groups[b])))}
            for i, a in enumerate(names) for b in names[i + 1:]]
    return _table(pd.DataFrame(rows))


def _models(df: pd.DataFrame, metric: str, top: int) -> str:
    """The best and the worst finished models with their complexity and sampled parameters."""
    from .table import best

    b = best(df, metric=metric)
    skip = {"stages", "ws", "errors", "train_errors", "losses", "epoch_times", "config", "schedule", "test_errors",
            "reason", "torch", "dse", "seed", "threads", "resumed_at", "node", "ips", "wall", "status"}
    cols = [c for c in b.columns if c not in skip and b[c].map(lambda v: not isinstance(v, (list, dict))).all()]
    first = [c for c in ("id", "run", "space", metric, "flops", "params") if c in cols]
    cols = first + [c for c in cols if c not in first]
    k = min(top, len(b))
    return (f"<h3>best {k}</h3>" + _table(b.head(k)[cols]) +
            (f"<h3>worst {k}</h3>" + _table(b.tail(k)[cols].iloc[::-1]) if len(b) > k else ""))


def _fits(df: pd.DataFrame, metric: str, top: int) -> str:
    """Quantized-linear fits of the top models: table and e_fit / w0 / wa / wm figure."""
    from .fit import fit_results
    from .plots import fits_figure

    fits = fit_results(df, metric=metric)
    cols = [c for c in ("id", "space", metric, "d", "w0", "wa", "wm", "e_fit") if c in fits.columns]
    return _png(fits_figure(fits, metric=metric)) + _table(fits.head(top)[cols])


def _refine(df: pd.DataFrame, metric: str) -> str:
    """Candidate constraints, ranked, and the cumulative A->E path."""
    from .refine import refine, refine_path

    out = _table(refine(df, metric=metric))
    try:
        out += "<h3>cumulative path (shared b, shared g, w non-decreasing, d non-decreasing)</h3>"
        out += _table(refine_path(df, metric=metric))
    except DseError as e:
        out += f'<p class="note">path not available: {html.escape(str(e))}</p>'
    return out


def report_html(df: pd.DataFrame, *, metric: str = "error", title: str = "dse report", top: int = 10) -> str:
    """The report of a results table (one or more runs stacked) as one HTML string; pure, no files touched."""
    from . import plots
    from .edf import summary
    from .rank import epoch_rank
    from .table import finished

    import dse

    f = finished(df, metric)
    runs = ", ".join(map(str, df["run"].unique())) if "run" in df.columns else "one table"
    n_failed = len(df) - len(f)
    head = (f"<h1>{html.escape(title)}</h1>\n<p>{len(df)} models ({n_failed} failed or unfinished) from "
            f"{html.escape(runs)}; spaces: {html.escape(', '.join(map(str, sorted(df['space'].unique()))))}; "
            f"metric: <code>{html.escape(metric)}</code>; dse {dse.__version__}.</p>\n")
    body = [
        _section("Summary per space", lambda: _table(summary(df.assign(error=df[metric]) if metric != "error"
                                                             else df).reset_index())),
        _section("Error EDFs", lambda: _png(plots.edf_figure(df, metric=metric))),
        _section("EDFs normalised by flops", lambda: _png(plots.edf_figure(df, normalized="flops", metric=metric))),
        _section("Kolmogorov-Smirnov between spaces", lambda: _ks_table(df, metric)),
        _section("The metric against the design parameters", lambda: _png(plots.params_figure(df, metric=metric))),
        _section("Best and worst models", lambda: _models(df, metric, top)),
        _section(f"Widths of the best {top} models", lambda: _png(plots.widths_figure(df, top=top, metric=metric))),
        _section(f"Quantized-linear fits (top {top})", lambda: _fits(df, metric, top)),
        _section("Constraint discovery (dse refine)", lambda: _refine(df, metric)),
        _section("Low-epoch validity: Spearman of each epoch's error with the final error",
                 lambda: _table(epoch_rank(df), 3)),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{head}{''.join(body)}</body></html>\n")


def _check_out(out, force: bool) -> Path:
    """The report's path: an .html file that does not exist yet (unless force)."""
    from dse.io import check_new

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise DseError(f"{out}: a report is an .html file")
    return check_new(out, force)


def write_report(df: pd.DataFrame, out, *, title: str = "dse report", force: bool = False, metric: str = "error",
                 top: int = 10) -> Path:
    """Write the HTML report of a results table to out (an .html file), atomically."""
    from dse.io import write_atomic

    out = _check_out(out, force)
    return write_atomic(out, report_html(df, metric=metric, title=title, top=top), force=force)


def report(runs, out, *, force: bool = False, metric: str = "error", top: int = 10) -> Path:
    """Write the HTML report of one or more sweeps (folders or results files) to out, atomically."""
    from .table import by_run_and_space, load_runs

    out = _check_out(out, force)  # before loading and drawing anything
    df = by_run_and_space(load_runs(runs))
    names = [Path(r).name for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    return write_report(df, out, title=f"dse report: {', '.join(names)}", force=force, metric=metric, top=top)
