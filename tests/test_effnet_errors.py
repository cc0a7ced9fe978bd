"""Bad input for the EfficientNet family (issue section 6): each case is one `dse: error:` line and exit 1."""
import json

import pytest
import torch
import yaml

import dse
from dse.errors import DseError
from dse.models import build
from dse.models.export import save_weights


def one_line_error(result, *needles):
    code, out, err = result
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and "Traceback" not in err, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("dse: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_inconsistent_grid_is_empty(tmp_path, run_cli):
    # step 0.5 up to 1.5 gives alpha, beta, gamma in {1, 1.5}, so alpha*beta^2*gamma^2 is a power of 1.5
    # (1, 1.5, 2.25, 3.375, ...): none is 2 exactly, and tol 0 allows nothing else -> an empty grid
    e = tmp_path / "g.yaml"
    e.write_text(yaml.safe_dump({"name": "g", "grid": {"step": 0.5, "tol": 0.0, "max": 1.5},
                                 "data": {"name": "digits", "res": "net"}, "train": {"epochs": 1}}))
    one_line_error(run_cli("scale", "grid", e, "--out", tmp_path / "run"), str(e), "grid is empty")
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_grid_values_must_be_numbers(tmp_path, run_cli):
    e = tmp_path / "g.yaml"
    e.write_text(yaml.safe_dump({"name": "g", "grid": {"step": "fine"}, "data": {"name": "digits", "res": "net"}}))
    one_line_error(run_cli("scale", "grid", e, "--out", tmp_path / "run"), str(e), "grid.step: must be a number")


@pytest.mark.parametrize("phi,msg", [("-1", "--phi must be >= 0, got -1"), ("-2..1", "--phi must be >= 0, got -2"),
                                     ("3..1", "is empty"), ("one", "expected N, A..B or a comma list")])
def test_negative_or_empty_phi(run_cli, phi, msg):
    one_line_error(run_cli("scale", "apply", f"--phi={phi}"), msg)


def test_negative_phi_in_the_api():
    with pytest.raises(DseError, match=r"phi=-1 is outside its range 0\.\.7"):
        dse.describe("efficientnet_compound", phi=-1)


BAD_SPACES = {  # an unknown block type in the backbone, in a choice, and as a fixed value
    "base": "extends: efficientnet\nbase:\n  - {block: mb, e: 1, k: 3, stride: 1, w: 16, d: 1}\n"
            "  - {block: conv, e: 6, k: 3, stride: 2, w: 24, d: 2}\n",
    "choice": "extends: efficientnetv2\nparams:\n  block: {kind: choice, values: [mb, conv], per_stage: true}\n",
    "fixed": "extends: efficientnetv2\nparams:\n  block: conv\n",
    "preset": "extends: efficientnetv2\npresets:\n  x: {base: [{block: conv, e: 1, k: 3, stride: 1, w: 24, d: 2}]}\n",
}


@pytest.mark.parametrize("where", sorted(BAD_SPACES))
@pytest.mark.parametrize("cmd", ["describe", "sample"])
def test_unknown_block_type_in_a_space_file(tmp_path, run_cli, where, cmd):
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\n" + BAD_SPACES[where])
    args = ["--space", f] + (["-n", "2", "--flops=-1G", "-q", "--workers", "1"] if cmd == "sample" else [])
    one_line_error(run_cli(cmd, *args), str(f), "unknown block type 'conv' (known: mb, fmb)")


def test_unknown_block_type_given_as_a_parameter():
    with pytest.raises(DseError, match=r"block=conv \(stages 1, 2, 3, 4, 5, 6\) is not one of mb, fmb"):
        dse.load("efficientnetv2").make({"block": ["conv"] * 6})


@pytest.fixture
def checkpoint(tmp_path):
    """A kept-weights file of a small EfficientNetV2-space model as a sweep writes it (digits at 8 px)."""
    s = dse.sample("efficientnetv2", 1, flops=(None, 0.4e9), seed=0)[0]
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "experiment.yaml").write_text(yaml.safe_dump({"name": "x", "spaces": ["efficientnetv2"], "n": 1,
                                                        "data": {"name": "digits", "res": 8}}))
    torch.manual_seed(0)
    rec = s.to_dict()
    f = run / "weights" / f"{s.id}.pt"
    kw = {"res": 8, "classes": 10, "in_ch": 1}  # digits are grey
    save_weights(f, rec, build(s.config.net, **kw).state_dict(), net=kw)
    return f, rec


