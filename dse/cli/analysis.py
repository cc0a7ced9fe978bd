"""Commands that read results tables only: plot, fit, refine, compare, noise, analyze, report."""
from __future__ import annotations

import json

from ..errors import DseError
from .common import save_figure


def _runs(a):
    """The runs' results stacked, only --space's spaces when given, a space seen in several runs kept apart."""
    from ..analysis.table import by_run_and_space, load_runs, select_spaces

    df = load_runs(a.runs)
    return by_run_and_space(select_spaces(df, a.space) if getattr(a, "space", None) else df)


def _bar(desc: str):
    """The project's one progress display for work that can take more than a few seconds: (Progress, tick) with
    tick(done, total); a tqdm bar on a terminal after 2 s, plain lines every 10 s otherwise, no final line."""
    from ..progress import Progress

    bar = Progress(0, desc, every=10.0, final=False, delay=2.0)

    def tick(done: int, total: int) -> None:
        if total != bar.total:
            bar.set_total(total)
        bar.update(done)
    return bar, tick


def cmd_plot(a) -> int:
    from ..analysis import plots
    from ..io import check_new

    check_new(a.output, a.force)  # fail before the work, not after it
    df = _runs(a)
    if a.what == "edf":
        fig = plots.edf_figure(df, by=a.by, normalized=a.normalized, band=a.band, metric=a.metric)
    elif a.what == "params":
        bar, tick = _bar("plot params: panels")
        with bar:
            fig = plots.params_figure(df, params=a.params.split(",") if a.params else None, metric=a.metric,
                                      progress=tick)
    else:
        fig = plots.widths_figure(df, top=a.top, metric=a.metric)
    save_figure(fig, a.output, a.force)
    return 0


