"""`dse search`: the best model of one space inside a complexity band, on Ray Tune.

Searchers: `random` draws from the band sampler exactly as `dse sample` does (a grid over those samples); `tpe` is
Optuna's TPE through Ray Tune's OptunaSearch, proposing in the space's own parameters. Every TPE proposal is
built and counted analytically before anything trains: a point outside the band is refused, never reaches a
worker, and is told to the searcher as a completed trial with the value 100 + 100 * (its log-distance to the band)
(1000 when the parameters build no network or break an expression constraint), so it ranks below every trained
model (errors are at most 100%), nearer misses above farther ones: the same order Optuna's constrained TPE gives
infeasible trials. The refusals are logged in the folder's refused.jsonl.

Scheduler: `asha` is Ray Tune's ASHAScheduler on the per-epoch validation error the trials report (time unit:
epochs). Its defaults come from the low-epoch rank correlation `dse analyze` measures (see GRACE_FRAC).
Search rows go into the same results table as a sweep's; a trial ASHA stopped has status `stopped`,
`stopped_early: true` and the error of its last epoch, so EDFs (status ok only) count completed models only.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .cluster import check_address, check_local, quiet_env
from ..errors import DseError
from .experiment import Experiment, Search
from ..io import append_line
from ..results import read_rows, trial_key

REFUSED, SPENT = "refused.jsonl", "search.json"
# ASHA's defaults, from the low-epoch rank correlation `dse analyze` measured on the main job (60 models, the
# default digits recipe): Spearman of the epoch-k error with the final error is 0.05, 0.39, 0.70, 0.85, 0.88, 0.93
# at epochs 1-6. Keeping the better half at epoch 3 stopped none of the 8 best-10% models (keeping a third stopped
# 2 of 8), so the first rung is at 30% of the epochs and the reduction factor is 2: rungs at epochs 3 and 6 of 10,
# about 5.5 epochs per trial on average instead of 10.
GRACE_FRAC = 0.3
PENALTY = 100.0


def grace(search: Search, epochs: int) -> int:
    """ASHA's grace period in epochs: the search's own, else GRACE_FRAC of the recipe's epochs (at least 1)."""
    return min(epochs, search.grace or max(1, round(GRACE_FRAC * epochs)))


# ---------------------------------------------------------------- the space in Optuna's terms (pure functions)

def _names(space) -> list[tuple]:
    """(optuna name, space parameter, stages it sets) for every free parameter; a shared per-stage parameter is one."""
    shared = {p for k, p in space.constraints if k == "shared"}
    out = []
    for p in space.params:
        if p.kind == "fixed":
            continue
        if p.per_stage and p.name not in shared:
            out += [(f"{p.name}{i + 1}", p, (i,)) for i in range(space.stages)]
        else:
            out.append((p.name, p, tuple(range(space.stages)) if p.per_stage else None))
    return out