def test_a_model_for_other_channels_is_one_line(tmp_path, run_cli):
    s = dse.sample("efficientnetv2", 1, flops=(None, 0.4e9), seed=0)[0]
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "experiment.yaml").write_text(yaml.safe_dump({"name": "x", "spaces": ["efficientnetv2"], "n": 1,
                                                        "data": {"name": "digits", "res": 8}}))
    f = run / "weights" / f"{s.id}.pt"
    save_weights(f, s.to_dict(), build(s.config.net, res=8, classes=10).state_dict())  # 3 channels
    code, _, err = run_cli("fixres", f, "--test-sizes", "8")
    assert code == 1 and "takes 3 input channels but digits has 1" in err and len(err.splitlines()) == 1


def test_a_good_checkpoint_evaluates(checkpoint, run_cli):
    code, out, err = run_cli("fixres", checkpoint[0], "--test-sizes", "8,12", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["id"] == checkpoint[1]["id"] and 0 <= row["err@8"] <= 100 and row["best_test_size"] in (8, 12)


def test_fixres_evaluates_each_size_once(checkpoint, monkeypatch):
    # the error at the training size (8) is one of the test sizes: it is reused, not evaluated again
    import dse.run.weights as W
    import dse.train.fixres as fx
    real, calls = fx.evaluate, []
    spy = lambda *a, **k: calls.append(k.get("res")) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(fx, "evaluate", spy)  # errors_at's, at each test size
    monkeypatch.setattr(W, "evaluate", spy)  # the driver's, at the training size when it is not a test size
    df = W.fixres(checkpoint[0], [8, 12])
    assert sorted(calls) == [8, 12]
    assert df["gain"][0] == df["err@8"][0] - df["best_test_error"][0]


def test_fixres_best_test_error_is_not_best_error(checkpoint):
    # in a sweep's rows best_error is the best epoch's error; fixres's best over test sizes has its own name, as
    # in the sweep's rows (best_test_error, best_test_size)
    from dse.run.weights import fixres
    df = fixres(checkpoint[0], [8, 12])
    assert "best_error" not in df.columns
    assert df["best_test_error"][0] == min(df["err@8"][0], df["err@12"][0])


@pytest.mark.parametrize("sizes", ["0,-8", "-8", "12,0", "12.5", "big", ","])
def test_test_sizes_not_positive_integers(checkpoint, run_cli, sizes):
    one_line_error(run_cli("fixres", checkpoint[0], "--test-sizes", sizes), "--test-sizes: ")


def test_checkpoint_that_does_not_match_its_config(checkpoint, run_cli, tmp_path):
    f, rec = checkpoint
    blob = torch.load(f, weights_only=True)
    rec = dict(rec, stages=[dict(rec["stages"][0], w=rec["stages"][0]["w"] + 8)] + rec["stages"][1:])
    bad = f.parent / "bad.pt"
    torch.save({"record": json.dumps(rec), "model": blob["model"]}, bad)
    one_line_error(run_cli("fixres", bad, "--test-sizes", "8"), str(bad), "does not match its config")


def test_corrupt_or_missing_checkpoint(checkpoint, run_cli):
    f = checkpoint[0].parent / "junk.pt"
    f.write_bytes(b"not a torch file")
    one_line_error(run_cli("fixres", f, "--test-sizes", "8"), str(f), "not a dse checkpoint")
    missing = checkpoint[0].parent / "none.pt"
    one_line_error(run_cli("fixres", missing, "--test-sizes", "8"), str(missing), "no such sweep folder or checkpoint")
