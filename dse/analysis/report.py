"""`dse report`: one self-contained HTML page (figures inline as PNG data) about one or more sweeps."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import pandas as pd

from dse.errors import DseError

CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}th{background:#f4f4f4}
td.text{text-align:left;white-space:normal}img{max-width:100%;height:auto}.note{color:#666;font-style:italic}
code{background:#f4f4f4}ul.verdicts{padding-left:1.2em}ul.verdicts li{margin:.3em 0}
.banner{background:#fdecea;border:1px solid #e0a39b;color:#8a1c0f;padding:.6em 1em;margin:1em 0;font-weight:600}
.flag{color:#8a1c0f}"""
UNKNOWN = "unknown"


def _png(fig) -> str:
    """A figure as an <img> with inline PNG data (the figure is closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(df: pd.DataFrame, digits: int = 4) -> str:
    """A small DataFrame as an HTML table with numbers rounded for reading, scrolling sideways when wide."""
    body = df.to_html(index=False, border=0, na_rep="", float_format=lambda x: f"{x:.{digits}g}")
    return f'<div class="scroll">{body}</div>'


def _section(title: str, make) -> str:
    """A titled section; a section that cannot be made (missing columns, too few rows) says why instead."""
    try:
        body = make()
    except DseError as e:
        body = f'<p class="note">not available: {html.escape(str(e))}</p>'
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def _p(text: str, cls: str = "") -> str:
    return f"<p{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{html.escape(text)}</p>"


# ---------------------------------------------------------------- the recipe header

def _cell(v):
    """A row cell as a Python value: dicts and lists as they are, JSON text decoded, None for missing."""
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _values(t: pd.DataFrame, col: str, key: str | None = None) -> list:
    """The distinct values of a column (or of one key of its dict cells) in a run, missing ones left out."""
    if col not in t.columns:
        return []
    out = []
    for v in (_cell(x) for x in t[col]):  # not Series.map: it would turn a missing value back into NaN
        if key is not None:
            v = v.get(key) if isinstance(v, dict) else None
        if v is not None and v not in out:
            out.append(v)
    return out


def _show(vals, fmt=str) -> str:
    """Distinct values joined, or 'unknown'."""
    return ", ".join(fmt(v) for v in vals) if vals else UNKNOWN


def _band(b) -> str:
    """{"flops": [360e6, 400e6]} -> 'flops 360M-400M'."""
    from dse.space.units import fmt

    if not isinstance(b, dict) or not b:
        return str(b)

    def one(k, v):
        if not (isinstance(v, (list, tuple)) and len(v) == 2):
            return f"{k} {v}"
        lo, hi = v
        return (f"{k} {fmt(lo)}-{fmt(hi)}" if lo is not None and hi is not None else
                f"{k} \u2264 {fmt(hi)}" if hi is not None else f"{k} \u2265 {fmt(lo)}")
    return "; ".join(one(k, v) for k, v in b.items())


def recipe(df: pd.DataFrame, metric: str = "error") -> pd.DataFrame:
    """One row per run: what was trained and how (the row columns exp, recipe, data, band, n_planned, seed/repeat,
    dse, torch; `epochs` and `train_res` for tables written before those), 'unknown' where the table does not say."""
    from .noise import per_model
    from .table import finished

    runs = df.groupby("run", sort=False) if "run" in df.columns else [(None, df)]
    rows = []
    for run, t in runs:
        data = [f"{x} ({nt} train / {nv} val)" if len(_values(t, "data", "name")) == 1 and nt and nv else x
                for x in _values(t, "data", "name")
                for nt, nv in [((_values(t, "data", "n_train") or [None])[0], (_values(t, "data", "n_val") or [None])[0])]]
        res = _values(t, "data", "res")
        res = res if res and res != ["net"] else _values(t, "train_res")
        epochs = _values(t, "recipe", "epochs") or _values(t, "epochs")
        try:
            per = finished(t, metric).groupby("space").size() if "space" in t.columns else None
        except DseError:
            per = None
        done = ", ".join(f"{k} {v}" for k, v in per.items()) if per is not None else UNKNOWN
        planned = _values(t, "n_planned")
        reps = per_model(t, metric) if "id" in t.columns else []
        seeds = ("1 per model (no noise repeats)" if not len(reps) else
                 f"1 per model; {len(reps)} models retrained with "
                 f"{_show(sorted(set(int(x) for x in reps['seeds'])), lambda v: str(v))} seeds for the noise floor")
        rows.append({**({"run": run} if run is not None else {}),
                     "experiment": _show(_values(t, "exp")), "data": _show(data),
                     "resolution": _show(sorted(res, key=str), lambda v: f"{v} px"),
                     "epochs": _show(sorted(epochs, key=str)),
                     "batch": _show(_values(t, "recipe", "batch_size")),
                     "lr (at batch 128)": _show(_values(t, "recipe", "lr")),
                     "band": _show(_values(t, "band"), _band),
                     "n per space": (f"planned {_show(planned)}; finished: {done}" if planned else f"finished: {done}"),
                     "seeds": seeds, "dse": _show(_values(t, "dse")), "torch": _show(_values(t, "torch"))})
    return pd.DataFrame(rows)


def _recipe_html(df: pd.DataFrame, metric: str) -> str:
    t = recipe(df, metric)
    return ('<div class="scroll">' + t.to_html(index=False, border=0, na_rep="").replace("<td>", '<td class="text">')
            + "</div>")


# ---------------------------------------------------------------- verdicts and noise

def _verdicts(cmp: pd.DataFrame, nz, lines: list[str]) -> str:
    """The terminal's verdict lines as a list, then the comparison table with a noise column."""
    body = '<ul class="verdicts">' + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"
    if cmp.empty:
        return body
    t = cmp.drop(columns="verdict")
    if nz.measured:
        t = t.assign(**{"|delta| vs noise": ["below noise" if abs(d) < nz.noise else "above"
                                             for d in t["delta_mean"]]})
    return (body + _p("delta = a - b in the metric's units; [ci_low, ci_high]: 95% percentile bootstrap interval "
                      "of the difference in means; d_q10..d_q50: a - b at the EDF quantiles; ks, ks_p: two-sample "
                      "Kolmogorov-Smirnov.", "note") + _table(t))