def cmd_fit(a) -> int:
    from ..analysis import fit as F
    from ..io import check_new

    if a.widths is None and not a.runs:
        raise DseError("nothing to fit: give --widths W1,W2,... or a sweep folder / results / samples file")
    if a.widths is not None and a.runs:
        raise DseError("give --widths or a sweep folder / results file, not both")
    if a.widths is not None and (a.top is not None or a.id):
        raise DseError("--top and --id select models of a run; they do not apply to --widths")
    if a.output:
        check_new(a.output, a.force)

    def save(draw, *args, **kw):  # matplotlib only when a figure is asked for; no "wrote" line under --json
        from ..analysis import plots
        fig = getattr(plots, draw)(*args, **kw)
        if a.json:
            plots.save(fig, a.output, a.force)
        else:
            save_figure(fig, a.output, a.force)
    if a.widths is not None:
        ws = F.parse_widths(a.widths)
        f = F.fit(ws, a.quantum)
        if a.json:
            print(json.dumps(f.to_dict()))
        else:
            print(f"d {f.d}  w0 {f.w0:.6g}  wa {f.wa:.6g}  wm {f.wm:.6g}  e_fit {f.e_fit:.4g}")
            print(F.fit_blocks(ws, f).to_string(index=False, float_format=lambda x: f"{x:.2f}"))
        if a.output:
            save("fit_figure", ws, f)
        return 0
    df = _runs(a)
    if a.output and a.metric not in df.columns:
        raise DseError(f"-o draws e_fit against {a.metric!r}, which the table does not have (a samples file?)")
    with_summary = a.metric in df.columns and not a.id
    bar, tick = _bar("fitting widths")
    with bar:
        fits = F.fit_results(df, None if with_summary else a.top, a.metric, a.id, a.quantum, progress=tick)
    summ = F.fit_summaries(fits, a.metric, a.top) if with_summary else None
    shown = fits
    if a.top is not None:  # each space's top K (fit_results ranked each space)
        shown = fits.groupby("space", sort=False).head(a.top) if "space" in fits else fits.head(a.top)
    if a.json:
        print('{"fits": ' + shown.to_json(orient="records", double_precision=15) + ', "summary": '
              + (summ.to_json(orient="records", double_precision=15) if summ is not None else "null") + "}")
    else:
        from ..space.regnet import stages_from_widths
        runs = (zip(*stages_from_widths(w)) for w in shown["widths"])  # widths as stage runs: 64x16 424x2
        print(shown.assign(widths=[" ".join(f"{w}x{d}" for d, w in r) for r in runs])
              .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        for s in summ.itertuples() if summ is not None else ():
            p = "\u2014" if s.p != s.p else f"{s.p:.3g}"  # no p-value below 4 models
            print(f"\n{s.space}: spearman(e_fit, {a.metric}) = {s.rho:.3f} (p = {p}, n = {s.n})")
            print(f"  median e_fit: top {s.k} {s.e_fit_top:.4f}, rest {s.e_fit_rest:.4f}")
            print(f"  fitted parameters of the top {s.k}:  " + "   ".join(
                f"{c} q25 {getattr(s, c + '_q25'):.4g} q50 {getattr(s, c + '_q50'):.4g} "
                f"q75 {getattr(s, c + '_q75'):.4g}" for c in ("w0", "wa", "wm")))
    if a.output:
        save("fits_figure", fits, metric=a.metric)
    return 0


def cmd_refine(a) -> int:
    from ..analysis.refine import refine, refine_path

    try:
        ts = [float(x) for x in a.e_fit.split(",")] if a.e_fit is not None else None
    except ValueError:
        raise DseError(f"--e-fit: expected numbers separated by commas, got {a.e_fit!r}") from None
    if a.min_n < 1:
        raise DseError(f"--min-n must be a positive integer, got {a.min_n}")
    df = _runs(a)
    bar, tick = _bar("refine: e_fit of each model")
    with bar:
        cand = refine(df, metric=a.metric, e_fit=ts, min_n=a.min_n, progress=tick)
    try:
        path, why = refine_path(df, metric=a.metric, min_n=a.min_n), ""
    except DseError as e:  # no AnyNet space: the candidates still stand
        path, why = None, str(e)
    if a.json:
        print('{"candidates": ' + cand.to_json(orient="records", double_precision=15) + ', "path": '
              + (path.to_json(orient="records", double_precision=15) if path is not None else "[]") + "}")
    else:
        from ..analysis.refine import path_notes
        fmt = lambda x: f"{x:.4g}"  # noqa: E731
        print(f"candidate constraints on {len(df)} rows, each space on its own (best {a.metric} mean shift first):")
        print(cand.to_string(index=False, float_format=fmt) if len(cand) else "no candidate applies")
        print(f"\ncumulative path A -> E per space (each step adds one constraint; it stops below {a.min_n} rows):")
        print(path.drop(columns="note").to_string(index=False, float_format=fmt) if path is not None else why)
        for line in path_notes(path) if path is not None else []:
            print(line)
    return 0


def cmd_compare(a) -> int:
    from ..analysis.compare import compare, default_by, format_verdicts
    from ..analysis.noise import noise

    if a.shift is not None and not a.shift > 0:
        raise DseError(f"--shift must be positive, got {a.shift}")
    df = _runs(a)
    nz = noise(df, a.metric)
    by = a.by or default_by(df)
    cmp = compare(df, by=by, metric=a.metric, noise=nz.noise, shift=a.shift, seed=a.seed, force=a.force)
    if a.json:
        print(cmp.to_json(orient="records", double_precision=15))
    else:
        print("\n".join(format_verdicts(cmp, nz, by=by)))
        if len(cmp):
            t = cmp.drop(columns=[c for c in ("verdict", "differ") if c in cmp.columns])
            print("\n" + t.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def cmd_noise(a) -> int:
    from ..analysis.noise import by_space_table, noise, per_model

    df = _runs(a)
    nz, pm = noise(df, a.metric), per_model(df, a.metric)
    if a.json:
        print(json.dumps({**nz.to_dict(), "models": json.loads(pm.to_json(orient="records", double_precision=15))}))
        return 0
    print(nz.line())
    fmt = lambda x: f"{x:.4g}"  # noqa: E731
    print("\n" + by_space_table(nz).to_string(index=False, float_format=fmt))
    if len(pm):
        print("\nper model (all finished seeds, primary included; std with ddof 1):")
        print(pm.to_string(index=False, float_format=fmt))
    return 0


def cmd_analyze(a) -> int:
    from ..analysis.rank import epoch_rank

    df = epoch_rank(_runs(a), metric=a.metric)
    print(df.to_json(orient="records", double_precision=15) if a.json  # no p-value (n < 4): null, printed as —
          else df.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep="\u2014"))
    return 0


def cmd_report(a) -> int:
    from ..analysis.report import report

    bar, tick = _bar("report sections")
    with bar:
        path = report(a.runs, a.output, force=a.force, metric=a.metric, progress=tick)
    print(f"wrote {path}")
    return 0
