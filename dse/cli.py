"""The `dse` command: a thin layer that parses arguments, calls the Python API and formats the output."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import yaml

from .errors import DseError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message):
        raise DseError(f"{message} (see '{self.prog} --help')")


def _ranged(kind, lo, hi):
    """An argparse type: a number of `kind` in [lo, hi] (a one-line error otherwise)."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got '{text}'") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {text}")
        return v
    return parse


BANDS = ("--flops", "--params", "--acts")


def band_args(argv: list[str]) -> list[str]:
    """`--flops -400M` as `--flops=-400M`: argparse would read a value starting with '-' as an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in BANDS and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise DseError(f"--set: '{text}' is not a number") from None


def parse_sets(items) -> dict:
    """`k=v` pairs; v may be a comma list for per-stage values."""
    out = {}
    for item in items or []:
        for part in item.split():
            if "=" not in part:
                raise DseError(f"--set: expected NAME=VALUE, got '{part}'")
            k, v = part.split("=", 1)
            vals = [_number(x) for x in v.split(",") if x.strip()]
            if not vals:
                raise DseError(f"--set: no value for '{k}'")
            out[k.strip()] = vals if len(vals) > 1 else vals[0]
    return out


def stage_table(rec: dict) -> str:
    """A plain stage table plus the complexity line."""
    from .models.blocks import DEFAULT, block
    from .units import fmt

    kinds = list(dict.fromkeys(s.get("block", DEFAULT) for s in rec["stages"]))  # columns: the blocks' fields
    fields = list(dict.fromkeys(f for k in kinds for f in block(k).fields))
    cols = ["d", "w"] + (["block"] if kinds != [DEFAULT] else []) + fields + ["stride", "se"]
    head = ["stage"] + cols

    def cell(s: dict, c: str) -> str:  # "-" where the stage's block does not read the field
        kind = s.get("block", DEFAULT)
        return kind if c == "block" else str(s[c]) if c in ("d", "w", "stride", "se", *block(kind).fields) else "-"
    rows = [[str(i + 1)] + [cell(s, c) for c in cols] for i, s in enumerate(rec["stages"])]
    wid = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(x.rjust(w) for x, w in zip(r, wid)) for r in [head] + rows]
    cfg = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in rec["config"].items())
    net = rec.get("net", {})
    top = f"{rec['space']} {rec['id']}  {cfg}"
    lines = [top, f"stem {net.get('stem_w')}  head {net.get('head_w') or '-'}  res {net.get('res')}  "
                  f"classes {net.get('classes')}  act {net.get('act')}"] + lines
    lines.append(f"flops {fmt(rec['flops'])}  params {fmt(rec['params'])}  acts {fmt(rec['acts'])}  "
                 f"({rec['flops']:,} / {rec['params']:,} / {rec['acts']:,})")
    return "\n".join(lines)


def cmd_spaces(a) -> int:
    from .space import load
    from .spec import list_spaces

    for name in list_spaces():
        sp = load(name)
        parent = sp.spec.get("extends_chain", [])
        print(f"{name:16s} {sp.family:7s} {'<- ' + parent[0] if parent else '':16s} {sp.spec.get('doc', '')}")
    return 0


def cmd_show(a) -> int:
    from .space import load
    from .spec import resolve

    sp = load(a.space)
    declared = resolve(a.space)[0].get("presets", {})
    spec = {k: v for k, v in sp.spec.items() if k not in ("extends_chain", "presets")}
    chain = sp.spec.get("extends_chain", [])
    print(f"# {sp.path}" + (f" (resolved through {' <- '.join(chain)})" if chain else ""))
    print(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110).rstrip())
    outside = sp.presets_outside()
    if outside:
        print("presets:  # published models; those outside the sampled space say why")
    for name, why in outside.items():
        text = yaml.safe_dump({name: sp.presets[name]}, sort_keys=False, default_flow_style=None, width=110).rstrip()
        note = f"# outside the sampled space: {'; '.join(why)}" if why else ""
        if note and "\n" in text:
            print(f"  {note}")
        print("\n".join("  " + ln for ln in text.splitlines()) + (f"  {note}" if note and "\n" not in text else ""))
    left = [k for k in declared if k not in sp.presets]
    if left:
        print(f"# not listed: {len(left)} inherited presets ({', '.join(left)}) lie outside this space's ranges")
    return 0


def cmd_describe(a) -> int:
    from .api import describe

    s = describe(a.space, preset=a.preset, at_res=a.res, **parse_sets(a.set))
    rec = s.to_dict()
    print(json.dumps(rec, sort_keys=True) if a.json else stage_table(rec))
    return 0


def cmd_sample(a) -> int:
    from .io import check_new, write_atomic
    from .progress import Progress
    from .space import sample
    from .units import parse_band

    bands = {m: parse_band(getattr(a, m), f"--{m}") for m in ("flops", "params", "acts") if getattr(a, m)}
    if a.output is None and not sys.stdout.isatty():
        a.output = "-"  # piped: the samples are the output
    if a.output and a.output != "-":
        check_new(a.output, a.force)
    with Progress(a.n, f"sampling {a.space}", every=0, enabled=not a.quiet, final=False) as bar:
        res = sample(a.space, a.n, seed=a.seed, max_tries=a.max_tries, workers=a.workers,
                     progress=lambda k, t: bar.update(k, f"tried {t}"), **bands)
    out = sys.stderr if a.output == "-" else sys.stdout
    if a.output == "-":
        sys.stdout.write(res.to_jsonl())
    elif a.output:
        write_atomic(a.output, res.to_jsonl(), force=a.force)
    if not a.quiet:
        where = (f"\nwrote {len(res)} samples to {a.output}" if a.output not in (None, "-") else
                 "" if a.output == "-" else "\nnot written: no -o given (add -o FILE, or -o - for JSON Lines on "
                                           "stdout)")
        print(res.summary() + where, file=out)
    return 0


def _experiment(a, extra: dict | None = None):
    """The experiment file with the command line's overrides (--data-path, --data, --cpus, and `extra`)."""
    from .experiment import load

    over = {k: v for k, v in (("data.path", getattr(a, "data_path", None)), ("data.name", getattr(a, "data", None)),
                              ("trial.cpus", getattr(a, "cpus", None))) if v is not None}
    exp = load(a.experiment, {**over, **(extra or {})})
    if exp.data.name != "digits" and not exp.data.path:
        raise DseError(f"{a.experiment}: data set '{exp.data.name}' needs a path: pass --data-path DIR")
    return exp


