"""Per-trial overhead of `dse sweep` beyond training time, against Ray Tune's own no-op trial in the same run.

cost(n) = sweep wall time x concurrent trials - sum of the trials' training wall times. The per-trial overhead is
the slope (cost(n2) - cost(n1)) / (n2 - n1), so fixed costs paid once per sweep (Ray start-up, loading the data
set, importing torch in each worker) are reported separately and not spread over the trials.
"""
import os
import sys
import tempfile
import time

import yaml

import dse
from dse.sweep import ray_start


def noop(config):
    from ray import tune

    tune.report({"x": 1})


def ray_cost(n: int, cpus: int) -> float:
    from ray import tune

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        tune.Tuner(tune.with_resources(noop, {"cpu": 1}), param_space={"i": tune.grid_search(list(range(n)))},
                   tune_config=tune.TuneConfig(reuse_actors=True),
                   run_config=tune.RunConfig(storage_path=d, name="noop", verbose=0)).fit()
        return (time.perf_counter() - t) * cpus


def dse_cost(n: int, cpus: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        exp = {"name": "bench", "spaces": ["anynetx_a"], "n": n, "flops": "-20M", "seed": 0,
               "data": {"name": "digits", "res": 8}, "train": {"epochs": 1, "batch_size": 512, "warmup": 0},
               "trial": {"cpus": 1}}
        p = os.path.join(d, "bench.yaml")
        with open(p, "w") as f:
            yaml.safe_dump(exp, f)
        t = time.perf_counter()
        out = dse.sweep(dse.experiment.load(p), os.path.join(d, "run"), progress=False)
        wall = time.perf_counter() - t
        train = dse.load_results(out)["wall"].sum()
    return wall * cpus - train, wall


def main(n1: int = 10, n2: int = 50) -> None:
    cpus = os.cpu_count() or 1
    t = time.perf_counter()
    ray_start(None)
    start = time.perf_counter() - t
    r1, r2 = ray_cost(n1, cpus), ray_cost(n2, cpus)
    c1, w1 = dse_cost(n1, cpus)
    c2, w2 = dse_cost(n2, cpus)
    base, over = (r2 - r1) / (n2 - n1), (c2 - c1) / (n2 - n1)
    print(f"trials: {n1} and {n2} on {cpus} CPUs (1 CPU per trial, reuse_actors), 1 epoch each, digits at 8 px")
    print(f"Ray start-up (once per sweep): {start:.1f} s; fixed cost of a dse sweep beyond Ray "
          f"(sampling, data, worker imports): {(c1 - over * n1) / cpus:.1f} s wall")
    print(f"sweep walls: {w1:.1f} s ({n1} trials), {w2:.1f} s ({n2} trials)")
    print(f"dse overhead per trial (checkpoint every epoch, final report, fsynced row): {over:.3f} s")
    print(f"Ray Tune no-op trial, same run:                                          {base:.3f} s")
    print(f"ratio dse / Ray baseline: {over / base:.2f}")


if __name__ == "__main__":
    sys.exit(main())
