"""`dse sample --space S --flops 360-400M -n 500` for each AnyNetX space and RegNetX (prints figures).

Times the whole command as a user runs it (a fresh process, so interpreter start-up and imports are included),
and in-process with 1 and 2 workers; the 1-worker in-process time is the same-run baseline for the ratio.
"""
import os
import subprocess
import sys
import tempfile
import time

import dse

SPACES = ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e", "regnetx", "regnety"]


def main() -> None:
    print(f"{'space':10s} {'cli s':>6s} {'1 worker':>9s} {'2 workers':>10s} {'ratio':>6s} {'accept':>7s}")
    with tempfile.TemporaryDirectory() as d:
        for sp in SPACES:
            out = os.path.join(d, f"{sp}.jsonl")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dse", "sample", "--space", sp, "--flops", "360-400M", "-n", "500",
                            "-o", out, "-q"], check=True)
            cli = time.perf_counter() - t
            t = time.perf_counter()
            r1 = dse.sample(sp, 500, flops=(360e6, 400e6), workers=1)
            t1 = time.perf_counter() - t
            t = time.perf_counter()
            dse.sample(sp, 500, flops=(360e6, 400e6), workers=2)
            t2 = time.perf_counter() - t
            print(f"{sp:10s} {cli:6.2f} {t1:9.2f} {t2:10.2f} {t1 / t2:6.2f} {100 * r1.rate:6.2f}%")


if __name__ == "__main__":
    main()
