"""The README's jobs: the main experiment is what the README says, and the smoke run says it is too small."""
import re
import tomllib
from pathlib import Path

import pytest

import dse

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_one_number():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["version"] == dse.__version__


def test_main_experiment_is_the_readme_s():
    exp = dse.experiment.load(ROOT / "experiments" / "main.yaml")
    assert exp.spaces == ("anynetx_a", "anynetx_e", "regnetx") and exp.n == 20
    assert exp.bands == {"flops": (360e6, 400e6), "params": (None, 5e6)}
    assert (exp.train.epochs, exp.train.batch_size, exp.train.lr, exp.train.warmup) == (10, 64, 0.1, 1)
    assert (exp.data.name, exp.data.res, exp.data.val_frac) == ("digits", 16, 0.2)
    assert (exp.noise.models, exp.noise.seeds) == (8, 3)
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert "python -m dse run experiments/main.yaml" in first.splitlines()[0]
    assert "bash .ci/run" in first.splitlines()[1]


@pytest.mark.slow
def test_smoke_run_says_it_is_too_small(run_cli, tmp_path):
    out = tmp_path / "quick"
    code, so, err = run_cli("run", ROOT / "experiments" / "quick.yaml", "--out", out)
    assert code == 0, err
    assert "TOO SMALL FOR CONCLUSIONS: 3 models on a side" in so
    assert "noise floor: median seed std" in so and "over 2 models x 2 seeds" in so
    assert "too small for conclusions" in so.split("TOO SMALL")[1]
    page = (out / "report.html").read_text()
    assert '<div class="banner">Too small for conclusions: 3 models' in page
    assert "Traceback" not in err and (out / "edf.png").exists() and (out / "results.parquet").exists()
    df = dse.load_results(out)
    assert len(df) == 3 * 2 + 2 * 1 and set(df["space"]) == {"anynetx_a", "anynetx_e"}
    rows = (out / "results.jsonl").read_bytes()
    (out / "report.html").write_text("old")
    code, _, err = run_cli("run", ROOT / "experiments" / "quick.yaml", "--out", out)  # again: nothing retrained
    assert code == 0, err
    assert (out / "results.jsonl").read_bytes() == rows
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")  # outputs refreshed
    other = tmp_path / "other.yaml"
    other.write_text((ROOT / "experiments" / "quick.yaml").read_text().replace("epochs: 1", "epochs: 2"))
    code, _, err = run_cli("run", other, "--out", out)
    assert code == 1 and "different experiment (train.epochs differs)" in err
    assert (out / "results.jsonl").read_bytes() == rows
