"""`dse sweep` on bad input: one `dse: error:` line, exit 1, no traceback, and no sweep folder left behind."""
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import dse
from dse.errors import DseError
from dse.run.sweep import check_address

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"name": "bad", "spaces": ["anynetx_a"], "n": 2, "flops": "-40M", "seed": 0,
        "data": {"name": "digits", "res": 8}, "train": {"epochs": 1, "batch_size": 256, "lr": 0.1, "warmup": 0},
        "trial": {"cpus": 1, "retries": 0}}


def closed_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exp_file(tmp_path, text=None, **change) -> Path:
    d = {**GOOD}
    for k, v in change.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    p = tmp_path / "exp.yaml"
    p.write_text(text if text is not None else yaml.safe_dump(d))
    return p


def check_error(run_cli, tmp_path, args, *needles):
    """The sweep fails with exit 1 and one error line holding every needle; it made no sweep folder."""
    out = tmp_path / "run"
    code, stdout, err = run_cli("sweep", *args, "--out", out)
    assert code == 1 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("dse: error: "), err
    for n in needles:
        assert n in err, err
    assert not out.exists()


@pytest.mark.parametrize("text, change, needles", [
    ("name: [x\n  bad: : yaml\n", {}, ["exp.yaml", "invalid YAML"]),
    ("- just\n- a list\n", {}, ["exp.yaml", "must be a mapping"]),
    (None, {"sede": 0}, ["exp.yaml", "sede: unknown key", "did you mean 'seed'"]),
    (None, {"trial": {"gpu": 1}}, ["trial.gpu: unknown key"]),
    (None, {"data": {"resolution": 8}}, ["data.resolution: unknown key"]),
    (None, {"n": "two"}, ["n: must be an integer in 1..1000000", "'two'"]),
    (None, {"trial": {"cpus": "one"}}, ["trial.cpus: must be a number", "'one'"]),
    (None, {"data": {"res": 8.5}}, ["data.res: must be an integer in 1..1024", "8.5"]),
    (None, {"train": {"lr": "fast"}}, ["train.lr: must be a positive number", "'fast'"]),
    (None, {"train": {"epochs": "one"}}, ["train.epochs: must be an integer", "'one'"]),
])
def test_bad_experiment_file(tmp_path, run_cli, text, change, needles):
    check_error(run_cli, tmp_path, [exp_file(tmp_path, text, **change)], *needles)


def test_missing_experiment_file(tmp_path, run_cli):
    check_error(run_cli, tmp_path, [tmp_path / "nope.yaml"], "experiment file not found", "nope.yaml")


def test_unknown_data_set(tmp_path, run_cli):
    f = exp_file(tmp_path, data={"name": "svhn"})
    check_error(run_cli, tmp_path, [f], "data.name", "unknown data set 'svhn'", "fashion_mnist", "cifar10")
    check_error(run_cli, tmp_path, [f, "--data-path", tmp_path], "unknown data set 'svhn'")
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--data", "svhn"], "unknown data set 'svhn'")


def test_unknown_data_set_python_api(tmp_path):
    with pytest.raises(DseError, match="exp.yaml: data.name: unknown data set 'svhn'"):
        dse.experiment.load(exp_file(tmp_path, data={"name": "svhn", "path": str(tmp_path)}))
    exp = dse.experiment.load(exp_file(tmp_path, data={"name": "cifar10", "path": str(tmp_path / "none")}))
    with pytest.raises(DseError, match="none"):
        dse.sweep(exp, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_missing_data_path(tmp_path, run_cli):
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--data", "cifar10"], "data set cifar10 not found: looked in",
                "cifar-10-batches-py", "--data-path")
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--data", "imagefolder"], "imagefolder needs a path",
                "--data-path")
    gone = tmp_path / "no_such_dir"
    check_error(run_cli, tmp_path, [exp_file(tmp_path, data={"name": "cifar10", "path": str(gone)})],
                "cifar10", str(gone), "does not exist")
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--data", "cifar100", "--data-path", gone], str(gone))
    # each sample at its own resolution (data.res: net): the data are still checked before anything is made
    check_error(run_cli, tmp_path, [exp_file(tmp_path, data={"name": "cifar10", "path": str(gone), "res": "net"})],
                "cifar10", str(gone), "does not exist")


def test_unreachable_address(tmp_path, run_cli):
    port = closed_port()
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--address", f"127.0.0.1:{port}"],
                f"--address 127.0.0.1:{port}", "no Ray cluster reachable", "refused")
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--address", "nonsense"], "expected HOST:PORT or auto")
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--address", "127.0.0.1:99999"], "expected HOST:PORT")


def test_address_auto(tmp_path, monkeypatch, run_cli):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))  # no cluster started with `ray start` here
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--address", "auto"], "no running Ray cluster found")
    port = closed_port()
    (tmp_path / "raytmp" / "ray").mkdir(parents=True)
    (tmp_path / "raytmp" / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")  # a stale record
    check_error(run_cli, tmp_path, [exp_file(tmp_path), "--address", "auto"], f"127.0.0.1:{port}", "no Ray cluster")
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port + 1 if port < 65535 else port - 1}")
    with pytest.raises(DseError, match="no Ray cluster reachable at 127.0.0.1"):
        check_address("auto")


def test_reachable_address_passes_the_check():
    with socket.socket() as s:  # anything listening passes the TCP check (Ray itself is tested in test_cluster)
        s.bind(("127.0.0.1", 0))
        s.listen()
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        assert check_address(addr) == addr
    assert check_address(None) is None


@pytest.mark.parametrize("args", [["--address", "127.0.0.1:{port}"], ["--data", "cifar10", "--data-path", "{gone}"]])
def test_no_traceback_in_a_fresh_process(tmp_path, args):
    args = [a.format(port=closed_port(), gone=tmp_path / "gone") for a in args]
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "dse", "sweep", str(exp_file(tmp_path)), *args, "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("dse: error: "), r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_ray_address_env_is_checked_like_address(tmp_path, run_cli, monkeypatch):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    from dse.run.sweep import check_address
    with pytest.raises(DseError, match=f"no Ray cluster reachable at 127.0.0.1:{port}"):
        check_address(None)


def test_bad_real_data_is_one_line_and_no_folder(tmp_path, run_cli):
    """Issue 15's bad inputs, through `dse sweep`: a corrupt IDX file, a subset larger than the data, bad crops."""
    import gzip

    from test_data import write_idx
    idx = tmp_path / "idx"
    write_idx(idx, n_train=30, n_test=10)
    f = idx / "train-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:-5]))
    mnist = {"name": "mnist", "res": 8}
    check_error(run_cli, tmp_path, [exp_file(tmp_path, data=mnist), "--data-path", idx], "train-images-idx3-ubyte.gz",
                "truncated")
    write_idx(idx, n_train=30, n_test=10)
    check_error(run_cli, tmp_path, [exp_file(tmp_path, data={**mnist, "n_train": 31}), "--data-path", idx],
                "n_train: 31 is larger than the training set of mnist (30 images)")
    check_error(run_cli, tmp_path, [exp_file(tmp_path, train={"augment": {"crop": "rrc", "scale": [0.5, 1.5]}})],
                "train.augment.scale: must be [low, high] with 0 < low <= high <= 1")
    check_error(run_cli, tmp_path, [exp_file(tmp_path, eval={"crop": "center", "resize": 0.9})],
                "eval.resize: must be a number in [1, 10]")
    check_error(run_cli, tmp_path, [exp_file(tmp_path, data={"val": "test"})], "data.val: test: digits has no test split")
