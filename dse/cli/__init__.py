"""The `dse` command: a thin layer that parses arguments, calls the Python API and formats the output."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import yaml

from ..errors import DseError


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
    from ..models.blocks import DEFAULT, block
    from ..space.units import fmt

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
    from ..space.sampler import load
    from ..space.spec import list_spaces

    recs = []
    for name, path in list_spaces().items():
        sp = load(name)
        parent = sp.spec.get("extends_chain", [])
        recs.append({"name": name, "family": sp.family, "extends": parent[0] if parent else None,
                     "doc": sp.spec.get("doc", ""), "path": str(path)})
    if a.json:
        print(json.dumps(recs))
    for r in recs if not a.json else ():
        print(f"{r['name']:16s} {r['family']:7s} {'<- ' + r['extends'] if r['extends'] else '':16s} {r['doc']}")
    return 0


def cmd_show(a) -> int:
    from ..space.sampler import load
    from ..space.spec import resolve

    sp = load(a.space)  # the whole space checked (parameters, constraints, expressions) before it is shown
    declared = resolve(a.space)[0].get("presets", {})
    spec = {k: v for k, v in sp.spec.items() if k not in ("extends_chain", "presets")}
    chain = sp.spec.get("extends_chain", [])
    outside = sp.presets_outside()
    if a.json:
        print(json.dumps({"path": str(sp.path), "extends_chain": chain, "space": spec,
                          "presets": {k: {**sp.presets[k], "outside": why} for k, why in outside.items()},
                          "not_listed": [k for k in declared if k not in sp.presets]}))
        return 0
    print(f"# {sp.path}" + (f" (resolved through {' <- '.join(chain)})" if chain else ""))
    print(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110).rstrip())
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
    from ..space.sampler import describe

    s = describe(a.space, preset=a.preset, at_res=a.res, **parse_sets(a.set))
    rec = s.to_dict()
    print(json.dumps(rec, sort_keys=True) if a.json else stage_table(rec))
    return 0


def cmd_sample(a) -> int:
    from ..io import check_new, write_atomic
    from ..progress import Progress
    from ..space.sampler import sample
    from ..space.units import parse_band

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
    from ..run.experiment import load

    over = {k: v for k, v in (("data.path", getattr(a, "data_path", None)), ("data.name", getattr(a, "data", None)),
                              ("trial.cpus", getattr(a, "cpus", None))) if v is not None}
    return load(a.experiment, {**over, **(extra or {})})


def _interrupted(a, e, again: str) -> int:
    _ignore_signals()
    print(f"dse: interrupted ({e.signame}): {e.done}/{e.total} done; rows are kept in {e.out}; continue with: "
          f"{again}", file=sys.stderr)
    return 143 if e.signame == "SIGTERM" else 130


def cmd_sweep(a) -> int:
    from ..run.sweep import Interrupted, sweep

    exp = _experiment(a)
    out = a.out or f"runs/{exp.name}"
    if a.dry_run:
        from ..run.dryrun import dry_run, lines

        print("\n".join(lines(dry_run(exp, out))))
        return 0
    try:
        sweep(exp, out, address=a.address, resume=a.resume, retries=a.retries, verbose=a.verbose, csv=a.csv)
    except Interrupted as e:
        return _interrupted(a, e, f"dse sweep {a.experiment} --out {out} --resume")
    print(f"results: {out}/results.parquet (rows as they finished: {out}/results.jsonl)")
    return 0


def cmd_run(a) -> int:
    from ..run.pipeline import run
    from ..run.sweep import Interrupted

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
    from ..space.sampler import describe
    from ..space.zoo import list_models, zoo
    from ..space.units import fmt

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
    from ..io import check_new
    from ..run.weights import export

    if a.output:
        check_new(a.output, a.force)
    path = export(a.run, id=a.id, best=a.best, out=a.output, force=a.force)
    print(f"wrote {path} (load it with dse.load_model)")
    return 0


def cmd_search(a) -> int:
    import dataclasses
    from pathlib import Path

    from ..run.experiment import Search, saved
    from ..run.search import search
    from ..run.sweep import Interrupted

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
    from ..analysis.table import best
    from ..results import load_results

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
    from ..run.weights import fixres
    from ..train.fixres import check_sizes

    if a.test_sizes is None:  # the sweep's own test sizes: the paired summary from its table
        return _fixres_summary(a)
    try:
        sizes = check_sizes([x for x in a.test_sizes.replace(",", " ").split() if x])
    except DseError as e:
        raise DseError(f"--test-sizes: {e}") from None
    df = fixres(a.run, sizes, ids=a.id, top=a.top, tune_epochs=a.finetune, arm=a.arm)
    if a.json:
        print(df.to_json(orient="records"))
    else:
        print(df.round(2).to_string(index=False))
    return 0


def _fixres_summary(a) -> int:
    from pathlib import Path

    from ..analysis import fixres
    from ..analysis.noise import noise
    from ..results import load_results

    if Path(a.run).is_file() and Path(a.run).suffix == ".pt":
        raise DseError(f"{a.run}: give --test-sizes to evaluate one weights file")
    df = load_results(a.run)
    if "test_errors" not in df.columns:
        raise DseError(f"{a.run}: its trials were not tested at several sizes (trial.test_sizes); give --test-sizes "
                       "to evaluate its kept weights")
    arms = fixres.arms_of(df)
    arm = a.arm or arms[0]
    if arm not in arms:
        raise DseError(f"--arm {arm}: not an arm of {a.run} (it has {', '.join(map(str, arms))})")
    s = fixres.summary(df, arm, seed=0)
    if a.json:
        print(json.dumps(s))
        return 0
    r = s["train_size"]
    print(f"{a.run}{f' arm {arm}' if arm else ''}: trained at {r} px; error at each test size, paired with {r} px "
          "over models (95% bootstrap interval):")
    for x in s["sizes"]:
        print(f"  {x['size']:>4} px  n {x['n']:>3}  error {x['mean_error']:6.2f}  delta {x['delta']:+6.2f} "
              f"[{x['ci_low']:+.2f}, {x['ci_high']:+.2f}]")
    if s["finetune"]:
        f = s["finetune"]
        print(f"  fine-tuned at {f['size']} px: error {f['mean_error']:.2f}, delta vs {r} px without it "
              f"{f['delta']:+.2f} [{f['ci_low']:+.2f}, {f['ci_high']:+.2f}]")
    print("\n".join(fixres.lines(df[df["arm"].astype(str) == arm] if arm else df, noise(df).noise)))
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
    from ..space.scaled import compound_family
    from ..space.scaling import check_phi

    phis = _phis(a.phi, lambda phi: check_phi(phi, a.alpha, a.beta, a.gamma, a.base_res))
    df = compound_family(a.alpha, a.beta, a.gamma, phis, a.base_res)
    if a.json:
        print(df.to_json(orient="records"))
    else:
        from ..space.units import fmt
        show = df.assign(flops=df["flops"].map(fmt), params=df["params"].map(fmt), acts=df["acts"].map(fmt))
        print(f"alpha={a.alpha} beta={a.beta} gamma={a.gamma} (alpha*beta^2*gamma^2 = "
              f"{a.alpha * a.beta ** 2 * a.gamma ** 2:.3f})")
        print(show.round(4).to_string(index=False))
    return 0


def cmd_scale_grid(a) -> int:
    from ..run.experiment import load
    from ..results import load_results
    from ..run.sweep import sweep

    exp = load(a.experiment)
    if not exp.grid:
        raise DseError(f"{a.experiment}: no `grid:` section (step, tol, max, base_res, phi, width, depth)")
    out = a.out or f"runs/{exp.name}"
    from ..run.plan import grid_plan
    from ..run.sweep import Interrupted

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


def cmd_data_prepare(a) -> int:
    from ..data.cache import META, Interrupted, files, prepare
    from ..run.resources import gib

    again = f"dse data prepare imagefolder {a.path} --res {a.res} -o {a.output} --resume"
    try:
        m = prepare(a.path, a.output, a.res, workers=a.workers, resume=a.resume, progress=not a.quiet)
    except Interrupted as e:
        print(f"dse: interrupted: {e.done}/{e.total} images are in {e.out}; continue with: {again}", file=sys.stderr)
        return 130
    size = sum(os.path.getsize(os.path.join(a.output, f)) for s in m["counts"] for f in files(s)[:2])
    counts = " + ".join(f"{n} {s}" for s, n in m["counts"].items())
    print(f"{a.output}: {counts} images of {len(m['classes'])} classes at {m['res']} px ({gib(size)}; "
          f"{m['decoded']} decoded now); class names and sha256 in {os.path.join(a.output, META)}")
    print(f"train on it with: data: {{name: cache, path: {a.output}, res: {m['res']}}}")
    return 0


def cmd_status(a) -> int:
    from ..run.status import status, summary

    if a.output and not a.curves:
        raise DseError("-o draws the live curves: add --curves")
    if not a.curves:
        print(json.dumps(summary(a.dir)) if a.json else status(a.dir))
        return 0
    from ..run.curves import curves_table, load_curves
    from ..io import check_new

    if a.output:
        check_new(a.output, a.force)
    summary(a.dir)  # a sweep folder, or a one-line error
    df = load_curves(a.dir)
    if a.json:
        print(df.to_json(orient="records", double_precision=15))
    elif a.output:
        from ..analysis.plots import curves_figure

        _save(curves_figure(df), a.output, a.force)
    elif not len(df):
        print(f"{a.dir}: no epoch recorded yet")
    else:
        t = curves_table(df)
        print(f"{a.dir}: {len(t)} trials, {len(df)} epochs recorded (latest first; curve: val error per epoch, "
              "0-100%)")
        print(t.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


# ---------------------------------------------------------------- analysis (reads results tables only)

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


def _save(fig, path, force) -> None:
    from ..analysis.plots import save

    save(fig, path, force=force)
    print(f"wrote {path}")


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
    _save(fig, a.output, a.force)
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


def _cmd(sub, name: str, help: str, examples: str, description: str | None = None):
    """A subcommand with a description and an epilog of examples (shown by --help as written)."""
    return sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                          epilog="examples:\n" + "\n".join(f"  {x}" for x in examples.strip().splitlines()),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> Parser:
    from .. import __version__

    p = Parser(prog="dse", description="Design-space exploration for convolutional networks: sample a design space "
               "inside a complexity band, train every sample as a Ray Tune trial, compare spaces by their error EDFs.",
               epilog="examples:\n  dse run experiments/quick.yaml\n  dse sample --space regnetx --flops 360-400M "
               "-n 100 -o s.jsonl\n\n'dse COMMAND --help' describes a command.",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--version", action="version", version=f"dse {__version__}", help="print dse's version and exit")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    space_help = "a space name (see dse spaces) or a space file (.yaml)"
    out_help = "replace an existing output file"

    s = _cmd(sub, "spaces", "list the available spaces", "dse spaces\ndse spaces --json",
             "List the spaces found in $DSE_SPACES, the checkout's spaces/ and the installed package: name, family, "
             "parent and doc line.")
    s.add_argument("--json", action="store_true", help="print JSON records (name, family, extends, doc, path)")
    s.set_defaults(fn=cmd_spaces)

    s = _cmd(sub, "show", "print a space's declaration, resolved through `extends`",
             "dse show anynetx_e\ndse show my/space.yaml --json")
    s.add_argument("space", help=space_help)
    s.add_argument("--json", action="store_true", help="print the resolved declaration as JSON")
    s.set_defaults(fn=cmd_show)

    s = _cmd(sub, "describe", "one configuration from given parameters: stage table and complexity",
             "dse describe --space regnetx --set d=22 w0=24 wa=24.48 wm=2.54 g=16\n"
             "dse describe --space regnety --preset 800mf --json")
    s.add_argument("--space", required=True, help=space_help)
    s.add_argument("--set", nargs="+", metavar="K=V", help="parameter values, e.g. d=22 w0=24 wa=24.48 wm=2.54 g=16")
    s.add_argument("--preset", help="a named preset of the space, e.g. 400mf for regnetx")
    s.add_argument("--res", type=_ranged(int, 1, 4096), help="resolution for the complexity (default: the space's)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_describe)

    s = _cmd(sub, "sample", "sample configurations inside a complexity band",
             "dse sample --space anynetx_c --flops 360-400M -n 500 -o samples.jsonl\n"
             "dse sample --space regnety --flops 360-400M --params -6M --seed 1 -o - | head",
             "Draw distinct configurations of a space whose complexity lies inside the bands (exact sampling of "
             "shared and monotone constraints, rejection for the band and expression constraints). The same seed "
             "gives the same bytes for any --workers.")
    s.add_argument("--space", required=True, help=space_help)
    s.add_argument("--flops", help="band of multiply-adds, e.g. 360-400M, 0.36-0.4G, -400M, 360M-")
    s.add_argument("--params", help="band of parameters, e.g. 2-6M")
    s.add_argument("--acts", help="band of activations, e.g. -5M")
    s.add_argument("-n", type=_ranged(int, 1, 10 ** 6), default=500, help="number of distinct samples (default 500)")
    s.add_argument("--seed", type=_ranged(int, 0, 2 ** 32 - 1), default=0, help="the sampler's seed (default 0)")
    s.add_argument("-o", "--output", help="JSON Lines output ('-' for stdout)")
    s.add_argument("--force", action="store_true", help=out_help)
    s.add_argument("--workers", type=_ranged(int, 1, 64), default=min(4, os.cpu_count() or 1),
                   help="processes (the output does not depend on it)")
    s.add_argument("--max-tries", type=_ranged(int, 1, 10 ** 9),
                   help="give up after this many draws (default max(200000, 400n); also after 120 s)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    s.set_defaults(fn=cmd_sample)

    s = _cmd(sub, "sweep", "train every sample of an experiment as a Ray Tune trial",
             "dse sweep experiments/main.yaml --out runs/main\n"
             "dse sweep experiments/main.yaml --dry-run\n"
             "dse sweep experiments/main.yaml --out runs/main --resume",
             "Train every sample of an experiment (then its noise-floor repeats) as Ray Tune trials, one row per "
             "trial in OUT/results.jsonl and live curves in OUT/curves.jsonl. Ctrl-C is safe; --resume continues.")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>)")
    s.add_argument("--dry-run", action="store_true",
                   help="print the plan (trials per space, noise repeats, the band's acceptance rate) and a cost "
                        "estimate; train nothing, make no folder")
    s.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    s.add_argument("--resume", action="store_true", help="continue a stopped sweep in --out")
    s.add_argument("--retries", type=_ranged(int, 0, 100), help="retry a trial that raised up to N times (0..100)")
    s.add_argument("--data-path", help="data set folder (IDX files, CIFAR, an image folder, a prepared cache)")
    s.add_argument("--data", help="data set name, overriding the experiment's (digits, fashion_mnist, mnist, kmnist, "
                   "cifar10, cifar100, imagefolder, cache)")
    s.add_argument("--cpus", type=_ranged(float, 0.01, 1024), help="CPUs per trial (also its torch threads)")
    s.add_argument("--csv", action="store_true", help="also write results.csv at the end")
    s.set_defaults(fn=cmd_sweep)

    s = _cmd(sub, "run", "the whole protocol: sweep (continuing a stopped one), EDF figure, HTML report",
             "dse run experiments/quick.yaml\ndse run experiments/main.yaml --out runs/main")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>); running again continues it")
    s.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    s.add_argument("--data-path", help="data set folder (IDX files, CIFAR, an image folder, a prepared cache)")
    s.set_defaults(fn=cmd_run)

    s = _cmd(sub, "search", "the best model of one space inside its band: random or TPE, ASHA, a budget",
             "dse search experiments/search.yaml --budget 32 --searcher tpe\n"
             "dse search experiments/search.yaml --budget 10m --searcher random --scheduler none")
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
    s.add_argument("--data-path", help="data set folder (IDX files, CIFAR, an image folder, a prepared cache)")
    s.add_argument("--cpus", type=_ranged(float, 0.01, 1024), help="CPUs per trial (also its torch threads)")
    s.add_argument("--csv", action="store_true", help="also write results.csv at the end")
    s.set_defaults(fn=cmd_search)

    s = _cmd(sub, "fixres", "errors of trained models at several test resolutions (FixRes)",
             "dse fixres runs/fixres --test-sizes 12,16,20\ndse fixres runs/fixres --test-sizes 12,16,20 --finetune 2")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights, or one weights/<id>.pt file")
    s.add_argument("--test-sizes", help="evaluate the kept weights at these sizes, e.g. 24,32,40 (default: the "
                   "paired summary of the sizes the sweep tested, trial.test_sizes)")
    s.add_argument("--arm", help="the arm to summarise or evaluate (default: the first)")
    s.add_argument("--top", type=int, help="only the K best models of the sweep")
    s.add_argument("--id", nargs="+", help="only these sample ids")
    s.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="fine-tune the classifier (and last BN statistics) at the best size, then report the gain")
    s.add_argument("--json", action="store_true", help="print JSON records")
    s.set_defaults(fn=cmd_fixres)

    s = _cmd(sub, "models", "the named models (zoo presets) with their resolution, flops and params",
             "dse models regnety\ndse models 'efficientnet_b[0-3]' --json")
    s.add_argument("pattern", nargs="?", help="a part of the name (regnety, 400mf) or a shell pattern "
                                              "('regnety_*', 'efficientnet_b[0-3]')")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_models)

    s = _cmd(sub, "export", "one model file (weights, config, recipe) from a sweep's kept weights",
             "dse export runs/search_tpe_asha --best -o best.pt\ndse export runs/main --id 9d9c65")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the sample id (a unique prefix is enough)")
    which.add_argument("--best", action="store_true", help="the finished model with the lowest error")
    s.add_argument("-o", "--output", help="the model file (default <id>.pt)")
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_export)

    s = _cmd(sub, "scale", "EfficientNet compound scaling: the alpha/beta/gamma grid, scaled families",
             "dse scale apply --phi 0..7\ndse scale grid experiments/efficientnet_grid.yaml")
    scale = s.add_subparsers(dest="scale_cmd", metavar="grid|apply", parser_class=Parser)
    scale.required = True
    g = _cmd(scale, "grid", "train every (alpha, beta, gamma) of an experiment's grid at phi=1, rank them",
             "dse scale grid experiments/efficientnet_grid.yaml\n"
             "dse scale grid experiments/efficientnet_grid.yaml --out runs/grid --resume")
    g.add_argument("experiment", help="an experiments/*.yaml file with a grid: section")
    g.add_argument("--out", help="sweep folder (default runs/<name>)")
    g.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    g.add_argument("--resume", action="store_true", help="continue a stopped grid in --out")
    g.set_defaults(fn=cmd_scale_grid)
    g = _cmd(scale, "apply", "the compound-scaled family and its complexity",
             "dse scale apply --phi 0..7\ndse scale apply --alpha 1.2 --beta 1.1 --gamma 1.15 --phi 1,3 --json")
    g.add_argument("--alpha", type=float, default=1.2, help="depth multiplier per phi (default 1.2)")
    g.add_argument("--beta", type=float, default=1.1, help="width multiplier per phi (default 1.1)")
    g.add_argument("--gamma", type=float, default=1.15, help="resolution multiplier per phi (default 1.15)")
    g.add_argument("--phi", default="0..7", help="N, A..B or a comma list (default 0..7)")
    g.add_argument("--base-res", type=int, default=224, help="the base resolution that gamma scales (default 224)")
    g.add_argument("--json", action="store_true", help="print JSON records")
    g.set_defaults(fn=cmd_scale_apply)

    runs_help = "sweep folders or results files (.jsonl, .parquet, .csv)"
    metric_help = "the column to rank by (default error; reward ranks higher-is-better)"
    fig_help = "a .png, .svg or .pdf file"

    s = _cmd(sub, "plot", "figures from results tables: edf, params, widths",
             "dse plot edf runs/main --band -o edf.pdf\ndse plot params runs/main --params w,flops -o params.png")
    s.add_argument("what", choices=["edf", "params", "widths"], help="the figure: error EDFs, the error against the "
                   "design parameters, or the widths of the best models")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("-o", "--output", required=True, help=fig_help)
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--by", default="space", help="the column that names the curves (default space; run, ...)")
    s.add_argument("--normalized", nargs="?", const="flops", choices=["flops", "params", "acts"],
                   help="complexity-normalised EDF (by flops unless named)")
    s.add_argument("--band", action="store_true", help="bootstrap 95%% confidence band around each EDF")
    s.add_argument("--params", help="comma list of parameters for `params` (default: all the table has)")
    s.add_argument("--top", type=int, default=20, help="models shown by `widths` (default 20)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_plot)

    s = _cmd(sub, "fit", "fit the quantized linear width rule (d, w0, wa, wm, e_fit)",
             "dse fit --widths 24,56,56,152,152,152,152,368 --json\ndse fit runs/main --top 10 -o fits.pdf",
             "Fit the quantized linear width rule of RegNet to per-block widths, or to every finished model of a "
             "sweep; a sweep's summary (Spearman of e_fit and the error, e_fit of the best models) is per space.")
    s.add_argument("runs", nargs="*", help="sweep folders, results files or a samples file from `dse sample`")
    s.add_argument("--widths", help="per-block widths, e.g. 24,56,56,152,152")
    s.add_argument("--top", type=int, help="show the K best models (default: all); the summary compares them with "
                   "the rest (default K: the best 10%%)")
    s.add_argument("--id", nargs="+", help="only these sample ids (no summary)")
    s.add_argument("-q", "--quantum", type=int, default=8, help="width quantum (default 8)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("-o", "--output", help="also draw a figure (" + fig_help + ")")
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_fit)

    s = _cmd(sub, "refine", "test candidate constraints on a sweep's samples, no new training",
             "dse refine runs/main\ndse refine runs/a --space anynetx_a --e-fit 0.05,0.1 --min-n 20 --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--e-fit", help="e_fit thresholds to test, comma list (default 0.05,0.1,0.2)")
    s.add_argument("--space", nargs="+", help="only these spaces (each space is refined on its own)")
    s.add_argument("--min-n", type=int, default=10, help="a candidate keeping fewer rows is 'too few'; the A -> E "
                   "path stops at a step leaving fewer rows (10)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_refine)

    s = _cmd(sub, "compare", "verdicts: every pair of spaces (or runs), with intervals and the noise floor",
             "dse compare runs/main\ndse compare runs/a runs/b --by run --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--by", choices=["space", "run", "arm"],
                   help="compare spaces, runs or arms (default: arms for an experiment with arms, else spaces)")
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--shift", type=float, help="the shift the power line speaks of (default 2 points of error)")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    s.add_argument("--force", action="store_true", help="--by run: give verdicts even when the runs' recipe, data "
                   "or band differ (they are labelled 'not comparable' otherwise)")
    s.add_argument("--json", action="store_true", help="print JSON records")
    s.set_defaults(fn=cmd_compare)

    s = _cmd(sub, "noise", "the noise floor: per-model seed std, spread of models (IQR), their ratio",
             "dse noise runs/main\ndse noise runs/main --space anynetx_a --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_noise)

    s = _cmd(sub, "analyze", "low-epoch validity: rank correlation of each epoch's error with the final",
             "dse analyze runs/main\ndse analyze runs/main --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--metric", default="error", help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_analyze)

    s = _cmd(sub, "report", "one self-contained HTML report of one or more sweeps",
             "dse report runs/main -o report.html\ndse report runs/a runs/b -o both.html --force")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("-o", "--output", required=True, help="an .html file")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_report)

    s = _cmd(sub, "data", "data sets: prepare an image folder of any size as a memory-mapped cache",
             "dse data prepare imagefolder ~/data/imagenet --res 64 -o ~/data/imagenet64\n"
             "dse sweep experiments/regnet_imagenet64.yaml --data-path ~/data/imagenet64")
    data = s.add_subparsers(dest="data_cmd", metavar="prepare", parser_class=Parser)
    data.required = True
    g = _cmd(data, "prepare", "decode an image folder once into a uint8 memory-mapped cache that sweeps read",
             "dse data prepare imagefolder ~/data/imagenet --res 64 -o ~/data/imagenet64\n"
             "dse data prepare imagefolder ~/data/imagenet --res 64 -o ~/data/imagenet64 --resume",
             "Decode every image of PATH/<class>/<image> (or PATH/train and PATH/val) once: its short side resized "
             "to RES, then the centre RES×RES crop, into uint8 arrays in CACHE with their labels, the class names, "
             "the training images' mean and std and each file's sha256. Sweeps read it with data: {name: cache, "
             "path: CACHE}, a batch at a time from the memory map. Ctrl-C is safe; --resume continues.")
    g.add_argument("kind", choices=["imagefolder"], help="the source's layout (imagefolder: PATH/<class>/<image>)")
    g.add_argument("path", help="the image folder")
    g.add_argument("--res", type=_ranged(int, 1, 4096), required=True, help="the stored images' side in pixels")
    g.add_argument("-o", "--output", required=True, help="the cache folder (new, or unfinished with --resume)")
    g.add_argument("--workers", type=_ranged(int, 1, 256), help="decoding processes (default: the CPUs, at most "
                   "16; the cache does not depend on it)")
    g.add_argument("--resume", action="store_true", help="continue an unfinished cache in -o")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(fn=cmd_data_prepare)

    s = _cmd(sub, "status", "progress of a running or stopped sweep; --curves for its live training curves",
             "dse status runs/main\ndse status runs/main --curves\ndse status runs/main --curves -o curves.png")
    s.add_argument("dir", help="a sweep or search folder")
    s.add_argument("--curves", action="store_true", help="per trial, its latest epoch with a sparkline of the val "
                   "error (from curves.jsonl); with -o, a figure of every trial's curves")
    s.add_argument("-o", "--output", help="with --curves: draw the curves to " + fig_help)
    s.add_argument("--force", action="store_true", help=out_help)
    s.add_argument("--json", action="store_true", help="print JSON (with --curves: one record per trial epoch)")
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
