"""What a sweep trains: the sample records (sampled per space, read from a samples file, or an EfficientNet grid),
their training seeds, and the noise-floor repeats chosen from the finished primaries. Pure functions, no Ray."""
from __future__ import annotations

import hashlib

import numpy as np

from ..models.config import Config
from ..errors import DseError
from .experiment import Experiment
from ..results import trial_key as key  # noqa: F401  (the key format belongs to the row schema)


def plan(exp: Experiment) -> list[dict]:
    """The sample records to train, in a deterministic order, one per distinct network."""
    from ..models.complexity import complexity
    from ..space.sampler import Sample, sample

    if exp.grid:
        return distinct(grid_plan(exp))
    if exp.samples:
        from ..results import read_rows

        out = []
        for i, r in enumerate(read_rows(exp.samples)):
            try:
                cfg = Config.from_dict(r)
            except (KeyError, TypeError, ValueError) as e:
                raise DseError(f"{exp.samples}:{i + 1}: not a sample record ({e})") from None
            out.append(Sample(cfg, complexity(cfg.net)).to_dict())
        if not out:
            raise DseError(f"{exp.samples}: no samples")
        return distinct(out)
    recs = []
    for space in exp.spaces:
        recs += [s.to_dict() for s in sample(space, exp.n, seed=exp.seed, workers=1, **exp.bands)]
    own = arm_records(exp)
    have = {r["id"] for r in recs}
    for name, r in own.items():
        if r["id"] in have:
            raise DseError(f"arms: {name}'s network {r['id']} is also one of the sampled models; give it its own space "
                           "or parameters")
        have.add(r["id"])
    return recs + [{**r, "arm": name} for name, r in own.items()]


def arm_records(exp: Experiment) -> dict[str, dict]:
    """The sample record of each arm that trains one fixed network (space with set parameters or a preset)."""
    from ..space.sampler import describe

    out = {}
    for i, a in enumerate(exp.arms):
        if a.fixed:
            try:
                out[a.name] = describe(a.space, preset=a.preset, **(a.set or {})).to_dict()
            except DseError as e:
                raise DseError(f"arms[{i}] ({a.name}): {e}") from None
    return out


def points(exp: Experiment, recs: list[dict]) -> list[dict]:
    """The trials of the plan: every sample record `seeds` times (repeat 0..seeds-1); with arms, each arm's
    network (or every sampled model, for an arm without one) `seeds` times, the row naming its arm. The same model
    and repeat get the same training seed in every arm, so arms pair."""
    from ..results import planned_trials

    trials = planned_trials(recs, [(a.name, a.fixed) for a in exp.arms], exp.seeds)
    return [{"sample": r, "repeat": k, **({"arm": arm, "cols": {"arm": arm}} if arm else {})} for r, k, arm in trials]


def check(recs: list[dict], where) -> list[dict]:
    """A plan trains each model once, under a well-formed id (ids name folders and files): refuse anything else."""
    from ..models.config import is_id

    seen: set[str] = set()
    for i, r in enumerate(recs):
        sid = r.get("id")
        if not is_id(sid):
            raise DseError(f"{where}:{i + 1}: {sid!r} is not a sample id (12 hexadecimal digits)")
        if sid in seen:
            raise DseError(f"{where}:{i + 1}: model {sid} ({r.get('space')}) is planned twice; a plan trains each "
                           "model once")
        seen.add(sid)
    return recs


def distinct(recs: list[dict]) -> list[dict]:
    """Keep the first record of each id (different parameters can build the same network)."""
    seen: set[str] = set()
    out = []
    for r in recs:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


def grid_plan(exp: Experiment) -> list[dict]:
    """EfficientNet's step 1: one scaled B0 per (alpha, beta, gamma) of the grid, at the grid's phi."""
    from ..space.scaled import compound_grid

    g = exp.grid
    return [s.to_dict() for s in compound_grid(g.step, g.tol, g.max, g.phi, width=g.width, depth=g.depth,
                                               res=g.base_res, dropout=0.0, space=g.space)]


def trial_seed(seed: int, sid: str, repeat: int = 0) -> int:
    """The training seed of a model's repeat (0: its primary training), stable across runs and resumes."""
    text = f"{seed}:{sid}" if repeat == 0 else f"{seed}:{sid}:{repeat}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def noise_models(rows: list[dict], models: int) -> list[str]:
    """`models` ids of finished primary rows spread evenly over the error range (sorted by error, then id), at
    evenly spaced ranks from the best to the worst; deterministic for a given table."""
    ok = sorted((r["error"], r["id"]) for r in rows if r.get("repeat", 0) == 0 and r.get("status") == "ok"
                and r.get("error") is not None and np.isfinite(r["error"]))
    if not ok or models <= 0:
        return []
    if models >= len(ok):
        return [i for _, i in ok]
    ranks = np.unique(np.round(np.linspace(0, len(ok) - 1, models)).astype(int))
    return [ok[i][1] for i in ranks]


def noise_points(exp: Experiment, recs: list[dict], rows: list[dict]) -> list[dict]:
    """The repeat trials of the noise floor: each chosen model once per extra seed (repeat 1..seeds-1); with arms,
    models of the first arm."""
    by_id = {r["id"]: r for r in recs}
    arm = exp.arms[0].name if exp.arms else None
    chosen = noise_models([r for r in rows if r["id"] in by_id and r.get("arm") == arm], exp.noise.models)
    extra = {"arm": arm, "cols": {"arm": arm}} if arm else {}
    return [{"sample": by_id[i], "repeat": k, **extra} for i in chosen for k in range(1, exp.noise.repeats + 1)]