def _interrupted(a, e, again: str) -> int:
    _ignore_signals()
    print(f"dse: interrupted ({e.signame}): {e.done}/{e.total} done; rows are kept in {e.out}; continue with: "
          f"{again}", file=sys.stderr)
    return 143 if e.signame == "SIGTERM" else 130


def cmd_sweep(a) -> int:
    from .sweep import Interrupted, sweep

    exp = _experiment(a)
    out = a.out or f"runs/{exp.name}"
    try:
        sweep(exp, out, address=a.address, resume=a.resume, retries=a.retries, verbose=a.verbose, csv=a.csv)
    except Interrupted as e:
        return _interrupted(a, e, f"dse sweep {a.experiment} --out {out} --resume")
    print(f"results: {out}/results.parquet (rows as they finished: {out}/results.jsonl)")
    return 0


def cmd_run(a) -> int:
    from .pipeline import run
    from .sweep import Interrupted

    exp = _experiment(a)
    out = a.out or f"runs/{exp.name}"
    try:
        df, paths, lines = run(exp, out, address=a.address, verbose=a.verbose)
    except Interrupted as e:
        return _interrupted(a, e, "the same command (no report was written from a partial sweep)")
    print("\n".join(lines))
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def cmd_models(a) -> int:
    from .api import describe
    from .models.zoo import list_models, zoo
    from .units import fmt

    names, table = list_models(a.pattern), zoo()
    if not names:
        raise DseError(f"no model matches {a.pattern!r} (dse models lists them all)")
    rows = []
    for n in names:
        space, preset = table[n]
        s = describe(space, preset=preset)
        rows.append({"name": n, "space": space, "preset": preset, "res": s.config.net.res, "id": s.id,
                     "flops": s.cx.flops, "params": s.cx.params, "acts": s.cx.acts})
    if a.json:
        print(json.dumps(rows))
    else:
        w = max(len(r["name"]) for r in rows)
        print(f"{'model':{w}s}  {'res':>4s}  {'flops':>8s}  {'params':>8s}  space/preset")
        for r in rows:
            print(f"{r['name']:{w}s}  {r['res']:4d}  {fmt(r['flops']):>8s}  {fmt(r['params']):>8s}  "
                  f"{r['space']}/{r['preset']}")
    return 0