def to_optuna(space) -> dict:
    """Optuna distributions over the space's free parameters: log-uniform where the space is, integer grids as
    indices (w in multiples of 8 -> w/8), powers of two as exponents, choices as categories."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, p, _ in _names(space):
        if p.kind == "choice":
            out[name] = CategoricalDistribution(list(p.values))
        elif p.kind == "pow2":
            out[name] = IntDistribution(int(round(math.log2(p.low))), int(round(math.log2(p.high))))
        elif p.kind == "int":
            q = int(p.q or 1)
            out[name] = IntDistribution(int(math.ceil(p.low / q)), int(p.high // q), log=p.log)
        else:
            out[name] = FloatDistribution(p.low, p.high, log=p.log)
    return out


def from_optuna(space, params: dict) -> dict:
    """The space's parameter values for an Optuna point (the inverse of to_optuna's encodings), with monotone
    constraints applied by sorting the stage values."""
    order = {p: k for k, p in space.constraints if k in ("nondecreasing", "nonincreasing")}
    vals: dict = {}
    for name, p, stages in _names(space):
        v = params[name]
        v = 2 ** int(v) if p.kind == "pow2" else int(v) * int(p.q or 1) if p.kind == "int" else v
        v = p.cast(v)
        if stages is None:
            vals[p.name] = v
        else:
            lst = vals.setdefault(p.name, [None] * space.stages)
            for i in stages:
                lst[i] = v
    for name, kind in order.items():
        if name in vals:
            vals[name] = sorted(vals[name], reverse=kind == "nonincreasing")
    return vals


def judge(space, bands: dict, params: dict):
    """(Sample or None, distance to the band): the network an Optuna point builds, counted analytically."""
    from ..models.complexity import complexity
    from ..space.sampler import Sample, distance

    try:
        vals = from_optuna(space, params)
        if not all(e(vals) for e in space.exprs):  # outside the space's expression constraints: no network
            return None, math.inf
        cfg = space.make(vals)
    except DseError:
        return None, math.inf
    cx = complexity(cfg)
    d = distance(cx, bands)
    return (Sample(cfg, cx) if d == 0 else None), d


def penalty(d: float) -> float:
    return PENALTY + (100.0 * d if math.isfinite(d) else 900.0)


# ---------------------------------------------------------------- TPE inside the band

def band_tpe(space, bands: dict, seed: int, max_refused: int, log: Path, evaluated=()):
    """A Ray Tune Searcher: Optuna's TPE (ray.tune.search.optuna.OptunaSearch) whose out-of-band proposals are
    refused and told back to it (see the module doc). `evaluated` are (optuna params, value) of earlier trials."""
    import optuna
    from optuna.samplers import TPESampler
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    class BandTPE(Searcher):
        def __init__(self):
            super().__init__(metric="val_error", mode="min")
            pts = [dict(p) for p, _ in evaluated]
            self.inner = OptunaSearch(space=to_optuna(space), metric="val_error", mode="min",
                                      sampler=TPESampler(seed=seed), points_to_evaluate=pts or None,
                                      evaluated_rewards=[v for _, v in evaluated] or None)
            self.ids: dict[str, str] = {}  # Ray trial id -> the Optuna trial behind it
            self.refused = 0

        def set_search_properties(self, metric, mode, config, **spec):
            return True  # metric and mode are fixed: the per-epoch validation error, lower is better

        def suggest(self, trial_id):
            for k in range(max_refused):
                tmp = f"{trial_id}~{k}"
                params = self.inner.suggest(tmp)
                if params is None or params == Searcher.FINISHED:
                    return params
                s, d = judge(space, bands, params)
                if s is not None:
                    self.ids[trial_id] = tmp
                    return {"point": {"sample": s.to_dict(), "repeat": 0, "cols": {"suggested": params}}}
                self.refused += 1
                self.inner.on_trial_complete(tmp, {"val_error": penalty(d)})
                append_line(log, json.dumps({"params": params, "distance": d if math.isfinite(d) else None}) + "\n")
            raise DseError(f"search: {max_refused} proposals in a row fell outside the band; widen the band or "
                           "raise search.max_refused")

        def on_trial_result(self, trial_id, result):
            if trial_id in self.ids:
                self.inner.on_trial_result(self.ids[trial_id], result)

        def on_trial_complete(self, trial_id, result=None, error=False):
            if trial_id in self.ids:
                self.inner.on_trial_complete(self.ids.pop(trial_id), result, error)

        def save(self, checkpoint_path):
            pass  # a search resumes from its results table and refused.jsonl (see search())

        def restore(self, checkpoint_path):
            pass

    return BandTPE()


def _evaluated(out: Path) -> list[tuple[dict, float]]:
    """What TPE already knows, from the table and the refusals: (optuna params, value)."""
    from ..results import JSONL

    pts = []
    if (out / JSONL).exists():
        for r in read_rows(out / JSONL):
            if r.get("suggested") and r.get("status") in ("ok", "stopped") and r.get("error") is not None:
                pts.append((r["suggested"], float(r["error"])))
    if (out / REFUSED).exists():
        pts += [(r["params"], penalty(r["distance"] if r["distance"] is not None else math.inf))
                for r in read_rows(out / REFUSED, need="params")]
    return pts


# ---------------------------------------------------------------- the driver

def _plan(exp: Experiment) -> list[dict]:
    """Random search: the first `trials` band samples of the space (exactly `dse sample`'s); TPE: nothing fixed."""
    from ..space.sampler import sample

    if exp.search.searcher == "tpe":
        return []
    return [s.to_dict() for s in sample(exp.spaces[0], exp.search.trials, seed=exp.seed, **exp.bands)]


def check(exp: Experiment) -> Experiment:
    """A searchable experiment: one space, a band, a search section (defaults when absent)."""
    if exp.samples or exp.grid:
        raise DseError(f"{exp.name}: a search draws from one space inside a band; a samples file or a grid is a sweep")
    if len(exp.spaces) != 1:
        raise DseError(f"{exp.name}: a search explores one space, the experiment has {len(exp.spaces)} "
                       f"({', '.join(exp.spaces)}); give --space NAME")
    if not exp.bands:
        raise DseError(f"{exp.name}: give a complexity band (flops, params or acts) to search inside")
    if exp.search is None:
        exp = exp.replace(search=Search())
    if exp.search.searcher == "tpe":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise DseError("--searcher tpe needs optuna: pip install 'optuna>=4'") from None
    return exp


def search(exp: Experiment, out: str | Path, *, address: str | None = None, resume: bool = False, verbose: int = 0,
           progress: bool = True, csv: bool = False) -> Path:
    """Search one space inside its band for the best model within the experiment's search budget; returns the
    folder. The lock, resume and interrupt rules of a sweep apply (dse.run.sweep); a larger budget grows a search."""
    from ray.tune.schedulers import ASHAScheduler

    from ..space.sampler import load
    from .sweep import Driver, folder

    quiet_env()
    out = Path(out).resolve()
    address = check_address(address)
    exp = check(exp)
    check_local(exp.trial.cpus, address)
    exp, recs, data, lock = folder(exp, out, resume, _plan)
    try:
        s = exp.search
        # rungs below the last epoch; the last epoch arrives once, with the trial's row (dse.run.trial)
        sched = (ASHAScheduler(time_attr="epoch", metric="val_error", mode="min", max_t=exp.train.epochs,
                               grace_period=grace(s, exp.train.epochs), reduction_factor=s.reduction)
                 if s.scheduler == "asha" else None)
        spent_f = out / SPENT
        spent = json.loads(spent_f.read_text()).get("seconds", 0.0) if spent_f.exists() else 0.0
        cols = {"searcher": s.searcher, "scheduler": s.scheduler}
        planned = {trial_key(r["id"]) for r in recs} or None  # TPE proposes its trials as it runs
        with Driver(exp, out, data, total=s.trials, address=address, verbose=verbose, progress=progress, csv=csv,
                    what="trials", cols=cols, planned=planned) as d:
            left_s = None if s.seconds is None else s.seconds - spent
            left_n = s.trials - d.counts.done
            t0 = time.monotonic()
            try:
                if left_n > 0 and (left_s is None or left_s > 0):
                    if s.searcher == "random":
                        d.fit(d.todo([{"sample": r, "repeat": 0} for r in recs]), scheduler=sched,
                              time_budget_s=left_s)
                    else:
                        alg = band_tpe(load(exp.spaces[0]), exp.bands, exp.seed, s.max_refused, out / REFUSED,
                                       _evaluated(out))
                        d.fit(search_alg=alg, scheduler=sched, num_samples=left_n, time_budget_s=left_s)
            finally:
                from ..io import write_atomic
                write_atomic(spent_f, json.dumps({"seconds": spent + time.monotonic() - t0}), force=True)
        return out
    finally:
        lock.release()
