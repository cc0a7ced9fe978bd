"""Bad input tried as a hostile user would: one `dse: error:` line naming what and where, exit 1, no output left."""
import contextlib
import json
import os
import subprocess

import pytest
import yaml

import dse
from dse.errors import DseError


def one_line_error(code, out, err, *needles):
    assert code == 1, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dse: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ---------------------------------------------------------------- space files

@pytest.mark.parametrize("extra, needles", [
    ("stages: 100000\n", ["stages: must be in 1..16, got 100000"]),
    ("stages: -2\n", ["stages: must be in 1..16, got -2"]),
    ("res: -224\n", ["res: must be in 1..4096, got -224"]),
    ("params:\n  w: {kind: int, low: 8, high: .inf, q: 8, per_stage: true}\n", ["params.w.high", "finite"]),
    ("params:\n  w: {kind: float, low: .nan, high: 64, per_stage: true}\n", ["params.w.low", "finite"]),
    ("params:\n  w: {kind: float, low: 8, high: 1.0e+11, q: 0.1, per_stage: true}\n", ["params.w.high", "at most"]),
    ("params:\n  w: {kind: float, low: 8, high: 1e11, per_stage: true}\n", ["params.w.high", "the text '1e11'"]),
    ("params:\n  w: {kind: float, low: 1, high: 100001, q: 0.01, per_stage: true}\n", ["params.w", "1e+07 grid values"]),
])
def test_space_file_limits(run_cli, tmp_path, monkeypatch, extra, needles):
    monkeypatch.setenv("DSE_SPACES", str(tmp_path))
    (tmp_path / "bad.yaml").write_text("name: bad\nextends: anynetx_a\n" + extra)
    out = tmp_path / "s.jsonl"
    one_line_error(*run_cli("sample", "--space", "bad", "--flops", "360-400M", "-n", "2", "-o", out),
                   "bad.yaml", *needles)
    assert not out.exists()


def test_describe_refuses_values_off_the_grid(run_cli):
    one_line_error(*run_cli("describe", "--space", "regnetx", "--set", "d=22", "w0=25", "wa=24.48", "wm=2.54",
                            "g=16"), "w0", "25", "multiple of 8")
    code, out, _ = run_cli("describe", "--space", "regnetx", "--set", "d=22", "w0=24", "wa=24.48", "wm=2.54", "g=16")
    assert code == 0 and "flops" in out


# ---------------------------------------------------------------- command-line arguments

@pytest.mark.parametrize("args, needles", [
    (["sample", "--space", "anynetx_a", "--seed", "-1"], ["--seed", "must be in 0..4294967295, got -1"]),
    (["sample", "--space", "anynetx_a", "--workers", "0"], ["--workers", "must be in 1..64, got 0"]),
    (["sample", "--space", "anynetx_a", "--workers", "-1"], ["--workers", "got -1"]),
    (["sample", "--space", "anynetx_a", "--workers", "500"], ["--workers", "got 500"]),
    (["sample", "--space", "anynetx_a", "--seed", "abc"], ["--seed", "expected an integer, got 'abc'"]),
    (["describe", "--space", "regnetx", "--preset", "400mf", "--res", "-5"], ["--res", "got -5"]),
    (["sweep", "experiments/quick.yaml", "--cpus", "0"], ["--cpus", "got 0"]),
    (["sweep", "experiments/quick.yaml", "--retries", "-5"], ["--retries", "got -5"]),
])
def test_bad_arguments(run_cli, args, needles):
    one_line_error(*run_cli(*args), *needles)


def test_bands_may_start_with_a_minus(run_cli, tmp_path):
    out = tmp_path / "s.jsonl"
    code, _, err = run_cli("sample", "--space", "anynetx_a", "--flops", "-400M", "--params", "-6M", "-n", "3",
                           "-o", out, "-q")
    assert code == 0, err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["flops"] <= 400e6 and r["params"] <= 6e6 for r in rows)