def _noise(nz, pm: pd.DataFrame) -> str:
    """The noise figures: the line, per space, per model."""
    from .noise import by_space_table

    body = _p(nz.line())
    if not nz.measured:
        return body
    body += _p("noise: the median over repeated models of the std (ddof 1) of a model's metric over its seeds; "
               "spread: the IQR of the models' primary metric; a comparison or trend smaller than the noise is "
               "not a conclusion.", "note")
    return body + _table(by_space_table(nz)) + "<h3>per model</h3>" + _table(pm)


# ---------------------------------------------------------------- the other sections

def _params_of(t: pd.DataFrame) -> pd.DataFrame:
    """A space's sampled parameters, one column each: from the rows' `config` (per-stage values as '1 2 4 8'), else
    from the per-stage columns p1..pk and the scalar columns the table has."""
    from .plots import SCALARS, STAGED
    from .table import stage_columns

    cfg = [_cell(v) for v in t["config"]] if "config" in t.columns else []
    if cfg and all(isinstance(c, dict) for c in cfg):
        keys = list(dict.fromkeys(k for c in cfg for k in c))
        show = lambda v: " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) \
            if isinstance(v, list) else v  # noqa: E731
        return pd.DataFrame({k: [show(c.get(k)) for c in cfg] for k in keys}, index=t.index)
    out = {}
    for p in STAGED:
        cols = stage_columns(t, p)
        if cols:
            out[p] = [" ".join(str(int(x)) if float(x).is_integer() else f"{x:g}" for x in r if x == x)
                      for r in t[cols].to_numpy(dtype=float)]
    for p in SCALARS:
        if p in t.columns and p not in ("flops", "params", "acts") and p not in out:
            out[p] = t[p].to_numpy()
    return pd.DataFrame(out, index=t.index)


