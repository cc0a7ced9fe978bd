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
        "trial": {"cpus": 1, "keep_weights": True, "keep_best": None, "test_sizes": [8, 12, 16], "finetune": 1},
        "progressive": {"stages": 3},
        "arms": [{"name": "rrc"}, {"name": "pad", "train": {"augment": {"crop": "pad"}}, "progressive": None,
                                    "data": {"n_val": 2000}}]}))
    out = d / "run"
    _, _, lines = dse.run(dse.experiment.load(d / "e.yaml"), out, progress=False)
    return out


@pytest.fixture(scope="module")
def lines(run):
    """`dse run`'s lines again: the sweep is done, so nothing trains; the verdicts come from the table."""
    return dse.run(dse.experiment.saved(run), run, progress=False)[2]


def test_arms_verdicts_and_claim_lines(run, lines):
    text = "\n".join(lines)
    assert "rrc vs pad: no difference detected at n = 2 paired, too small for conclusions (fewer than 10 pairs)" \
        in text or "rrc vs pad: too small for conclusions at n = 2 paired" in text
    assert sum(x.startswith("rrc: testing at ") for x in lines) == 1 and any(x.startswith("pad: fine-tuning") for x in
                                                                             lines)
    assert any(x.startswith("rrc against pad: the change from 12 px to ") for x in lines)
    page = (run / "report.html").read_text()
    assert "FixRes: error at each test size against the training size, per arm" in page and "rrc against pad" in page


def test_rows_have_schedule_test_errors_and_reward(run):
    df = dse.load_results(run)
    assert (df["status"] == "ok").all() and (run / "report.html").exists() and (run / "edf.png").exists()
    assert sorted(df["key"]) == sorted(f"{i}@{a}" for i in set(df["id"]) for a in ("rrc", "pad"))
    pad = df[df["arm"] == "pad"]
    assert all(r["recipe"]["augment"]["crop"] == "pad" and r["data"]["n_val"] == 2000 for r in pad.to_dict("records"))
    assert pad["schedule"].isna().all() and pad["tuned_errors"].map(len).eq(3).all()
    df = df[df["arm"] == "rrc"]
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
    assert sorted(p.name for p in (run / "weights").glob("*.pt")) == sorted(f"{i}@{a}.pt" for i in set(df["id"])
                                                                             for a in ("rrc", "pad"))


def test_fixres_cli(run, run_cli):
    code, out, err = run_cli("fixres", run, "--test-sizes", "8,12,16", "--finetune", "1", "--json")
    assert code == 0, err
    rows = json.loads(out)
    df = dse.load_results(run)
    df = df[df["arm"] == "rrc"].set_index("id")  # the first arm by default
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


def test_fixres_and_compare_json_from_the_table(run, run_cli):
    code, out, err = run_cli("fixres", run, "--json")  # no --test-sizes: the sizes the sweep tested
    assert code == 0, err
    s = json.loads(out)
    assert s["arm"] == "rrc" and s["train_size"] == 12 and [x["size"] for x in s["sizes"]] == [8, 12, 16]
    assert set(s["sizes"][0]) == {"size", "n", "mean_error", "delta", "ci_low", "ci_high"}
    assert s["sizes"][1]["delta"] == 0 and s["finetune"]["size"] in (8, 12, 16)
    df = dse.load_results(run)
    rrc = df[df["arm"] == "rrc"]
    want = [float((rrc["test_errors"].map(lambda d: d["8"]) - rrc["test_errors"].map(lambda d: d["12"])).mean())]
    assert [s["sizes"][0]["delta"]] == pytest.approx(want)  # paired mean, by hand
    code, out, err = run_cli("compare", run, "--json")
    assert code == 0, err
    (pair,) = json.loads(out)
    assert (pair["a"], pair["b"], pair["paired"], pair["n_a"]) == ("rrc", "pad", True, 2)
