"""Analytic complexity against fvcore: speed ratio per model, and (--exhaustive) agreement on many samples per space.

    python benchmarks/bench_complexity.py                 # speed: fvcore vs the analytic counter (20 models)
    python benchmarks/bench_complexity.py --exhaustive    # agreement: 50 samples x 8 spaces at 72 px (minutes)
"""
import argparse
import time

import torch

import dse
from dse.models.complexity import _step_cx, complexity, count

SPACES = ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e", "regnetx", "regnety", "regnetx_pycls"]


def speed(n: int = 20) -> None:
    torch.manual_seed(0)
    rows = []
    for space in ("anynetx_a", "regnetx", "regnety"):
        for s in dse.sample(space, n // 2 if space != "anynetx_a" else n, flops=(360e6, 400e6), seed=5):
            net = s.config.net
            model = dse.build(net)
            t = time.perf_counter()
            ref = count(model, (3, 224, 224))
            t_fv = time.perf_counter() - t
            reps = 200
            t = time.perf_counter()
            for _ in range(reps):
                _step_cx.cache_clear()  # cold: no memoised blocks, the honest per-model cost
                got = complexity(net)
            t_an = (time.perf_counter() - t) / reps
            rows.append((space, t_fv, t_an, got == ref))
    fv = sum(r[1] for r in rows) / len(rows)
    an = sum(r[2] for r in rows) / len(rows)
    same = sum(r[3] for r in rows)
    print(f"models: {len(rows)} (anynetx_a, regnetx, regnety in 360-400MF, 224x224)")
    print(f"fvcore (+ hooks for bias adds/acts): {fv * 1e3:8.1f} ms per model")
    print(f"analytic (cold cache):              {an * 1e6:8.1f} us per model")
    print(f"speed-up: {fv / an:,.0f}x   identical flops/params/acts: {same}/{len(rows)}")


def exhaustive(n: int = 50, spaces=SPACES) -> int:
    """n samples per space (360-400MF, seed 1), counted at 72 px with 10 classes: params == numels, and
    flops/params/acts == fvcore; prints the disagreements and returns their number."""
    torch.manual_seed(0)
    bad = total = 0
    for space in spaces:
        t = time.perf_counter()
        for s in dse.sample(space, n, flops=(360e6, 400e6), seed=1):
            net = s.config.net.replace(res=72, classes=10)
            model = dse.build(net)
            want = complexity(net)
            got = count(model, (3, 72, 72))
            numel = sum(p.numel() for p in model.parameters())
            total += 1
            if got != want or numel != want.params:
                bad += 1
                print(f"  {space} {s.id}: analytic {tuple(want)}, fvcore {tuple(got)}, numel {numel}")
        print(f"{space:14s} {n} samples agree except as listed ({time.perf_counter() - t:.0f} s)")
    print(f"{total - bad}/{total} samples identical")
    return bad


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exhaustive", action="store_true", help="50 samples per space against fvcore")
    ap.add_argument("-n", type=int, default=50, help="samples per space for --exhaustive")
    a = ap.parse_args()
    if a.exhaustive:
        raise SystemExit(1 if exhaustive(a.n) else 0)
    speed()
