"""`dse sweep EXP --dry-run`: what a sweep would train and about what it would cost, training nothing for real.

The plan is the sweep's own (the same samples, in the same order); per space it adds the band sampler's acceptance
rate. The cost comes from the rows of a previous run in --out when it has some (the median wall time of a finished
trial), else from timing one short trial in-process (no Ray): the plan's median-flops sample trained for one epoch on
at most TIMING_IMAGES training images, its speed scaled to the whole training and validation sets. Nothing is
written: no folder, no file.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

from ..errors import DseError
from .experiment import Experiment
from .resources import at_once

TIMING_IMAGES = 2048


def _per_space(exp: Experiment) -> tuple[list[dict], list[dict]]:
    """(the plan's sample records, one row per space: space, trials, accepted, tried, rate)."""
    from . import plan as planning
    from ..space.sampler import sample

    if exp.grid or exp.samples or not exp.spaces:
        recs = planning.plan(exp)
        spaces = sorted({r["space"] for r in recs})
        return recs, [{"space": s, "trials": sum(r["space"] == s for r in recs)} for s in spaces]
    recs, rows = [], []
    for space in exp.spaces:  # as dse.run.plan.plan samples them, keeping the sampler's counts
        res = sample(space, exp.n, seed=exp.seed, workers=1, **exp.bands)
        recs += [s.to_dict() for s in res]
        rows.append({"space": res.space, "trials": len(res), "accepted": len(res), "tried": res.tried,
                     "rate": res.rate})
    return recs, rows


def _timed(exp: Experiment, recs: list[dict]) -> dict:
    """Seconds per epoch of the plan's median-flops sample, from one short in-process training."""
    from ..models.config import Config
    from ..data import load_data
    from ..models import build
    from ..train.loop import train

    rec = sorted(recs, key=lambda r: (r["flops"], r["id"]))[len(recs) // 2]
    cfg = Config.from_dict(rec)
    data = load_data(**exp.data.args(cfg.net.res if exp.data.res == "net" else None))
    n_train, n_val = data.n_train, data.n_val
    k_train, k_val = min(n_train, TIMING_IMAGES), min(n_val, max(1, TIMING_IMAGES // 4))
    try:  # a subset of the images: the speed per image is what is measured
        small = dataclasses.replace(data, x_train=data.x_train[:k_train], y_train=data.y_train[:k_train],
                                    x_val=data.x_val[:k_val], y_val=data.y_val[:k_val])
    except (TypeError, ValueError):
        small, k_train, k_val = data, n_train, n_val
    recipe = dataclasses.replace(exp.train, epochs=1, warmup=0)
    kw = {"res": data.res, "classes": data.classes, "in_ch": data.channels}
    t0 = time.perf_counter()
    res = train(lambda: build(cfg.net, **kw), small, recipe, seed=0, threads=exp.trial.torch_threads,
                device=exp.trial.device_name)
    wall = time.perf_counter() - t0
    ep = res["epochs"][-1] if res["epochs"] else None
    if ep is None or not ep.get("ips"):
        raise DseError(f"the timing trial of {rec['id']} did not finish an epoch ({res.get('reason')})")
    t_train = k_train / ep["ips"]
    t_eval = max(0.0, ep["time"] - t_train)
    epoch = n_train / ep["ips"] + t_eval * n_val / k_val
    return {"source": "timing", "id": rec["id"], "space": rec["space"], "flops": rec["flops"],
            "epoch_s": epoch, "setup_s": max(0.0, wall - ep["time"]), "images": k_train}


def _gpus() -> int:
    """This machine's CUDA devices (0 without torch's CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _previous(out: Path) -> dict | None:
    """The median wall time of the finished trials already in a sweep folder, or None."""
    from ..results import JSONL, read_rows

    f = out / JSONL
    if not f.is_file():
        return None
    rows = read_rows(f)
    walls = sorted(float(r["wall"]) for r in rows
                   if r.get("status") == "ok" and isinstance(r.get("wall"), (int, float)))
    if not walls:
        return None
    return {"source": "rows", "trial_s": walls[len(walls) // 2], "n": len(walls), "done": {r.get("key") or r["id"]
                                                                                          for r in rows}}


def dry_run(exp: Experiment, out: str | Path, *, timing: bool = True, slots: int | None = None) -> dict:
    """The plan of a sweep and its cost estimate as plain values (see the module doc); writes nothing."""
    from ..results import trial_key

    from .plan import points

    recs, spaces = _per_space(exp)
    if not recs:
        raise DseError("the plan is empty: nothing would be trained")
    pts = points(exp, recs)  # every model `seeds` times, in each arm
    noise = min(exp.noise.models, len(recs)) * exp.noise.repeats
    total = len(pts) + noise
    slots = slots or max(1, at_once(exp.trial.cpus, exp.trial.gpus, [{"CPU": os.cpu_count() or 1, "GPU": _gpus()}]))
    out = Path(out)
    prev = _previous(out)
    done = len({trial_key(p["sample"]["id"], p["repeat"], p.get("arm")) for p in pts} & prev["done"]) if prev else 0
    cost = prev or (_timed(exp, recs) if timing else None)
    left = total - done
    if cost is None:
        trial_s = math.nan
    elif cost["source"] == "rows":
        trial_s = cost["trial_s"]
    else:
        trial_s = cost["setup_s"] + exp.train.epochs * cost["epoch_s"]
    arms = [{"arm": a.name, "trials": sum(p.get("arm") == a.name for p in pts)} for a in exp.arms]
    return {"experiment": exp.name, "out": str(out), "spaces": spaces, "bands": exp.bands, "primaries": len(pts),
            "arms": arms, "seeds": exp.seeds,
            "noise": {"models": min(exp.noise.models, len(recs)), "repeats": exp.noise.repeats, "trials": noise},
            "total": total, "done": done, "epochs": exp.train.epochs, "cpus": exp.trial.cpus, "slots": slots,
            "cost": cost, "trial_s": trial_s, "seconds": left * trial_s / min(slots, max(left, 1))}


def lines(d: dict) -> list[str]:
    """The dry run as terminal lines."""
    from ..progress import duration
    from ..space.units import fmt, fmt_band

    band = ", ".join(f"{m} {fmt_band(b)}" for m, b in d["bands"].items()) or "no band"
    out = [f"dry run of {d['experiment']} (nothing trained, no folder made; it would write {d['out']}):"]
    for s in d["spaces"]:
        acc = (f"; the band ({band}) accepted {s['accepted']} of {s['tried']} draws ({100 * s['rate']:.2f}%)"
               if "tried" in s else "")
        out.append(f"  {s['space']:14s} {s['trials']:5d} trials{acc}")
    for a in d.get("arms", []):
        out.append(f"  arm {a['arm']:10s} {a['trials']:5d} trials ({d['seeds']} seed{'s' if d['seeds'] > 1 else ''} "
                   "per model)")
    nz = d["noise"]
    out.append(f"  noise floor: {nz['models']} models x {nz['repeats']} extra seeds = {nz['trials']} trials "
               "(chosen once the primaries are done)" if nz["trials"] else
               "  noise floor: none (add `noise: {models: 8, seeds: 3}` to measure it)")
    out.append(f"  total: {d['total']} trials x {d['epochs']} epochs, {d['cpus']:g} CPU each, {d['slots']} at a time "
               f"here" + (f"; {d['done']} already done in {d['out']}" if d["done"] else ""))
    c = d["cost"]
    if c is None:
        out.append("  cost: not estimated")
    elif c["source"] == "rows":
        out.append(f"  cost: the median finished trial of {d['out']} took {duration(c['trial_s'])} ({c['n']} trials)")
    else:
        out.append(f"  cost: one epoch of the median-flops sample ({c['space']} {c['id']}, {fmt(c['flops'])} flops) "
                   f"takes about {c['epoch_s']:.2f}s here (timed in-process on {c['images']} images, scaled to the "
                   "data set)")
    if c is not None:
        out.append(f"  estimate: about {duration(d['seconds'])} of training for the {d['total'] - d['done']} trials "
                   f"left ({duration(d['trial_s'])} each, {d['slots']} in parallel), plus about a second per trial "
                   "for Ray; samples differ in cost, so read it as an order of magnitude")
    return out
