"""`dse run` on Fashion-MNIST (a training subset, RandomResizedCrop, the resize + centre-crop test view) with
progressive learning, test-size errors and kept weights; FixRes evaluation and fine-tuning."""
import json
import os

import pytest
import torch
import yaml

import dse
from dse.errors import DseError
from dse.train.fixres import check_sizes

pytestmark = pytest.mark.slow


FMNIST = "/usr/share/datasets/fashion-mnist"  # .ci/setup installs Debian's package where it can; CI always can


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not os.path.isdir(FMNIST) and not os.environ.get("CI"):
        pytest.skip(f"{FMNIST} missing (apt-get install dataset-fashion-mnist); CI installs it")
    d = tmp_path_factory.mktemp("fx")
    (d / "e.yaml").write_text(yaml.safe_dump({
        "name": "fx", "spaces": ["anynetx_a"], "n": 2, "flops": "-40M",
        "data": {"name": "fashion_mnist", "res": 12, "n_train": 400},
        "train": {"epochs": 3, "batch_size": 128, "lr": 0.2, "warmup": 0, "augment": {"crop": "rrc"}},
        "eval": {"crop": "center", "resize": 1.143},
        "trial": {"cpus": 1, "keep_weights": True, "test_sizes": [8, 12, 16]}, "progressive": {"stages": 3}}))
    out = d / "run"
    dse.run(dse.experiment.load(d / "e.yaml"), out, progress=False)
    return out


def test_rows_have_schedule_test_errors_and_reward(run):
    df = dse.load_results(run)
    assert (df["status"] == "ok").all() and (run / "report.html").exists() and (run / "edf.png").exists()
    for _, r in df.iterrows():
        assert r["recipe"]["augment"]["crop"] == "rrc" and r["eval"] == {"crop": "center", "resize": 1.143}
        assert {k: r["data"][k] for k in ("name", "n_train", "n_val", "channels", "size", "res", "val")} == \
            {"name": "fashion_mnist", "n_train": 400, "n_val": 10000, "channels": 1, "size": 28, "res": 12,
             "val": "test"}
        assert [s["res"] for s in r["schedule"]] == [5, 8, 12]  # 12 * 128/300 -> 12 over 3 stages
        assert [s["dropout"] for s in r["schedule"]] == pytest.approx([0.1, 0.2, 0.3])
        assert set(r["test_errors"]) == {"8", "12", "16"} and r["test_errors"]["12"] == pytest.approx(r["error"])
        assert r["best_test_error"] == min(r["test_errors"].values())
        # reward = A * S^-0.07 * P^-0.05 with S in s/step and P in millions (hand formula)
        want = (1 - r["error"] / 100) * r["step_time"] ** -0.07 * (r["train_params"] / 1e6) ** -0.05
        assert r["reward"] == pytest.approx(want)
    assert not list((run / "ray").glob("run-*/*/checkpoint_*"))  # finished trials keep no epoch checkpoints
    assert len(list((run / "weights").glob("*.pt"))) == 2


def test_fixres_cli(run, run_cli):
    code, out, err = run_cli("fixres", run, "--test-sizes", "8,12,16", "--finetune", "1", "--json")
    assert code == 0, err
    rows = json.loads(out)
    df = dse.load_results(run).set_index("id")
    for r in rows:
        assert r["err@12"] == pytest.approx(df.loc[r["id"], "error"])  # same weights, same data, same size
        assert r["best_test_error"] == min(r["err@8"], r["err@12"], r["err@16"])
        assert "tuned_error" in r


def test_fixres_bad_input(run, run_cli, tmp_path):
    code, _, err = run_cli("fixres", run, "--test-sizes", "0,12")
    assert code == 1 and "positive integers" in err
    with pytest.raises(DseError):
        check_sizes(["-3"])
    # a checkpoint whose weights do not fit its config
    f = next((run / "weights").glob("*.pt"))
    blob = torch.load(f, weights_only=True)
    rec = json.loads(blob["record"])
    rec["stages"][0]["w"] += 8
    bad = tmp_path / "bad.pt"
    torch.save({"record": json.dumps(rec), "model": blob["model"]}, bad)
    (tmp_path.parent / "experiment.yaml").write_text((run / "experiment.yaml").read_text())
    code, _, err = run_cli("fixres", bad, "--test-sizes", "12")
    assert code == 1 and "does not match its config" in err and len(err.strip().splitlines()) == 1
