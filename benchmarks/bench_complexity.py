"""Analytic complexity against fvcore, per model: speed ratio and agreement (prints figures)."""
import time

import torch

import dse
from dse.complexity import _step_cx, complexity, count


def main(n: int = 20) -> None:
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


if __name__ == "__main__":
    main()