def cmd_export(a) -> int:
    from .io import check_new
    from .models.export import export

    if a.output:
        check_new(a.output, a.force)
    path = export(a.run, id=a.id, best=a.best, out=a.output, force=a.force)
    print(f"wrote {path} (load it with dse.load_model)")
    return 0


def cmd_search(a) -> int:
    import dataclasses
    from pathlib import Path

    from .experiment import Search, saved
    from .search import search
    from .sweep import Interrupted

    given = {k: getattr(a, k) for k in ("budget", "scheduler", "searcher", "grace", "reduction")
             if getattr(a, k) is not None}
    exp = _experiment(a, {"search": {}} if not given else {f"search.{k}": v for k, v in given.items()})
    if a.space:
        exp = exp.replace(spaces=(a.space,))
    base = exp.search or Search()
    name = f"{given.get('searcher', base.searcher)}_{given.get('scheduler', base.scheduler)}"
    out = Path(a.out or f"runs/{exp.name}_{name}")
    if a.resume and (out / "experiment.yaml").exists() and saved(out).search is not None:
        base = saved(out).search  # flags left out keep the saved search's values
    exp = exp.replace(search=dataclasses.replace(base, **given))
    try:
        search(exp, out, address=a.address, resume=a.resume, verbose=a.verbose, csv=a.csv)
    except Interrupted as e:
        return _interrupted(a, e, f"dse search {a.experiment} --out {out} --resume")
    from .analysis.table import best
    from .results import load_results

    df = load_results(out)
    n, stopped = len(df), int((df["status"] == "stopped").sum())
    done = f"{n} trials ({stopped} stopped early, {n - stopped - int((df['status'] == 'ok').sum())} failed)"
    try:
        top = best(df, 1)
    except DseError:
        print(f"no model completed its training in {done}: raise --budget or use --scheduler none")
        return 0
    print(f"best: {top['id'].iloc[0]} ({top['space'].iloc[0]}) error {top['error'].iloc[0]:.2f}% after {done}; "
          f"export it with: dse export {out} --best")
    return 0


def cmd_fixres(a) -> int:
    from .fixres import check_sizes, fixres

    try:
        sizes = check_sizes([x for x in a.test_sizes.replace(",", " ").split() if x])
    except DseError as e:
        raise DseError(f"--test-sizes: {e}") from None
    df = fixres(a.run, sizes, ids=a.id, top=a.top, tune_epochs=a.finetune)
    if a.json:
        print(df.to_json(orient="records"))
    else:
        print(df.round(2).to_string(index=False))
    return 0


def _phis(text: str, check=lambda phi: None) -> list[int]:
    """--phi as a list; `check(largest)` runs before a range is made (0..10**12 is refused, not allocated)."""
    try:
        if ".." in text:
            lo, hi = (int(x) for x in text.split(".."))
            out = None
        else:
            out = [int(x) for x in text.split(",")]
            lo, hi = min(out), max(out)
    except ValueError:
        raise DseError(f"--phi: expected N, A..B or a comma list, got '{text}'") from None
    if hi < lo:
        raise DseError(f"--phi: the range '{text}' is empty")
    if lo < 0:
        raise DseError(f"--phi must be >= 0, got {lo}")
    check(hi)
    return out if out is not None else list(range(lo, hi + 1))


