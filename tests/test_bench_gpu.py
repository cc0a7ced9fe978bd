"""benchmarks/bench_gpu.py runs its five paths on the CPU in quick mode (CI has no GPU) and prints its table."""
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_quick_cpu_run_prints_every_path_with_its_ratio_and_projection(capsys):
    sys.path.insert(0, str(BENCH))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(BENCH))
    bench_gpu.main(["--cpu", "--quick"])
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| (")]
    assert [r[2:5] for r in rows] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    assert all(float(c[1]) > 0 and re.fullmatch(r"\d+\.\d\dx", c[2]) and c[3].endswith("%") for c in cells)
    assert cells[0][2] == "1.00x" and float(cells[3][4]) > 0  # (a) is the reference; (d) timed its compilation
    assert all(float(c[5]) >= 0 and re.fullmatch(r"\d+\.\d min", c[6]) and c[7] in ("yes", "no") for c in cells)
    assert "2 packed trials" in rows[4] and "a smoke run: read no figure from it" in out
    # 100 samples x 10 epochs x 50,000 images in 10 minutes: 83,333 images/s (hand arithmetic)
    assert "needs 83333 img/s end to end" in out
    assert bench_gpu.peak_of("NVIDIA H200") == 989e12 and bench_gpu.peak_of("NVIDIA H100 PCIe") == 756e12
    assert bench_gpu.peak_of("NVIDIA H100 80GB HBM3") == 989e12 and bench_gpu.peak_of("Tesla T4") is None
