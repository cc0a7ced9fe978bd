"""End to end: `python -m dse sweep experiments/quick.yaml` as a fresh process: python benchmarks/bench_e2e.py.

Prints the process's wall time against, in the same run, the ideal wall = sum of the trials' wall times / CPUs
(perfect packing, no start-up), and the time a fresh interpreter takes just to import dse, torch and ray.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dse

ROOT = Path(__file__).resolve().parents[1]


def clock(cmd: list[str]) -> float:
    """Wall seconds of one fresh process (which must succeed)."""
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def main(exp: str = "experiments/quick.yaml") -> None:
    cpus = os.cpu_count() or 1
    imports = clock([sys.executable, "-c", "import dse.run.sweep, torch, ray.tune"])
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        wall = clock([sys.executable, "-m", "dse", "sweep", exp, "--out", str(out)])
        df = dse.load_results(out)
    trials, ok = df["wall"].sum(), int((df["status"] == "ok").sum())
    ideal = trials / cpus
    print(f"{exp}: {len(df)} trials ({ok} ok) on {cpus} CPUs; load average {os.getloadavg()[0]:.1f} at the end "
          "(other work on the machine inflates walls)")
    print(f"wall of `python -m dse sweep` (fresh process): {wall:.1f} s")
    print(f"sum of trial wall times: {trials:.1f} s; ideal wall (sum / CPUs): {ideal:.1f} s")
    print(f"ratio wall / ideal: {wall / ideal:.2f} (parallel efficiency {ideal / wall:.0%}); "
          f"beyond ideal: {wall - ideal:.1f} s, of which {imports:.1f} s is a fresh "
          "`import dse.run.sweep, torch, ray.tune`")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
