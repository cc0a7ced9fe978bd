"""Search against the full sweep, on the embedded digits data: python benchmarks/bench_search.py [--quick].

1. The full sweep: N models of the space in the band (seed 0), each trained for the whole recipe. Its best 5% set
   the target: an error at or below the population's 5th percentile.
2. ASHA + random and ASHA + TPE (dse search), each with the same trial budget, over several search seeds (1, 2, 3).
   Per run: the compute (trial-epochs and trial-seconds, trials stopped early included) spent until the first
   completed model reaches the target, or "not reached" within the budget; and the best error found.
3. TPE against random at equal budget: the best error each finds, per seed and on average.
The full sweep's own cost to reach the target is given as the baseline (its trials in sampling order, which is
random). Everything is measured in this one run; which method wins is whatever the numbers say.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import dse
from dse.run.experiment import parse

ROOT = Path(__file__).resolve().parents[1]


def experiment(space, bands, recipe, n=0, search=None, seed=0):
    base = dse.experiment.load(ROOT / "experiments" / "main.yaml")
    d = {"name": "bench", "spaces": [space], **{m: list(b) for m, b in bands.items()}, "seed": seed,
         "data": base.data.__dict__, "train": recipe, "trial": {"cpus": 1}}
    if n:
        d["n"] = n
    if search:
        d["search"] = search
    return parse(d, "bench_search")


def to_target(df: pd.DataFrame, target: float) -> tuple:
    """(trial-epochs, trial-seconds, trials) spent until the first completed model at or below the target."""
    ep = pd.to_numeric(df["epochs"], errors="coerce").fillna(0).to_numpy()
    sec = pd.to_numeric(df["wall"], errors="coerce").fillna(0).to_numpy()
    hit = ((df["status"] == "ok") & (pd.to_numeric(df["error"], errors="coerce") <= target)).to_numpy()
    if not hit.any():
        return None, None, None
    i = int(np.argmax(hit))
    return float(ep[: i + 1].sum()), float(sec[: i + 1].sum()), i + 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="anynetx_a")
    ap.add_argument("--n", type=int, default=48, help="models in the full sweep")
    ap.add_argument("--budget", type=int, default=24, help="trials per search")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny models, 2 epochs, n 8, budget 6")
    a = ap.parse_args()
    main = dse.experiment.load(ROOT / "experiments" / "main.yaml")
    recipe, band = main.train.to_dict(), dict(main.bands)  # the main job's recipe and band (360-400MF, <= 5M params)
    if a.quick:
        a.n, a.budget, a.seeds, band = 8, 6, 1, {"flops": (10e6, 40e6)}
        recipe = {**recipe, "epochs": 2}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        full = dse.load_results(dse.sweep(experiment(a.space, band, recipe, n=a.n), tmp / "full", progress=False))
        errs = full.loc[full["status"] == "ok", "error"].to_numpy(dtype=float)
        target = float(np.quantile(errs, 0.05))
        fe, fs, fk = to_target(full, target)
        rows = [{"method": "full sweep (seed 0)", "seed": 0, "trials": len(full), "epochs_total":
                 float(full["epochs"].sum()), "seconds_total": float(full["wall"].sum()), "best": errs.min(),
                 "epochs_to_target": fe, "seconds_to_target": fs, "trials_to_target": fk}]
        for searcher in ("random", "tpe"):
            for s in range(1, a.seeds + 1):
                exp = experiment(a.space, band, recipe, seed=s,
                                 search={"budget": a.budget, "searcher": searcher, "scheduler": "asha"})
                df = dse.load_results(dse.search.search(exp, tmp / f"{searcher}{s}", progress=False))
                e, sec, k = to_target(df, target)
                ok = df[df["status"] == "ok"]
                rows.append({"method": f"ASHA + {searcher}", "seed": s, "trials": len(df),
                             "epochs_total": float(df["epochs"].sum()), "seconds_total": float(df["wall"].sum()),
                             "best": float(ok["error"].min()) if len(ok) else np.nan, "epochs_to_target": e,
                             "seconds_to_target": sec, "trials_to_target": k})
    t = pd.DataFrame(rows)
    from dse.space.units import fmt_band
    print(f"{a.space} in {', '.join(f'{m} {fmt_band(b)}' for m, b in band.items())} on digits, recipe {recipe}")
    k = int((errs <= target).sum())
    print(f"full sweep: {len(full)} models, errors min {errs.min():.2f} q05 {target:.2f} median "
          f"{np.median(errs):.2f} (target: error <= q05 = {target:.2f}%, met by {k} of them)")
    print(f"a full sweep in a random order needs on average (N+1)/(k+1) = {(len(errs) + 1) / (k + 1):.1f} trials "
          f"= {(len(errs) + 1) / (k + 1) * recipe['epochs']:.0f} trial-epochs to meet it "
          "(its own order below is one draw)")
    print(t.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print("\nper method (mean over seeds; 'reached' = runs that found a target model within the budget):")
    for m, g in t.groupby("method", sort=False):
        hit = g["epochs_to_target"].notna()
        print(f"  {m:22s} reached {int(hit.sum())}/{len(g)}  trial-epochs to target "
              f"{g.loc[hit, 'epochs_to_target'].mean():7.1f}  trial-seconds to target "
              f"{g.loc[hit, 'seconds_to_target'].mean():7.1f}  best error {g['best'].mean():.2f}  "
              f"compute per run {g['epochs_total'].mean():.0f} trial-epochs")
    r, p = (t[t["method"] == f"ASHA + {x}"]["best"].to_numpy() for x in ("random", "tpe"))
    print(f"TPE vs random at equal budget ({a.budget} trials): best error {p.mean():.2f} vs {r.mean():.2f} "
          f"(per seed {np.round(p, 2).tolist()} vs {np.round(r, 2).tolist()})")


if __name__ == "__main__":
    sys.exit(main())