def test_sample_without_output_writes_to_a_pipe_or_says_where(run_cli, monkeypatch, capsys):
    code, out, err = run_cli("sample", "--space", "anynetx_a", "--flops", "360-400M", "-n", "2")
    assert code == 0 and len(out.splitlines()) == 2 and json.loads(out.splitlines()[0])["space"] == "anynetx_a"
    assert "accepted 2" in err  # the summary goes to stderr when the samples go to stdout
    from dse import cli
    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: True, raising=False)
    code = cli.main(["sample", "--space", "anynetx_a", "--flops", "360-400M", "-n", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "not written: no -o given" in out and '"id"' not in out


# ---------------------------------------------------------------- output the OS refuses

def test_output_paths_the_os_refuses(run_cli, tmp_path):
    one_line_error(*run_cli("sample", "--space", "anynetx_a", "-n", "2", "-o", "/proc/x"), "/proc/x", "cannot write")
    d = tmp_path / "folder"
    d.mkdir()
    one_line_error(*run_cli("sample", "--space", "anynetx_a", "-n", "2", "-o", d, "--force"), "is a folder")
    assert d.is_dir() and not list(d.iterdir())


@contextlib.contextmanager
def read_only_folder(tmp_path):
    """A folder nothing can be written into: a read-only tmpfs (root), else skip."""
    d = tmp_path / "ro"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({r.stderr.decode().strip()[:80]})")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_read_only_filesystem(run_cli, tmp_path):
    with read_only_folder(tmp_path) as ro:
        one_line_error(*run_cli("sample", "--space", "anynetx_a", "-n", "2", "-o", ro / "s.jsonl"),
                       "s.jsonl", "Read-only file system")
        one_line_error(*run_cli("sweep", "experiments/quick.yaml", "--out", ro / "run"),
                       "run", "Read-only file system")
        assert not list(ro.iterdir())


# ---------------------------------------------------------------- experiment files

GOOD = {"name": "bad", "spaces": ["anynetx_a"], "n": 2, "flops": "-40M", "seed": 0,
        "data": {"name": "digits", "res": 8}, "train": {"epochs": 1, "batch_size": 256, "lr": 0.1, "warmup": 0}}


def parse(**change):
    d = {**GOOD}
    for k, v in change.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and isinstance(d.get(k), dict) else v
    return dse.experiment.parse(d, "exp.yaml")


@pytest.mark.parametrize("change, needles", [
    ({"trial": {"retries": -5}}, ["trial.retries: must be an integer in 0..100, got -5"]),
    ({"trial": {"cpus": 0}}, ["trial.cpus", "got 0"]),
    ({"seed": -1}, ["seed: must be an integer in 0..2^32-1, got -1"]),
    ({"seed": "abc"}, ["seed", "'abc'"]),
    ({"data": {"res": 100000}}, ["data.res: must be an integer in 1..1024", "100000"]),
    ({"name": "../../etc"}, ["name", "'..'"]),
    ({"name": "a/b"}, ["name"]),
    ({"flops": [float("nan"), 4e8]}, ["flops", "finite"]),
    ({"noise": {"models": 4, "seeds": 1}}, ["noise.seeds", "2..100"]),
    ({"noise": {"model": 4}}, ["noise.model: unknown key", "did you mean 'models'"]),
])
def test_bad_experiment_values(change, needles):
    with pytest.raises(DseError) as e:
        parse(**change)
    for n in needles:
        assert n in str(e.value), (n, str(e.value))
    assert str(e.value).startswith("exp.yaml: ")


def test_numbers_yaml_reads_as_text_are_numbers():
    d = yaml.safe_load("train: {lr: 1e30, wd: 5e-5}")  # YAML 1.1 reads both as strings
    assert isinstance(d["train"]["lr"], str)
    e = parse(train=d["train"])
    assert e.train.lr == 1e30 and e.train.wd == 5e-5


def test_experiment_roundtrip_and_no_torch():
    code = ("import sys, dse.run.experiment as E; e = E.load('experiments/quick.yaml'); "
            "assert E.parse(e.to_dict()) == e; print('torch' in sys.modules)")
    r = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_batch_larger_than_training_set(tmp_path):
    exp = parse(train={"batch_size": 5000})
    with pytest.raises(DseError, match="batch_size 5000 is larger than the training set"):
        dse.sweep(exp, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_a_folder_that_lost_its_experiment(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "plan.jsonl").write_text(dse.sample("anynetx_a", 1, flops=(None, 40e6)).to_jsonl())
    with pytest.raises(DseError, match="lost its experiment.yaml"):
        dse.sweep(parse(), run, resume=True, progress=False)


def test_resume_with_an_edited_experiment_names_the_keys(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    exp = parse()
    (run / "plan.jsonl").write_text(dse.sample("anynetx_a", 2, flops=(None, 40e6)).to_jsonl())
    (run / "experiment.yaml").write_text(yaml.safe_dump(exp.to_dict()))
    with pytest.raises(DseError, match=r"holds a different experiment \(seed, train.epochs differ\)"):
        dse.sweep(parse(seed=1, train={"epochs": 2}), run, resume=True, progress=False)
    with pytest.raises(DseError, match="only a larger n, or a larger search budget, grows a run"):
        dse.sweep(parse(n=1), run, resume=True, progress=False)