def cmd_scale_apply(a) -> int:
    from .api import compound_family
    from .scaling import check_phi

    phis = _phis(a.phi, lambda phi: check_phi(phi, a.alpha, a.beta, a.gamma, a.base_res))
    df = compound_family(a.alpha, a.beta, a.gamma, phis, a.base_res)
    if a.json:
        print(df.to_json(orient="records"))
    else:
        from .units import fmt
        show = df.assign(flops=df["flops"].map(fmt), params=df["params"].map(fmt), acts=df["acts"].map(fmt))
        print(f"alpha={a.alpha} beta={a.beta} gamma={a.gamma} (alpha*beta^2*gamma^2 = "
              f"{a.alpha * a.beta ** 2 * a.gamma ** 2:.3f})")
        print(show.round(4).to_string(index=False))
    return 0


def cmd_scale_grid(a) -> int:
    from .experiment import load
    from .results import load_results
    from .sweep import sweep

    exp = load(a.experiment)
    if not exp.grid:
        raise DseError(f"{a.experiment}: no `grid:` section (step, tol, max, base_res, phi, width, depth)")
    out = a.out or f"runs/{exp.name}"
    from .plan import grid_plan
    from .sweep import Interrupted

    try:
        cands = grid_plan(exp)
    except DseError as e:
        raise DseError(f"{a.experiment}: grid: {e}") from None
    try:
        sweep(exp, out, address=a.address, resume=a.resume, verbose=a.verbose)
    except Interrupted as e:
        return _interrupted(a, e, f"dse scale grid {a.experiment} --out {out} --resume")
    df = load_results(out)
    if len(cands) > len(df):
        print(f"note: {len(cands)} grid points build {len(df)} distinct networks (depth/width rounding); "
              f"each network is trained once, under its first (alpha, beta, gamma)")
    cols = [c for c in ("alpha", "beta", "gamma", "error", "flops", "params", "status") if c in df.columns]
    df = df.assign(abg=df["alpha"] * df["beta"] ** 2 * df["gamma"] ** 2).sort_values("error", na_position="last")
    print(df[cols + ["abg"]].round(4).to_string(index=False))
    best = df.iloc[0]
    print(f"best: alpha={best['alpha']} beta={best['beta']} gamma={best['gamma']} (error {best['error']:.2f}%); "
          f"the paper found alpha=1.2 beta=1.1 gamma=1.15 on ImageNet")
    return 0


def cmd_status(a) -> int:
    from .status import status

    print(status(a.dir))
    return 0


# ---------------------------------------------------------------- analysis (reads results tables only)

def _runs(a):
    """The runs' results stacked, only --space's spaces when given, a space seen in several runs kept apart."""
    from .analysis.table import by_run_and_space, load_runs, select_spaces

    df = load_runs(a.runs)
    return by_run_and_space(select_spaces(df, a.space) if getattr(a, "space", None) else df)


def _save(fig, path, force) -> None:
    from .analysis.plots import save

    save(fig, path, force=force)
    print(f"wrote {path}")


def cmd_plot(a) -> int:
    from .analysis import plots
    from .io import check_new

    check_new(a.output, a.force)  # fail before the work, not after it
    df = _runs(a)
    if a.what == "edf":
        fig = plots.edf_figure(df, by=a.by, normalized=a.normalized, band=a.band, metric=a.metric)
    elif a.what == "params":
        fig = plots.params_figure(df, params=a.params.split(",") if a.params else None, metric=a.metric)
    else:
        fig = plots.widths_figure(df, top=a.top, metric=a.metric)
    _save(fig, a.output, a.force)
    return 0


