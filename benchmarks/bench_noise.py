"""Noise floor of training recipes on digits and Fashion-MNIST: python benchmarks/bench_noise.py [--models M --seeds S
--workers W] [--data digits|fashion_mnist].

For each recipe, M AnyNetX_A samples in 360-400MF (dse.sample(..., seed=0), the same models for every recipe) are
each trained with S seeds (seed i = sha256 of "i:id", see seed_of; seed 0 is the sweep's own seed at exp seed 0) at 1
thread per trial. Per recipe it prints:
  noise  = median over models of the per-model seed std (ddof=1) of the error;
  spread = IQR (q75 - q25) over models of the seed-0 error;
  ratio  = noise / spread, with a bootstrap 95% interval (models resampled with replacement, 2000 draws);
  the mean error, Spearman rho between the seed-0 and seed-1 errors over models (rank repeatability),
  the mean wall seconds per trial (model build + training + evaluation, 1 thread, W trials at a time) and the
  mean CPU seconds per trial (the same work; what a trial costs on an otherwise idle core, robust to other load),
  and the same ratio when a model's error is the mean of its last 2 or 3 epochs' val errors (same runs).
The targets: ratio <= 0.10 on digits (issue 9), <= 0.05 on Fashion-MNIST with its 10,000 test images as the
validation set (issue 15). A diverged trial counts as chance error (90%); the count is printed.
The median of M stds is itself noisy: read the interval, not only the point.
`--cache FILE` keeps one JSON line per trial and reuses matching lines, so recipes can be added run by run.
The numbers do not depend on --workers (each trial is deterministic at 1 thread); the seconds do, and wall seconds
grow when other jobs share the cores (CPU seconds much less so). The full list at 12 x 3 is 360 trials: about 40
minutes on 2 idle cores. `--recipe` runs only the given recipes; --quick is a smoke run of under a minute.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import dse

BAND = (360e6, 400e6)
SPACE = "anynetx_a"
CHANCE = 90.0  # error % of a diverged trial (10 classes)
KS = (1, 2, 3)  # error = mean of the last k epochs' val errors


@dataclass(frozen=True)
class R:
    """One recipe: the data set, its resolution, val split (digits) or training subset (Fashion-MNIST, validated on
    its 10,000 test images), and the dse.train.Recipe fields that vary."""

    res: int = 16
    val: float = 0.2
    epochs: int = 10
    batch: int = 64
    lr: float = 0.1
    warmup: float = 1.0
    data: str = "digits"
    n_train: int = 0  # 0: the whole training set
    crop: str = "pad"

    @property
    def name(self) -> str:
        if self.data == "digits":
            head = f"{self.res}px val{self.val:g}"
        else:
            head = f"{self.data} n{self.n_train or 'all'} {self.res}px"
        return (f"{head} e{self.epochs} b{self.batch} lr{self.lr:g} wu{self.warmup:g}"
                + (f" {self.crop}" if self.crop != "pad" else ""))


# Fashion-MNIST (issue 15): the chosen recipe first, then the alternatives, in the order they were tried.
FASHION = [
    R(data="fashion_mnist", n_train=3000, res=16),
    R(data="fashion_mnist", n_train=5000, res=16),
    R(data="fashion_mnist", n_train=3000, res=12),
]
# Digits (issue 9): the chosen default first, then the alternatives tried, in the order they were tried. Peak lr = lr
# * batch / 128.
RECIPES = [
    R(res=16, batch=64, lr=0.1),  # the default: peak lr 0.05
    R(res=16, batch=32, lr=0.1),
    R(res=16, batch=64, lr=0.2),
    R(res=16, batch=128, lr=0.2),
    R(res=16, val=0.5, batch=64, lr=0.1),
    R(res=16, val=0.5, batch=64, lr=0.2),
    R(res=16, epochs=6, batch=64, lr=0.4),  # the old quick recipe (experiments/quick.yaml before issue 9)
    R(res=12, batch=64, lr=0.1),
    R(res=16, batch=64, lr=0.05),
    R(res=16, batch=64, lr=0.1, warmup=2),
]


def seed_of(i: int, mid: str) -> int:
    """Training seed i of a model: sha256 of "i:id" (i = 0 is the sweep's own seed for an experiment at seed 0)."""
    return int(hashlib.sha256(f"{i}:{mid}".encode()).hexdigest()[:8], 16)


def parse_recipe(text: str) -> R:
    """'res=16,batch=32,lr=0.1' -> R (unnamed fields keep their defaults)."""
    kw = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        if k not in R.__dataclass_fields__:
            raise SystemExit(f"bench_noise: unknown recipe field {k!r} in {text!r}")
        kw[k] = v if k in ("data", "crop") else int(float(v)) if k in ("res", "epochs", "batch", "n_train") \
            else float(v)
    return R(**kw)


@functools.lru_cache(maxsize=4)
def data_for(r: R):
    from dse.data import load_data
    if r.data == "digits":
        return load_data("digits", res=r.res, val_frac=r.val)
    return load_data(r.data, res=r.res, n_train=r.n_train or None)


def run(task: tuple) -> dict:
    """Train one (recipe, model, seed index) at 1 thread; returns a JSON-able row."""
    from dse.train.recipe import Augment
    from dse.models import build
    from dse.train import Recipe, train

    r, mid, net, i = task
    torch.set_num_threads(1)
    data = data_for(r)
    rec = Recipe(epochs=r.epochs, batch_size=r.batch, lr=r.lr, warmup=r.warmup, augment=Augment(crop=r.crop))
    seed = seed_of(i, mid)
    c0 = time.process_time()
    out = train(lambda: build(net, res=data.res, classes=data.classes, in_ch=data.channels), data, rec, seed=seed,
                threads=1)
    return {"recipe": r.name, "id": mid, "i": i, "seed": seed, "status": out["status"],
            "errors": [e["val_error"] for e in out["epochs"]], "wall": out["wall"],
            "cpu": time.process_time() - c0}


def error_of(row: dict, k: int, epochs: int) -> float:
    """Mean of the last k epochs' val errors; a trial that diverged counts as chance."""
    e = row["errors"]
    return CHANCE if row["status"] != "ok" or len(e) < epochs else float(np.mean(e[-k:]))


def ratio_stats(err: np.ndarray, boot: int = 2000) -> dict:
    """err: models x seeds. Noise, spread, ratio and its bootstrap 95% interval over models."""
    def stat(e):
        q25, q75 = np.percentile(e[:, 0], [25, 75])
        return np.median(e.std(axis=1, ddof=1)), q75 - q25

    noise, spread = stat(err)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(boot):
        n, s = stat(err[rng.integers(0, len(err), len(err))])
        draws.append(n / s if s > 0 else np.inf)
    lo, hi = np.percentile(draws, [2.5, 97.5], method="inverted_cdf")  # no interpolation: draws may be inf
    return {"noise": noise, "spread": spread, "ratio": noise / spread if spread > 0 else np.inf, "lo": lo, "hi": hi}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def summarise(r: R, rows: list[dict], models: list[str], seeds: int, target: float | None = None) -> dict:
    by = {(x["id"], x["i"]): x for x in rows}
    grid = [[by[(m, i)] for i in range(seeds)] for m in models]
    out = {"recipe": r.name, "n": len(models), "seeds": seeds, "target": target_of(r, target),
           "failed": sum(x["status"] != "ok" for g in grid for x in g),
           "wall": float(np.mean([x["wall"] for g in grid for x in g])),
           "cpu": float(np.nanmean([x.get("cpu", np.nan) for g in grid for x in g]))}
    for k in KS:
        err = np.array([[error_of(x, k, r.epochs) for x in g] for g in grid])
        out[k] = ratio_stats(err)
        if k == 1:
            out["mean"] = float(err.mean())
            out["chance"] = int((err >= 85).sum())  # trials ending at or near chance (90%)
            out["rho"] = spearman(err[:, 0], err[:, 1])
    return out


def ci(d: dict) -> str:
    return f"{d['ratio']:.3f} [{d['lo']:.2f}, {d['hi']:.2f}]"


def target_of(r: R, given: float | None) -> float:
    return given if given is not None else 0.10 if r.data == "digits" else 0.05


def verdict(d: dict, target: float = 0.10) -> str:
    """yes: the whole 95% interval is within the target; no: all of it is above; else unclear."""
    return "yes" if d["hi"] <= target else "no" if d["lo"] > target else "unclear"


def table(stats: list[dict]) -> str:
    """A Markdown table, one row per recipe."""
    head = ["recipe", "n x S", "noise", "IQR", "ratio [95% CI]", *(f"ratio last {k} [95% CI]" for k in KS[1:]),
            "<= target?", "mean err %", "rho01", "wall s/trial", "cpu s/trial", "failed", ">=85%"]
    rows = [[s["recipe"], f"{s['n']}x{s['seeds']}", f"{s[1]['noise']:.2f}", f"{s[1]['spread']:.2f}", ci(s[1]),
             *(ci(s[k]) for k in KS[1:]), f"{verdict(s[1], s['target'])} ({s['target']:g})", f"{s['mean']:.1f}", f"{s['rho']:.2f}", f"{s['wall']:.1f}",
             f"{s['cpu']:.1f}", str(s["failed"]), str(s["chance"])] for s in stats]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=12)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="smoke run: 4 models x 2 seeds, 2 epochs, first recipe")
    p.add_argument("--recipe", action="append", default=[], metavar="K=V,...",
                   help="recipe to run instead of the built-in list, e.g. res=16,batch=32,lr=0.1,warmup=1,val=0.2")
    p.add_argument("--cache", type=Path, help="JSON-lines file of finished trials to reuse and append to")
    p.add_argument("--data", choices=["digits", "fashion_mnist", "both"], default="both",
                   help="which built-in recipe list to run (default both: Fashion-MNIST's, then digits')")
    p.add_argument("--target", type=float, help="the ratio to meet (default 0.10 on digits, 0.05 on Fashion-MNIST)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    if a.models < 4 or a.seeds < 2 or a.workers < 1:
        raise SystemExit("bench_noise: need --models >= 4 (IQR), --seeds >= 2 (std) and --workers >= 1")
    recipes = [parse_recipe(t) for t in a.recipe] or (
        FASHION if a.data == "fashion_mnist" else RECIPES if a.data == "digits" else FASHION + RECIPES)
    if a.quick:
        recipes, a.models, a.seeds = [R(**{**recipes[0].__dict__, "epochs": 2})], 4, 2
    samples = dse.sample(SPACE, a.models, flops=BAND, seed=0)
    models = [s.id for s in samples]
    nets = {s.id: s.config.net for s in samples}
    cached = []
    if a.cache and a.cache.exists():
        cached = [json.loads(line) for line in a.cache.read_text().splitlines() if line.strip()]
    have = {(x["recipe"], x["id"], x["i"]): x for x in cached}
    todo = [(r, m, nets[m], i) for r in recipes for i in range(a.seeds) for m in models
            if (r.name, m, i) not in have]
    t0 = time.perf_counter()
    if todo:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(a.workers, mp_context=ctx) as pool:
            for j, row in enumerate(pool.map(run, todo), 1):
                have[(row["recipe"], row["id"], row["i"])] = row
                if a.cache:
                    with a.cache.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                if a.verbose:
                    print(f"\r{j}/{len(todo)} trials, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr)
        if a.verbose:
            print(file=sys.stderr)
    stats = [summarise(r, [have[(r.name, m, i)] for m in models for i in range(a.seeds)], models, a.seeds, a.target)
             for r in recipes]
    print(f"noise floor on {', '.join(sorted({r.data for r in recipes}))}, {SPACE} in {BAND[0] / 1e6:.0f}-{BAND[1] / 1e6:.0f}MF, {a.models} models x "
          f"{a.seeds} seeds per recipe, 1 thread per trial, {a.workers} worker(s); {len(todo)} trials trained "
          f"in {time.perf_counter() - t0:.0f} s, {a.models * a.seeds * len(recipes) - len(todo)} from cache")
    print("noise = median per-model seed std, IQR = q75-q25 of seed-0 errors over models (points); ratio = "
          "noise/IQR, target <= 0.10 on digits, <= 0.05 on Fashion-MNIST (yes/no only when the whole 95% interval is "
          "on one side);")
    print("last k = a model's error is the mean of its last k epochs' val errors; rho01 = Spearman of seed-0 vs "
          "seed-1 errors; failed = diverged (counted as 90%); >=85% = trials ending near chance (90%)")
    print(table(stats))
    if a.quick:
        print("(--quick: a smoke run of 2 epochs on 4 models x 2 seeds; too small to conclude anything)")


if __name__ == "__main__":
    main()
