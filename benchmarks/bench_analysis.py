"""Time EDF analysis and figures on synthetic results (5 spaces x 500 rows): python benchmarks/bench_analysis.py."""
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MPLBACKEND", "Agg")

from dse.analysis.edf import edfs, summary  # noqa: E402
from dse.analysis.plots import edf_figure, params_figure, save  # noqa: E402


def synthetic(n=500, spaces=("anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e"), seed=0):
    """A results-like table: per-stage d/w/b/g, flops/params, an error that improves with flops and depth, 2% failed."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, sp in enumerate(spaces):
        d = rng.integers(1, 17, (n, 4))
        w = 8 * np.round(np.exp(rng.uniform(np.log(2), np.log(128), (n, 4)))).astype(int)
        b = rng.choice([1, 2, 4], (n, 4))
        g = rng.choice([1, 2, 4, 8, 16, 32], (n, 4))
        flops = np.exp(rng.uniform(np.log(2e8), np.log(8e8), n))
        params = flops / 100 * np.exp(rng.normal(0, 0.5, n))
        err = 40 - 2.0 * k - 4 * np.log(flops / 2e8) - 0.3 * d.sum(1) ** 0.5 + rng.gamma(2, 2, n)
        ok = rng.random(n) > 0.02
        row = {"id": [f"{sp}-{i}" for i in range(n)], "space": sp, "status": np.where(ok, "ok", "failed"),
               "error": np.where(ok, err, np.nan), "flops": flops.astype(int), "params": params.astype(int),
               "ws": [list(np.repeat(w[i], d[i])) for i in range(n)]}
        for j in range(4):
            row |= {f"d{j + 1}": d[:, j], f"w{j + 1}": w[:, j], f"b{j + 1}": b[:, j], f"g{j + 1}": g[:, j]}
        parts.append(pd.DataFrame(row))
    return pd.concat(parts, ignore_index=True)


def clock(f, *a, repeat=1, **kw):
    """(best seconds over `repeat` calls, result)."""
    best, r = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        r = f(*a, **kw)
        best = min(best, time.perf_counter() - t)
    return best, r


def main():
    df = synthetic()
    print(f"synthetic results: {df.space.nunique()} spaces x {len(df) // df.space.nunique()} rows "
          f"({(df.status != 'ok').sum()} failed)")
    edf_figure(df.head(50))  # warm-up: matplotlib imports and font cache
    total = time.perf_counter()
    t_sum, _ = clock(summary, df, repeat=5)
    t_edf, _ = clock(edfs, df, repeat=5)
    t_norm, _ = clock(edfs, df, normalized="flops", repeat=5)
    t_band, _ = clock(edfs, df, n_boot=1000)
    t_band_n, _ = clock(edfs, df, normalized="flops", n_boot=1000)
    print(f"summary:                       {t_sum * 1e3:8.1f} ms")
    print(f"edfs (plain):                  {t_edf * 1e3:8.1f} ms")
    print(f"edfs (normalized by flops):    {t_norm * 1e3:8.1f} ms  ({t_norm / t_edf:.1f}x plain)")
    print(f"edfs + bootstrap band (1000):  {t_band * 1e3:8.1f} ms  ({t_band / t_edf:.0f}x plain)")
    print(f"normalized + band (1000):      {t_band_n * 1e3:8.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_fe, fig = clock(edf_figure, df, band=True)
        t_se, _ = clock(save, fig, tmp / "edf.png")
        t_fp, fig = clock(params_figure, df)
        t_sp, _ = clock(save, fig, tmp / "params.png")
        size_e, size_p = (tmp / "edf.png").stat().st_size, (tmp / "params.png").stat().st_size
    print(f"edf_figure (band) draw:        {t_fe * 1e3:8.1f} ms, save PNG {t_se * 1e3:7.1f} ms ({size_e / 1e3:.0f} kB)")
    print(f"params_figure (18 panels):     {t_fp * 1e3:8.1f} ms, save PNG {t_sp * 1e3:7.1f} ms ({size_p / 1e3:.0f} kB)")
    print(f"total:                         {time.perf_counter() - total:8.2f} s")


if __name__ == "__main__":
    main()