def cmd_fit(a) -> int:
    from .analysis import fit as F
    from .io import check_new

    if a.widths is None and not a.runs:
        raise DseError("nothing to fit: give --widths W1,W2,... or a sweep folder / results / samples file")
    if a.widths is not None and a.runs:
        raise DseError("give --widths or a sweep folder / results file, not both")
    if a.widths is not None and (a.top is not None or a.id):
        raise DseError("--top and --id select models of a run; they do not apply to --widths")
    if a.output:
        check_new(a.output, a.force)

    def save(draw, *args, **kw):  # matplotlib only when a figure is asked for; no "wrote" line under --json
        from .analysis import plots
        fig = getattr(plots, draw)(*args, **kw)
        if a.json:
            plots.save(fig, a.output, a.force)
        else:
            _save(fig, a.output, a.force)
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
    fits = F.fit_results(df, None if with_summary else a.top, a.metric, a.id, a.quantum)
    summ = F.fit_summary(fits, a.metric, a.top) if with_summary else None
    shown = fits.head(a.top) if a.top is not None else fits
    if a.json:
        print('{"fits": ' + shown.to_json(orient="records", double_precision=15) + ', "summary": '
              + (summ.to_json(double_precision=15) if summ is not None else "null") + "}")
    else:
        from .regnet import stages_from_widths
        runs = (zip(*stages_from_widths(w)) for w in shown["widths"])  # widths as stage runs: 64x16 424x2
        print(shown.assign(widths=[" ".join(f"{w}x{d}" for d, w in r) for r in runs])
              .to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        if summ is not None:
            s = summ
            print(f"\nspearman(e_fit, {a.metric}) = {s.rho:.3f} (p = {s.p:.3g}, n = {s.n})")
            print(f"median e_fit: top {s.k} {s.e_fit_top:.4f}, rest {s.e_fit_rest:.4f}")
            print(f"fitted parameters of the top {s.k}:  " + "   ".join(
                f"{c} q25 {s[c + '_q25']:.4g} q50 {s[c + '_q50']:.4g} q75 {s[c + '_q75']:.4g}"
                for c in ("w0", "wa", "wm")))
    if a.output:
        save("fits_figure", fits, metric=a.metric)
    return 0


def cmd_refine(a) -> int:
    from .analysis.refine import refine, refine_path

    try:
        ts = [float(x) for x in a.e_fit.split(",")] if a.e_fit is not None else None
    except ValueError:
        raise DseError(f"--e-fit: expected numbers separated by commas, got {a.e_fit!r}") from None
    if a.min_n < 1:
        raise DseError(f"--min-n must be a positive integer, got {a.min_n}")
    df = _runs(a)
    cand = refine(df, metric=a.metric, e_fit=ts)
    try:
        path, why = refine_path(df, metric=a.metric, min_n=a.min_n), ""
    except DseError as e:  # no AnyNet space: the candidates still stand
        path, why = None, str(e)
    if a.json:
        print('{"candidates": ' + cand.to_json(orient="records", double_precision=15) + ', "path": '
              + (path.to_json(orient="records", double_precision=15) if path is not None else "[]") + "}")
    else:
        from .analysis.refine import path_notes
        fmt = lambda x: f"{x:.4g}"  # noqa: E731
        print(f"candidate constraints on {len(df)} rows, each space on its own (best {a.metric} mean shift first):")
        print(cand.to_string(index=False, float_format=fmt) if len(cand) else "no candidate applies")
        print(f"\ncumulative path A -> E per space (each step adds one constraint; it stops below {a.min_n} rows):")
        print(path.drop(columns="note").to_string(index=False, float_format=fmt) if path is not None else why)
        for line in path_notes(path) if path is not None else []:
            print(line)
    return 0


def cmd_compare(a) -> int:
    from .analysis.compare import compare, format_verdicts
    from .analysis.noise import noise

    if a.shift is not None and not a.shift > 0:
        raise DseError(f"--shift must be positive, got {a.shift}")
    df = _runs(a)
    nz = noise(df, a.metric)
    cmp = compare(df, by=a.by, metric=a.metric, noise=nz.noise, shift=a.shift, seed=a.seed)
    if a.json:
        print(cmp.to_json(orient="records", double_precision=15))
    else:
        print("\n".join(format_verdicts(cmp, nz, by=a.by)))
        if len(cmp):
            print("\n" + cmp.drop(columns="verdict").to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def cmd_noise(a) -> int:
    from .analysis.noise import by_space_table, noise, per_model

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
    from .analysis.rank import epoch_rank

    df = epoch_rank(_runs(a), metric=a.metric)
    print(df.to_json(orient="records", double_precision=15) if a.json
          else df.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    return 0


def cmd_report(a) -> int:
    from .analysis.report import report

    path = report(a.runs, a.output, force=a.force, metric=a.metric)
    print(f"wrote {path}")
    return 0


def build_parser() -> Parser:
    p = Parser(prog="dse", description="Design-space exploration for convolutional networks.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    s = sub.add_parser("spaces", help="list the available spaces")
    s.set_defaults(fn=cmd_spaces)

    s = sub.add_parser("show", help="print a space's declaration, resolved through `extends`")
    s.add_argument("space")
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("describe", help="one configuration from given parameters: stage table and complexity")
    s.add_argument("--space", required=True)
    s.add_argument("--set", nargs="+", metavar="K=V", help="parameter values, e.g. d=22 w0=24 wa=24.48 wm=2.54 g=16")
    s.add_argument("--preset", help="a named preset of the space, e.g. 400mf for regnetx")
    s.add_argument("--res", type=_ranged(int, 1, 4096), help="resolution for the complexity (default: the space's)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_describe)

    s = sub.add_parser("sample", help="sample configurations inside a complexity band")
    s.add_argument("--space", required=True)
    s.add_argument("--flops", help="band of multiply-adds, e.g. 360-400M, 0.36-0.4G, -400M, 360M-")
    s.add_argument("--params", help="band of parameters, e.g. 2-6M")
    s.add_argument("--acts", help="band of activations, e.g. -5M")
    s.add_argument("-n", type=_ranged(int, 1, 10 ** 6), default=500, help="number of distinct samples (default 500)")
    s.add_argument("--seed", type=_ranged(int, 0, 2 ** 32 - 1), default=0)
    s.add_argument("-o", "--output", help="JSON Lines output ('-' for stdout)")
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    s.add_argument("--workers", type=_ranged(int, 1, 64), default=min(4, os.cpu_count() or 1),
                   help="processes (the output does not depend on it)")
    s.add_argument("--max-tries", type=_ranged(int, 1, 10 ** 9),
                   help="give up after this many draws (default max(200000, 400n); also after 120 s)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("sweep", help="train every sample of an experiment as a Ray Tune trial")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>)")
    s.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    s.add_argument("--resume", action="store_true", help="continue a stopped sweep in --out")
    s.add_argument("--retries", type=_ranged(int, 0, 100), help="retry a trial that raised up to N times (0..100)")
    s.add_argument("--data-path", help="data set folder (CIFAR, ImageFolder)")
    s.add_argument("--data", help="data set name, overriding the experiment's (digits, cifar10, cifar100, imagefolder)")
    s.add_argument("--cpus", type=_ranged(float, 0.01, 1024), help="CPUs per trial (also its torch threads)")
    s.add_argument("--csv", action="store_true", help="also write results.csv at the end")
    s.set_defaults(fn=cmd_sweep)

    s = sub.add_parser("run", help="the whole protocol: sweep (continuing a stopped one), EDF figure, HTML report")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>); running again continues it")
    s.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    s.add_argument("--data-path", help="data set folder (CIFAR, ImageFolder)")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("search", help="the best model of one space inside its band: random or TPE, ASHA, a budget")
    s.add_argument("experiment", help="an experiments/*.yaml file (one space and a band; an optional search: section)")
    s.add_argument("--budget", help="trials (e.g. 32) or wall time (90s, 10m, 2h)")
    s.add_argument("--scheduler", choices=["asha", "none"], help="ASHA early stopping (default) or none")
    s.add_argument("--searcher", choices=["random", "tpe"], help="band samples at random (default) or Optuna's TPE")
    s.add_argument("--grace", type=_ranged(int, 1, 10_000), help="ASHA grace period in epochs (default 30%% of them)")
    s.add_argument("--reduction", type=_ranged(float, 1.01, 100), help="ASHA reduction factor (default 2)")
    s.add_argument("--space", help="the space to search, when the experiment names several")
    s.add_argument("--out", help="folder (default runs/<name>_<searcher>_<scheduler>)")
    s.add_argument("--resume", action="store_true", help="continue a stopped search (or grow its budget)")
    s.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    s.add_argument("--data-path", help="data set folder (CIFAR, ImageFolder)")
    s.add_argument("--cpus", type=_ranged(float, 0.01, 1024), help="CPUs per trial (also its torch threads)")
    s.add_argument("--csv", action="store_true", help="also write results.csv at the end")
    s.set_defaults(fn=cmd_search)

    s = sub.add_parser("fixres", help="errors of trained models at several test resolutions (FixRes)")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights, or one weights/<id>.pt file")
    s.add_argument("--test-sizes", required=True, help="e.g. 24,32,40")
    s.add_argument("--top", type=int, help="only the K best models of the sweep")
    s.add_argument("--id", nargs="+", help="only these sample ids")
    s.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="fine-tune the classifier (and last BN statistics) at the best size, then report the gain")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_fixres)

    s = sub.add_parser("models", help="the named models (zoo presets) with their resolution, flops and params")
    s.add_argument("pattern", nargs="?", help="a shell pattern, e.g. 'regnety_*' or 'efficientnet_b[0-3]'")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_models)

    s = sub.add_parser("export", help="one model file (weights, config, recipe) from a sweep's kept weights")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the sample id (a unique prefix is enough)")
    which.add_argument("--best", action="store_true", help="the finished model with the lowest error")
    s.add_argument("-o", "--output", help="the model file (default <id>.pt)")
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("scale", help="EfficientNet compound scaling: the alpha/beta/gamma grid, scaled families")
    scale = s.add_subparsers(dest="scale_cmd", metavar="grid|apply", parser_class=Parser)
    scale.required = True
    g = scale.add_parser("grid", help="train every (alpha, beta, gamma) of an experiment's grid at phi=1, rank them")
    g.add_argument("experiment")
    g.add_argument("--out")
    g.add_argument("--address")
    g.add_argument("--resume", action="store_true")
    g.set_defaults(fn=cmd_scale_grid)
    g = scale.add_parser("apply", help="the compound-scaled family and its complexity")
    g.add_argument("--alpha", type=float, default=1.2)
    g.add_argument("--beta", type=float, default=1.1)
    g.add_argument("--gamma", type=float, default=1.15)
    g.add_argument("--phi", default="0..7", help="N, A..B or a comma list (default 0..7)")
    g.add_argument("--base-res", type=int, default=224)
    g.add_argument("--json", action="store_true")
    g.set_defaults(fn=cmd_scale_apply)

    runs_help = "sweep folders or results files (.jsonl, .parquet, .csv)"
    metric_help = "the column to rank by (default error; reward ranks higher-is-better)"

    s = sub.add_parser("plot", help="figures from results tables: edf, params, widths")
    s.add_argument("what", choices=["edf", "params", "widths"])
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("-o", "--output", required=True, help="a .png or .svg file")
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--by", default="space", help="the column that names the curves (default space; run, ...)")
    s.add_argument("--normalized", nargs="?", const="flops", choices=["flops", "params", "acts"],
                   help="complexity-normalised EDF (by flops unless named)")
    s.add_argument("--band", action="store_true", help="bootstrap 95%% confidence band around each EDF")
    s.add_argument("--params", help="comma list of parameters for `params` (default: all the table has)")
    s.add_argument("--top", type=int, default=20, help="models shown by `widths` (default 20)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    s.set_defaults(fn=cmd_plot)

    s = sub.add_parser("fit", help="fit the quantized linear width rule (d, w0, wa, wm, e_fit)")
    s.add_argument("runs", nargs="*", help="sweep folders, results files or a samples file from `dse sample`")
    s.add_argument("--widths", help="per-block widths, e.g. 24,56,56,152,152")
    s.add_argument("--top", type=int, help="show the K best models (default: all); the summary compares them with "
                   "the rest (default K: the best 10%%)")
    s.add_argument("--id", nargs="+", help="only these sample ids (no summary)")
    s.add_argument("-q", "--quantum", type=int, default=8, help="width quantum (default 8)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("-o", "--output", help="also draw a figure (.png/.svg)")
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    s.set_defaults(fn=cmd_fit)

    s = sub.add_parser("refine", help="test candidate constraints on a sweep's samples, no new training")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--e-fit", help="e_fit thresholds to test, comma list (default 0.05,0.1,0.2)")
    s.add_argument("--space", nargs="+", help="only these spaces (each space is refined on its own)")
    s.add_argument("--min-n", type=int, default=10, help="the A -> E path stops at a step leaving fewer rows (10)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_refine)

    s = sub.add_parser("compare", help="verdicts: every pair of spaces (or runs), with intervals and the noise floor")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--by", choices=["space", "run"], default="space", help="compare spaces (default) or runs")
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--shift", type=float, help="the shift the power line speaks of (default 2 points of error)")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    s.add_argument("--json", action="store_true", help="print JSON records")
    s.set_defaults(fn=cmd_compare)

    s = sub.add_parser("noise", help="the noise floor: per-model seed std, spread of models (IQR), their ratio")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_noise)

    s = sub.add_parser("analyze", help="low-epoch validity: rank correlation of each epoch's error with the final")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--metric", default="error", help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_analyze)

    s = sub.add_parser("report", help="one self-contained HTML report of one or more sweeps")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("-o", "--output", required=True, help="an .html file")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    s.set_defaults(fn=cmd_report)

    s = sub.add_parser("status", help="progress of a running or stopped sweep")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_status)
    return p


class StdoutError(Exception):
    """Standard output could not be written (a full disk, /dev/full); not a closed pipe."""


class _Stdout:
    """sys.stdout whose write errors say so (StdoutError), so main can tell them from any other OSError."""

    def __init__(self, f):
        self._f = f

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutError(e.strerror or type(e).__name__) from None

    def write(self, text):
        return self._guard(self._f.write, text)

    def flush(self):
        return self._guard(self._f.flush)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _drop_stdout() -> None:
    """After stdout failed: point its descriptor at /dev/null, so the flush at exit cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass  # not a real descriptor (a test's capture): nothing is flushed at exit


def _ignore_signals() -> None:
    """After an interrupt, while dse exits: a second Ctrl-C (or SIGTERM) is ignored, never a traceback."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def main(argv=None) -> int:
    if sys.stdout is None:  # `dse ... >&-`
        print("dse: error: standard output is closed; redirect it to a file or to /dev/null", file=sys.stderr)
        return 1
    out = sys.stdout
    sys.stdout = _Stdout(out)
    try:
        a = build_parser().parse_args(band_args(sys.argv[1:] if argv is None else [str(x) for x in argv]))
        logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(a.verbose, 2)],
                            format="%(levelname)s %(name)s: %(message)s")
        code = a.fn(a)
        sys.stdout.flush()  # a full device fails here, as one line, rather than at exit
        return code
    except DseError as e:
        print(f"dse: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _ignore_signals()
        print("dse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except StdoutError as e:
        _drop_stdout()
        print(f"dse: error: cannot write to standard output ({e})", file=sys.stderr)
        return 1
    finally:
        sys.stdout = out
