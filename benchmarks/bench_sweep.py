"""Per-trial overhead and parallel efficiency of `dse sweep`, against Ray Tune's own no-op trial in the same run.

cost(n) = sweep wall time x concurrent trials - sum of the trials' training wall times. The per-trial overhead is
the slope (cost(n2) - cost(n1)) / (n2 - n1), so fixed costs paid once per sweep (Ray start-up, loading the data
set, importing torch in each worker) are reported separately and not spread over the trials.
Parallel efficiency of the n2-trial sweep = sum of trial walls / (sweep wall x CPUs): whole sweep, and in steady
state (mean trial wall / (mean trial wall + per-trial overhead)). Goal: >= 85% for 32 short trials on 2 CPUs.
"""
import os
import sys
import tempfile
import time

import yaml

import dse
from dse.run.sweep import ray_start


def noop(config):
    from ray import tune

    for _ in range(config["ckpts"]):  # one small checkpointed report per epoch, as a dse trial makes
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.pt"), "wb") as f:
                f.write(b"\0" * 4096)
            tune.report({"x": 0}, checkpoint=tune.Checkpoint.from_directory(d))
    tune.report({"x": 1})


def ray_cost(n: int, cpus: int, ckpts: int = 0) -> float:
    from ray import tune

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        tune.Tuner(tune.with_resources(noop, {"cpu": 1}),
                   param_space={"i": tune.grid_search(list(range(n))), "ckpts": ckpts},
                   tune_config=tune.TuneConfig(reuse_actors=True),
                   run_config=tune.RunConfig(storage_path=d, name="noop", verbose=0,
                                             checkpoint_config=tune.CheckpointConfig(num_to_keep=1))).fit()
        return (time.perf_counter() - t) * cpus


def dse_cost(n: int, cpus: int, epochs: int) -> tuple[float, float, float]:
    """(cost, sweep wall, work) of one n-trial sweep; work = sum of the trials' epoch times (train + validate)."""
    with tempfile.TemporaryDirectory() as d:
        exp = {"name": "bench", "spaces": ["anynetx_a"], "n": n, "flops": "-20M", "seed": 0,
               "data": {"name": "digits", "res": 8}, "train": {"epochs": epochs, "batch_size": 128, "warmup": 0},
               "trial": {"cpus": 1}}
        p = os.path.join(d, "bench.yaml")
        with open(p, "w") as f:
            yaml.safe_dump(exp, f)
        t = time.perf_counter()
        out = dse.sweep(dse.experiment.load(p), os.path.join(d, "run"), progress=False)
        wall = time.perf_counter() - t
        work = sum(sum(e) for e in dse.load_results(out)["epoch_times"])
    return wall * cpus - work, wall, work


def main(n1: int = 8, n2: int = 32, epochs: int = 2, repeats: int = 2) -> None:
    cpus = os.cpu_count() or 1
    t = time.perf_counter()
    ray_start(None)
    start = time.perf_counter() - t
    dse_cost(2, cpus, epochs)  # warm-up: page cache, Ray's worker pool
    r1, r2 = min(ray_cost(n1, cpus) for _ in range(repeats)), min(ray_cost(n2, cpus) for _ in range(repeats))
    runs = {n: min((dse_cost(n, cpus, epochs) for _ in range(repeats)), key=lambda r: r[0]) for n in (n1, n2)}
    (c1, w1, _), (c2, w2, t2) = runs[n1], runs[n2]
    base, over = (r2 - r1) / (n2 - n1), (c2 - c1) / (n2 - n1)
    per = t2 / n2
    print(f"trials: {n1} and {n2} on {cpus} CPUs (1 CPU per trial, reuse_actors), {epochs} epochs each, digits at 8 px,"
          f" best of {repeats}; load average {os.getloadavg()[0]:.1f} at the end (other work inflates walls)")
    print(f"Ray start-up (once per sweep): {start:.1f} s; fixed cost of a dse sweep beyond Ray "
          f"(sampling, data, worker imports): {(c1 - over * n1) / cpus:.1f} s wall")
    print(f"sweep walls: {w1:.1f} s ({n1} trials), {w2:.1f} s ({n2} trials); mean epoch time sum per trial {per:.2f} s")
    print(f"dse overhead per trial (build, checkpoint every epoch, reports, fsynced row): {over:.3f} s")
    print(f"Ray Tune no-op trial, same run:                                           {base:.3f} s")
    k1, k2 = (min(ray_cost(n, cpus, epochs) for _ in range(repeats)) for n in (n1, n2))
    print(f"Ray Tune no-op trial with {epochs} checkpointed reports (Ray's cost of dse's per-epoch checkpoints): "
          f"{(k2 - k1) / (n2 - n1):.3f} s")
    print(f"ratio dse / Ray baseline: {over / base:.2f}" + ("  (negative: below the noise of this run)" if over < 0 else ""))
    steady = f"{per / (per + over):.0%}" if over > 0 else "~100% (overhead within noise)"
    print(f"parallel efficiency ({n2} trials): whole sweep {t2 / (w2 * cpus):.0%} (fixed costs included), "
          f"steady state {steady}; goal >= 85%")
    for e in (3 * epochs, 6 * epochs):  # the same per-trial overhead weighs less on longer trials
        _, w, t = dse_cost(n2, cpus, e)
        print(f"  {n2} trials of {e} epochs ({t / n2:.2f} s of work each): whole sweep {t / (w * cpus):.0%}, "
              f"steady state {t / n2 / (t / n2 + over):.0%}" if over > 0 else "")


if __name__ == "__main__":
    sys.exit(main())