def _models(df: pd.DataFrame, metric: str, top: int, progress=None) -> str:
    """Per space: its best and worst finished models, with that space's own columns (its sampled parameters, per-stage
    ones in one column), complexity in units; a parameter equal in every model of the space is named once instead."""
    from dse.space.units import fmt

    from .table import best

    b = best(df, metric=metric)
    spaces = sorted(map(str, b["space"].unique())) if "space" in b.columns else [None]
    out = []
    for s in spaces:
        t = b[b["space"].astype(str) == s] if s is not None else b
        head = [c for c in ("id", "run", metric, "best_error" if metric == "error" else None) if c and c in t.columns]
        if "run" in head and t["run"].nunique() <= 1:
            head.remove("run")
        view = t[head].copy()
        for c in ("flops", "params"):
            if c in t.columns:
                view[c] = [fmt(v) if v == v else "" for v in pd.to_numeric(t[c], errors="coerce")]
        par = _params_of(t)
        same = [c for c in par.columns if par[c].astype(str).nunique() <= 1]
        view = pd.concat([view, par.drop(columns=same)], axis=1)
        view = view[[c for c in view.columns if view[c].map(lambda v: v is not None and v == v and v != "").any()]]
        k = min(top, len(t))
        name = f"{s}: " if s is not None else ""
        note = (_p("the same in every model of this space: " + ", ".join(f"{c} {par[c].iloc[0]}" for c in same), "note")
                if same and len(par) else "")
        out.append(f"<h3>{html.escape(name)}best {k} of {len(t)}</h3>" + _table(view.head(k)) + note +
                   (f"<h3>{html.escape(name)}worst {k} of {len(t)}</h3>" + _table(view.tail(k).iloc[::-1])
                    if len(t) > k else ""))
    return "".join(out)


def _fits(df: pd.DataFrame, metric: str, top: int) -> str:
    """Quantized-linear fits of the finished models: the figure (per space), then each space's best fitted models."""
    from .fit import fit_results, fit_summaries
    from .plots import fits_figure

    fits = fit_results(df, metric=metric)
    cols = [c for c in ("id", metric, "d", "w0", "wa", "wm", "e_fit") if c in fits.columns]
    body = _png(fits_figure(fits, metric=metric))
    from .plots import _families

    summ = fit_summaries(fits, metric)
    rule = [s for s, f in _families(summ["space"]).items() if f == "regnet"]
    summ = summ[~summ["space"].isin(rule)]
    if len(summ):
        body += _table(summ[["space", "n", "rho", "p", "k", "e_fit_top", "e_fit_rest"]].rename(
            columns={"rho": f"spearman(e_fit, {metric})", "k": "top k"}), 3)
    if rule:
        body += _p(f"{', '.join(rule)}: no Spearman of e_fit, whose widths come from the rule itself (e_fit = 0 by "
                   "construction, up to the group-width adjustment).", "note")
    for s, g in (fits.groupby(fits["space"].astype(str), sort=True) if "space" in fits.columns else [(None, fits)]):
        k = min(top, len(g))
        body += f"<h3>{html.escape(f'{s}: ' if s else '')}the best {k} of the {len(g)} fitted models</h3>"
        body += _table(g.head(k)[cols])
    return body


def _refine(df: pd.DataFrame, metric: str, floor: float) -> str:
    """Candidate constraints per space, ranked, and the cumulative A->E path per AnyNet space."""
    from .refine import MIN_N, TOO_FEW, path_notes, refine, refine_path

    cand = refine(df, metric=metric, min_n=MIN_N)
    if math.isfinite(floor):  # a subset of too few models is never "above noise": its shift is not a finding
        cand = cand.assign(**{"|d_mean| vs noise": [TOO_FEW if n < MIN_N else "below noise" if abs(d) < floor
                                                    else "above" if d == d else "" for d, n in zip(cand["d_mean"],
                                                                                                 cand["n"])]})
        cand = cand.drop(columns="note")  # the column above says "too few" already
    out = _p("Each space on its own: a candidate's subset against that space's finished rows.", "note")
    out += _table(cand) if len(cand) else _p("no candidate constraint applies to these spaces", "note")
    out += ("<h3>cumulative path per space (shared b, shared g, w non-decreasing, d non-decreasing; it stops below "
            f"{MIN_N} rows)</h3>")
    try:
        path = refine_path(df, metric=metric)
        out += _table(path.drop(columns="note")) + "".join(_p(x, "flag") for x in path_notes(path))
    except DseError as e:
        out += _p(f"path not available: {e}", "note")
    return out


