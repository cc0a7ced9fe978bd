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
    from .units import fmt

    cols = ["d", "w", "b", "g", "stride", "se"]
    extra = [c for c in ("block", "k", "e") if any(c in s for s in rec["stages"])]
    head = ["stage"] + cols + extra
    rows = [[str(i + 1)] + [str(s.get(c, "")) for c in cols + extra] for i, s in enumerate(rec["stages"])]
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
    from .spec import resolve

    spec, path = resolve(a.space)
    chain = spec.pop("extends_chain", [])
    print(f"# {path}" + (f" (resolved through {' <- '.join(chain)})" if chain else ""))
    print(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110).rstrip())
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
    if a.n <= 0:
        raise DseError(f"-n must be positive, got {a.n}")
    if a.output and a.output != "-":
        check_new(a.output, a.force)
    with Progress(a.n, f"sampling {a.space}", every=0, enabled=not a.quiet) as bar:
        res = sample(a.space, a.n, seed=a.seed, max_tries=a.max_tries, workers=a.workers,
                     progress=lambda k, t: bar.update(k, f"tried {t}"), **bands)
    out = sys.stderr if a.output == "-" else sys.stdout
    if a.output == "-":
        sys.stdout.write(res.to_jsonl())
    elif a.output:
        write_atomic(a.output, res.to_jsonl(), force=a.force)
    if not a.quiet:
        print(res.summary() + (f"\nwrote {len(res)} samples to {a.output}" if a.output not in (None, "-") else ""),
              file=out)
    return 0


def cmd_sweep(a) -> int:
    from .experiment import load
    from .sweep import sweep

    over = {}
    if a.data_path:
        over["data.path"] = a.data_path
    if a.data:
        over["data.name"] = a.data
    if a.cpus:
        over["trial.cpus"] = a.cpus
    exp = load(a.experiment, over)
    if exp.data.get("name") != "digits" and not exp.data.get("path") and not a.resume:
        raise DseError(f"{a.experiment}: data set '{exp.data.get('name')}' needs a path: pass --data-path DIR")
    out = a.out or f"runs/{exp.name}"
    if a.retries is not None and a.retries < 0:
        raise DseError(f"--retries must be >= 0, got {a.retries}")
    try:
        sweep(exp, out, address=a.address, resume=a.resume, retries=a.retries, verbose=a.verbose, csv=a.csv)
    except KeyboardInterrupt:
        print(f"dse: interrupted; finished rows are kept in {out}; continue with: dse sweep {a.experiment} "
              f"--out {out} --resume", file=sys.stderr)
        return 130
    print(f"results: {out}/results.parquet (rows as they finished: {out}/results.jsonl)")
    return 0


def cmd_fixres(a) -> int:
    from .fixres import fixres

    sizes = [x for x in a.test_sizes.replace(",", " ").split() if x]
    df = fixres(a.run, sizes, ids=a.id, top=a.top, tune_epochs=a.finetune)
    if a.json:
        print(df.to_json(orient="records"))
    else:
        print(df.round(2).to_string(index=False))
    return 0


def _phis(text: str) -> list[int]:
    try:
        if ".." in text:
            lo, hi = text.split("..")
            return list(range(int(lo), int(hi) + 1))
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise DseError(f"--phi: expected N, A..B or a comma list, got '{text}'") from None


def cmd_scale_apply(a) -> int:
    from .scaling import family

    df = family(a.alpha, a.beta, a.gamma, _phis(a.phi), a.base_res)
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
    from .sweep import grid_plan

    cands = grid_plan(exp.grid)
    sweep(exp, out, address=a.address, resume=a.resume, verbose=a.verbose)
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
    s.add_argument("--res", type=int, help="resolution for the complexity (default: the space's)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_describe)

    s = sub.add_parser("sample", help="sample configurations inside a complexity band")
    s.add_argument("--space", required=True)
    s.add_argument("--flops", help="band of multiply-adds, e.g. 360-400M, 0.36-0.4G, -400M, 360M-")
    s.add_argument("--params", help="band of parameters, e.g. 2-6M")
    s.add_argument("--acts", help="band of activations, e.g. -5M")
    s.add_argument("-n", type=int, default=500, help="number of distinct samples (default 500)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", help="JSON Lines output ('-' for stdout)")
    s.add_argument("--force", action="store_true", help="replace an existing output file")
    s.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes (the output does not depend on it)")
    s.add_argument("--max-tries", type=int, help="give up after this many draws (default max(200000, 400n))")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("sweep", help="train every sample of an experiment as a Ray Tune trial")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>)")
    s.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    s.add_argument("--resume", action="store_true", help="continue a stopped sweep in --out")
    s.add_argument("--retries", type=int, help="retry a trial that raised up to N times")
    s.add_argument("--data-path", help="data set folder (CIFAR, ImageFolder)")
    s.add_argument("--data", help="data set name, overriding the experiment's (digits, cifar10, cifar100, imagefolder)")
    s.add_argument("--cpus", type=float, help="CPUs per trial (also its torch threads)")
    s.add_argument("--csv", action="store_true", help="also write results.csv at the end")
    s.set_defaults(fn=cmd_sweep)

    s = sub.add_parser("fixres", help="errors of trained models at several test resolutions (FixRes)")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights, or one weights/<id>.pt file")
    s.add_argument("--test-sizes", required=True, help="e.g. 24,32,40")
    s.add_argument("--top", type=int, help="only the K best models of the sweep")
    s.add_argument("--id", nargs="+", help="only these sample ids")
    s.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="fine-tune the classifier (and last BN statistics) at the best size, then report the gain")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_fixres)

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

    s = sub.add_parser("status", help="progress of a running or stopped sweep")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_status)
    return p


def main(argv=None) -> int:
    try:
        a = build_parser().parse_args(argv)
        logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(a.verbose, 2)],
                            format="%(levelname)s %(name)s: %(message)s")
        return a.fn(a)
    except DseError as e:
        print(f"dse: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
