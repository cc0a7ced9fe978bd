"""Commands that train or read a sweep folder: sweep, run, search, scale grid, status, export, fixres."""
from __future__ import annotations

import json

from ..errors import DseError
from .common import interrupted, save_figure


def _experiment(a, extra: dict | None = None):
    """The experiment file with the command line's overrides (--data-path, --data, --cpus, and `extra`)."""
    from ..run.experiment import load

    over = {k: v for k, v in (("data.path", getattr(a, "data_path", None)), ("data.name", getattr(a, "data", None)),
                              ("trial.cpus", getattr(a, "cpus", None))) if v is not None}
    return load(a.experiment, {**over, **(extra or {})})


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
        return interrupted(a, e, f"dse sweep {a.experiment} --out {out} --resume")
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
        return interrupted(a, e, "the same command (no report was written from a partial sweep)")
    print("\n".join(lines))
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
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
        return interrupted(a, e, f"dse search {a.experiment} --out {out} --resume")
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
        return interrupted(a, e, f"dse scale grid {a.experiment} --out {out} --resume")
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

        save_figure(curves_figure(df), a.output, a.force)
    elif not len(df):
        print(f"{a.dir}: no epoch recorded yet")
    else:
        t = curves_table(df)
        print(f"{a.dir}: {len(t)} trials, {len(df)} epochs recorded (latest first; curve: val error per epoch, "
              "0-100%)")
        print(t.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def cmd_export(a) -> int:
    from ..io import check_new
    from ..run.weights import export

    if a.output:
        check_new(a.output, a.force)
    path = export(a.run, id=a.id, best=a.best, out=a.output, force=a.force)
    print(f"wrote {path} (load it with dse.load_model)")
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
    def table(rows, best=None):
        for x in rows:
            print(f"  {x['size']:>4} px  n {x['n']:>3}  error {x['mean_error']:6.2f}  delta {x['delta']:+6.2f} "
                  f"[{x['ci_low']:+.2f}, {x['ci_high']:+.2f}]{'  (best)' if x['size'] == best else ''}")

    table(s["sizes"])
    if s["tuned"]:
        print(f"fine-tuned (classifier and last BN, label smoothing) at each size, paired with {r} px without it:")
        table(s["tuned"], s["finetune"]["size"])
    print("\n".join(fixres.lines(df[df["arm"].astype(str) == arm] if arm else df, noise(df).noise)))
    return 0