def _grid(df: pd.DataFrame) -> bool:
    """True for an EfficientNet compound-scaling grid (rows with alpha, beta and gamma)."""
    cols = ("alpha", "beta", "gamma")
    if not all(c in df.columns for c in cols):
        return False
    return bool(df[list(cols)].apply(pd.to_numeric, errors="coerce").notna().any().all())


def _others(df: pd.DataFrame, n_finished: int) -> str:
    """The rows that are not finished models: failed, stopped early by a scheduler (not failures), the rest."""
    status = df["status"] if "status" in df.columns else pd.Series("ok", index=df.index)
    stopped, failed = int((status == "stopped").sum()), int((status == "failed").sum())
    return ", ".join([f"{failed} failed"] + ([f"{stopped} stopped early by the scheduler"] if stopped else [])
                     + [f"{len(df) - n_finished - stopped - failed} extra seeds (repeats) or unfinished"])


def _trend_note(nz) -> str:
    """How to read the trends against the noise floor the run measured."""
    if not nz.measured:
        return _p("The noise floor was not measured in this run: a trend cannot be told from seed noise.", "note")
    return _p(f"Noise floor: a model moves by {nz.noise:.2f}{' points' if nz.metric in ('error', 'best_error') else ''} "
              "(median seed std) from one training seed to another. A trend whose bin means differ by less than that, "
              "or whose 95% intervals overlap, is not a finding; bins with fewer than 3 models have no interval.",
              "note")


