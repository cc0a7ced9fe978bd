"""Time dse.analysis.fit on random RegNet widths against a naive brute-force grid: python benchmarks/bench_fit.py."""
import time

import numpy as np
import pandas as pd

from dse.analysis.fit import fit, fit_many, fit_results
from dse.analysis.refine import refine
from dse.space.regnet import quantized_widths, quantized_widths_many, regnet_stages


def random_regnets(n, seed=0):
    """Per-block widths and parameters of n random RegNets (d 5..40, w0 8..256 step 8, wa 8..256, wm 1.5..3)."""
    rng = np.random.default_rng(seed)
    ps = [(int(rng.integers(5, 41)), 8 * int(rng.integers(1, 33)), rng.uniform(8, 256), rng.uniform(1.5, 3))
          for _ in range(n)]
    return [quantized_widths(*p) for p in ps], ps


def naive(ws, q=8):
    """Brute force: w0 = first width, wa on a 0.5 grid in [0, 256], wm on a 0.005 grid in [1.5, 3]."""
    wa, wm = (m.ravel() for m in np.meshgrid(np.arange(0, 256.5, 0.5), np.arange(1.5, 3.0001, 0.005)))
    hat = np.array(quantized_widths_many(np.full(wa.size, len(ws)), np.full(wa.size, float(ws[0])), wa, wm, q))
    return np.abs(np.log(ws / hat)).mean(axis=1).min()


def clock(f, *a):
    """(seconds, result) of one call."""
    t = time.perf_counter()
    r = f(*a)
    return time.perf_counter() - t, r


def main():
    wss, ps = random_regnets(500)
    fit(wss[0])  # warm-up
    t, df = clock(fit_many, wss)
    print(f"fit_many, 500 random RegNets: {t:.2f} s total, {t / 500 * 1e3:.2f} ms/model, "
          f"exact (e_fit == 0): {(df.e_fit == 0).mean():.1%}")

    rng = np.random.default_rng(2)
    table = pd.DataFrame({"id": [f"m{i}" for i in range(500)], "space": "regnetx", "status": "ok",
                          "error": rng.uniform(20, 60, 500), "ws": [w.tolist() for w in wss]})
    tr, fr = clock(fit_results, table)
    print(f"fit_results, 500-row results table: {tr:.2f} s total, {tr / 500 * 1e3:.2f} ms/model "
          f"({tr / t:.2f}x fit_many: table handling overhead)")
    tq, _ = clock(refine, table)
    print(f"refine, 500 rows (7 candidates incl. 3 e_fit thresholds): {tq:.2f} s ({tq / t:.2f}x fit_many)")

    few = wss[:5]
    tn, en = zip(*(clock(naive, np.asarray(ws)) for ws in few))
    tf, ef = zip(*(clock(fit, ws) for ws in few))
    print(f"naive grid (154k candidates), 5 models: {np.mean(tn) * 1e3:.0f} ms/model, "
          f"exact {np.mean(np.equal(en, 0)):.0%}, mean e_fit {np.mean(en):.4f}")
    print(f"fit, same 5 models: {np.mean(tf) * 1e3:.2f} ms/model, exact {np.mean([f.e_fit == 0 for f in ef]):.0%}; "
          f"naive / fit time ratio: {np.mean(tn) / np.mean(tf):.0f}x")

    rng = np.random.default_rng(1)
    adj = []
    for d, w0, wa, wm in ps[:100]:
        ds, ws, _ = regnet_stages(d, w0, wa, wm, 1.0, int(rng.choice([8, 16, 24, 32, 48, 64])))
        adj.append(np.repeat(ws, ds))
    t, da = clock(fit_many, adj)
    print(f"fit_many, 100 group-adjusted RegNets: {t:.2f} s total, {t / 100 * 1e3:.1f} ms/model, "
          f"exact {(da.e_fit == 0).mean():.0%}, max e_fit {da.e_fit.max():.4f}")

    anynet = [np.repeat(8 * rng.integers(2, 129, 4), rng.integers(1, 6, 4)) for _ in range(50)]
    t, dn = clock(fit_many, anynet)
    print(f"fit_many, 50 random AnyNet widths: {t:.2f} s total, {t / 50 * 1e3:.1f} ms/model, "
          f"median e_fit {dn.e_fit.median():.3f}")


if __name__ == "__main__":
    main()