def report_html(df: pd.DataFrame, *, metric: str = "error", title: str = "dse report", top: int = 10,
                seed: int = 0, progress=None) -> str:
    """The report of a results table (one or more runs stacked) as one HTML string; pure, no files touched.
    progress(done, total) is called after each section."""
    from . import plots
    from . import claims
    from .compare import MIN_N, compare, default_by, format_verdicts, too_small
    from .edf import summary
    from .noise import noise, per_model
    from .rank import epoch_rank
    from .table import ascending, by_run_and_space, finished

    from dse import __version__

    df = by_run_and_space(df)
    f = finished(df, metric)
    runs = ", ".join(map(str, df["run"].unique())) if "run" in df.columns else "one table"

    spaces = sorted(map(str, f["space"].unique())) if "space" in f.columns else ["all"]
    per = f.groupby("space").size() if "space" in f.columns else pd.Series({"all": len(f)})
    nz, pm = noise(df, metric), per_model(df, metric)
    by = default_by(df)
    try:
        cmp = compare(df, by=by, metric=metric, noise=nz.noise, seed=seed)
        lines = format_verdicts(cmp, nz, by=by)
    except DseError as e:
        cmp, lines = pd.DataFrame(), [nz.line(), f"no verdicts: {e}"]
    if metric == "error":
        lines += claims.lines(df, nz.noise)
    direction = "lower is better" if ascending(metric) else "higher is better"
    head = (f"<h1>{html.escape(title)}</h1>\n<p>{len(f)} models finished ({_others(df, len(f))}) from "
            f"{html.escape(runs)}; spaces: {html.escape(', '.join(spaces))}; metric: "
            f"<code>{html.escape(metric)}</code> ({direction}); report by dse {__version__}.</p>\n")
    if too_small(cmp) and by == "arm":
        head += (f'<div class="banner">Too small for conclusions: {int(cmp[["n_a", "n_b"]].to_numpy().min())} units '
                 f"on a side in the smallest comparison of arms (see each verdict for what it needs).</div>\n")
    elif too_small(cmp):
        head += (f'<div class="banner">Too small for conclusions: {int(per.min())} models in the smallest space; the '
                 f"verdicts need at least {MIN_N} per space. The curves and tables below describe these models, not "
                 f"the design spaces.</div>\n")
    k_w = min(top, int(per.max()))
    grid = _grid(f)
    if by == "arm":  # a controlled experiment: its arms and its claims, not the spaces' design parameters
        body = [("Recipe", lambda: _recipe_html(df, metric)),
                ("Verdicts", lambda: _verdicts(cmp, nz, lines)),
                ("Noise floor", lambda: _noise(nz, pm)),
                ("Summary per arm", lambda: _table(summary(df.assign(error=df[metric]) if metric != "error"
                                                           else df, by="arm").reset_index())),
                ("Error EDFs per arm" if metric == "error" else f"{metric} EDFs per arm",
                 lambda: _png(plots.edf_figure(df, by="arm", metric=metric, band=True, seed=seed)))]
        body += [(t, (lambda m=m: _png(m()))) for t, m in claims.figures(df)] if metric == "error" else []
        return _page(title, head, body, progress)
    body = [
        ("Recipe", lambda: _recipe_html(df, metric)),
        ("Verdicts", lambda: _verdicts(cmp, nz, lines)),
        ("Noise floor", lambda: _noise(nz, pm)),
        ("Summary per space", lambda: _table(summary(df.assign(error=df[metric]) if metric != "error"
                                                             else df).reset_index())),
        ("Error EDFs" if metric == "error" else f"{metric} EDFs",
                 lambda: _png(plots.edf_figure(df, metric=metric, band=True, seed=seed))),
        ("EDFs normalised by flops", lambda: _png(plots.edf_figure(df, normalized="flops", metric=metric))),
    ]
    if grid:
        body.append(("The metric against alpha, beta, gamma (compound-scaling grid)",
                             lambda: _png(plots.params_figure(df, params=["alpha", "beta", "gamma"], metric=metric))))
    else:
        body.append(("The metric against the design parameters",
                             lambda: _png(plots.params_figure(df, metric=metric)) + _trend_note(nz)))
    body += [
        ("Best and worst models", lambda: _models(df, metric, top)),
        (f"Widths of the best {k_w} models of each space",
                 lambda: _png(plots.widths_figure(df, top=top, metric=metric))),
    ]
    if not grid:
        body += [("Quantized-linear width fits", lambda: _fits(df, metric, top)),
                 ("Constraint discovery (dse refine), per space", lambda: _refine(df, metric, nz.noise))]
    if "searcher" in df.columns:
        body.insert(3, ("Search: best model against compute spent, per searcher",
                                lambda: _png(plots.search_figure(df, metric=metric))))
    body.append(("Low-epoch validity: Spearman of each epoch's error with the final error",
                         lambda: _png(plots.rank_figure(epoch_rank(df))) + _p(
                             "Open markers: fewer than 4 models at that epoch (no p-value). dse analyze prints the "
                             "table (n, rho, p per space and epoch).", "note")))
    return _page(title, head, body, progress)


def _page(title: str, head: str, body: list, progress=None) -> str:
    """The HTML page of the report's sections (title, make), made one by one (the slow part: figures and fits)."""
    done = []
    for i, (name, make) in enumerate(body):
        done.append(_section(name, make))
        if progress is not None:
            progress(i + 1, len(body))
    body = done
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
                 top: int = 10, progress=None) -> Path:
    """Write the HTML report of a results table to out (an .html file), atomically."""
    from dse.io import write_atomic

    out = _check_out(out, force)
    return write_atomic(out, report_html(df, metric=metric, title=title, top=top, progress=progress), force=force)


def report(runs, out, *, force: bool = False, metric: str = "error", top: int = 10, progress=None) -> Path:
    """Write the HTML report of one or more sweeps (folders or results files) to out, atomically."""
    from .table import by_run_and_space, load_runs

    out = _check_out(out, force)  # before loading and drawing anything
    df = by_run_and_space(load_runs(runs))
    names = [Path(r).name for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    return write_report(df, out, title=f"dse report: {', '.join(names)}", force=force, metric=metric, top=top,
                        progress=progress)
