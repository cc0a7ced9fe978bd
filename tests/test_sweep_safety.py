"""One writer per sweep folder, honest interrupts, grown sweeps, no hangs, a full disk (integration, with Ray)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import dse
from dse.errors import DseError
from dse.results import read_rows

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "CI": "true"}


def write_exp(tmp, name="safe", n=4, epochs=4, **extra):
    d = {"name": name, "spaces": ["anynetx_a"], "n": n, "flops": "-40M", "seed": 0,
         "data": {"name": "digits", "res": 8},
         "train": {"epochs": epochs, "batch_size": 256, "lr": 0.1, "warmup": 0}, "trial": {"cpus": 1}, **extra}
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "dse", *map(str, args)], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_rows(log: Path, k: int, p, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None:
        if log.exists() and len(read_rows(log)) >= k:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {k} rows before the sweep ended or {timeout}s passed")


def descendants(pid: int) -> set[int]:
    """Every process below pid (Ray's GCS, raylet, agents and workers below a driver), from /proc."""
    parent = {}
    for st in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(st.parent.name)] = int(st.read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    out, frontier = set(), {pid}
    while frontier:
        frontier = {q for q, pp in parent.items() if pp in frontier and q not in out}
        out |= frontier
    return out


def alive(pid) -> bool:  # a zombie waiting for a reaper is dead
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def ctrl_c_twice(p) -> tuple[int, str, str]:
    """SIGINT to the process group, as Ctrl-C in a terminal does; again the moment the first one is reported (while
    the driver stops Ray on its way out)."""
    os.killpg(p.pid, signal.SIGINT)
    err = []
    for line in p.stderr:
        err.append(line)
        if "interrupted" in line:
            os.killpg(p.pid, signal.SIGINT)
            break
    out, rest = p.communicate(timeout=120)
    return p.returncode, out, "".join(err) + rest


def test_one_writer_interrupt_then_resume(tmp_path, run_cli):
    exp = write_exp(tmp_path, n=6, epochs=5)
    out = tmp_path / "run"
    p = start("sweep", exp, "--out", out)
    wait_rows(out / "results.jsonl", 1, p)
    ray = descendants(p.pid)  # this sweep's Ray: GCS, raylet, dashboard process and agents, workers
    # a second writer, resumed or new, is refused while the first one runs: one line naming the holder's pid
    # (in this process: flock conflicts between two open files whichever process holds them)
    for args in (["--resume"], []):
        code, _, err = run_cli("sweep", exp, "--out", out, *args)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert (f"in use by another dse sweep (pid {p.pid})" in err) if args else "already exists" in err
    code, stdout, err = ctrl_c_twice(p)
    assert code == 130, err
    assert "interrupted (SIGINT)" in err and "--resume" in err and "results:" not in stdout
    assert "Traceback" not in err and "Exception ignored" not in err, err
    for _ in range(50):  # no process of that Ray session remains (orphaned agents used to stay for a minute)
        left = [q for q in ray if alive(q)]
        if not left:
            break
        time.sleep(0.2)
    assert len(ray) >= 4 and not left, [subprocess.run(["ps", "-o", "cmd=", "-p", str(q)], capture_output=True,
                                                        text=True).stdout[:60] for q in left]
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "interrupted" and st["running"] == 0 and st["done"] == len(read_rows(out / "results.jsonl"))
    assert st["done"] < 6
    status = dse.status.status(out)
    assert "interrupted" in status and "running" not in status.splitlines()[0].split(":")[-1]
    dse.sweep(dse.experiment.load(exp), out, resume=True, progress=False)  # in-process: Ray may already be up
    keys = [x["key"] for x in read_rows(out / "results.jsonl")]
    assert len(keys) == len(set(keys)) == 6


def test_run_terminated_writes_no_report(tmp_path):
    exp = write_exp(tmp_path, name="runint", n=6, epochs=6)
    out = tmp_path / "run"
    p = start("run", exp, "--out", out)
    wait_rows(out / "results.jsonl", 1, p)
    p.send_signal(signal.SIGTERM)  # to the driver only (Ray installs its own SIGTERM handler: dse takes it back)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143 and "interrupted (SIGTERM)" in err and "no report" in err, err
    assert "SIGTERM received" not in err and "Traceback" not in err  # no stack dump from Ray's handler
    assert not (out / "report.html").exists() and not (out / "edf.png").exists()
    assert json.loads((out / "status.json").read_text())["state"] == "interrupted"


def test_grow_trains_only_the_new_samples_and_a_stale_lock_does_not_block(tmp_path):
    out = tmp_path / "run"
    dse.sweep(dse.experiment.load(write_exp(tmp_path, n=2, epochs=1)), out, progress=False)
    before = read_rows(out / "results.jsonl")
    (out / ".lock").write_text("999999\n")  # left by a killed driver: flock died with it, the file stays
    grown = dse.experiment.load(write_exp(tmp_path, n=4, epochs=1))
    dse.sweep(grown, out, resume=True, progress=False)
    rows = read_rows(out / "results.jsonl")
    plan = [r["id"] for r in read_rows(out / "plan.jsonl")]
    assert rows[:2] == before  # the first rows are untouched
    assert sorted(plan[:2]) == sorted(r["id"] for r in before) and len(plan) == 4  # rows come in finish order
    assert plan == [s.id for s in dse.sample("anynetx_a", 4, flops=(None, 40e6), seed=0)]  # the first n stay the first
    assert sorted(r["id"] for r in rows) == sorted(plan)
    assert yaml.safe_load((out / "experiment.yaml").read_text())["n"] == 4
    assert not list((out / "ray").glob("run-1/" + before[0]["id"]))  # a finished sample is never trained again


def test_noise_repeats_are_ordinary_trials_and_only_the_best_weights_are_kept(tmp_path, run_cli):
    exp = dse.experiment.load(write_exp(tmp_path, n=3, epochs=1, noise={"models": 2, "seeds": 3},
                                        trial={"cpus": 1, "keep_weights": True, "keep_best": 1}))
    df = dse.load_results(dse.sweep(exp, tmp_path / "run", progress=False))
    prim = df[df["repeat"] == 0].sort_values(["error", "id"])  # ties (models at chance) broken by id, as dse does
    assert sorted(p.stem for p in (tmp_path / "run" / "weights").glob("*.pt")) == [prim["id"].iloc[0]]
    code, _, err = run_cli("export", tmp_path / "run", "--best", "-o", tmp_path / "best.pt")
    assert code == 0, err
    model = dse.load_model(tmp_path / "best.pt")
    assert model.config.id == prim["id"].iloc[0]
    assert len(df) == 3 + 2 * 2 and df["key"].is_unique
    rep = df[df["repeat"] > 0]
    assert sorted(rep["repeat"].unique()) == [1, 2] and rep["id"].nunique() == 2
    # spread over the error range: the best and the worst primaries are the ones repeated
    assert set(rep["id"]) == {prim["id"].iloc[0], prim["id"].iloc[-1]}
    assert df.groupby("id")["seed"].nunique().max() == 3  # each repeat trains with its own seed
    noise = read_rows(tmp_path / "run" / "noise.jsonl")
    assert sorted((r["id"], r["repeat"]) for r in noise) == sorted(zip(rep["id"], rep["repeat"]))


def test_more_cpus_than_the_cluster_is_refused_not_a_hang(tmp_path, run_cli):
    exp = write_exp(tmp_path, n=1, epochs=1)
    t = time.time()
    code, _, err = run_cli("sweep", exp, "--out", tmp_path / "run", "--cpus", "64")
    assert code == 1 and "trial.cpus = 64 but this machine has" in err and len(err.strip().splitlines()) == 1
    assert time.time() - t < 120 and not (tmp_path / "run").exists()


def test_failed_trial_is_one_line_with_the_traceback_in_a_log(tmp_path, capfd):
    exp = dse.experiment.load(write_exp(tmp_path, n=2, epochs=1))
    faults = tmp_path / "faults"
    faults.mkdir()
    sid = dse.plan.plan(exp)[0]["id"]
    (faults / sid).write_text("9")
    dse.sweep(exp, tmp_path / "run", progress=False, _faults=str(faults))
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"failed: {sid} (anynetx_a): RuntimeError: injected fault (8 more)"], err
    log = (tmp_path / "run" / "errors.log").read_text()
    assert sid in log and "injected fault" in log and "in _fault" in log and "in _fault" not in err
    assert log.count(", line ") >= 2, log


def test_full_disk_is_one_line_and_keeps_the_rows(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()[:80]!r})")
    try:
        exp = write_exp(tmp_path, n=6, epochs=3)
        out = disk / "run"
        p = start("sweep", exp, "--out", out)
        wait_rows(out / "results.jsonl", 1, p)
        kept = (out / "results.jsonl").read_text().splitlines()
        with open(disk / "filler", "wb", buffering=0) as f:  # fill the disk while trials still run
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        _, err = p.communicate(timeout=180)
        assert p.returncode == 1, err
        lines = [ln for ln in err.splitlines() if ln.startswith("dse:")]
        assert len(lines) == 1 and str(out) in lines[0] and "No space left on device" in lines[0], err
        assert "Traceback" not in err
        rows = read_rows(out / "results.jsonl")
        assert [json.dumps(x, sort_keys=True) for x in rows[:len(kept)]] == \
               [json.dumps(json.loads(x), sort_keys=True) for x in kept]
        assert all(x["status"] == "ok" for x in rows)  # the disk's fault is never recorded as a failed model
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_sigterm_to_sample_takes_its_workers_along(tmp_path):
    p = start("sample", "--space", "anynetx_a", "--flops", "360-361M", "-n", "400", "--workers", "2",
              "-o", tmp_path / "s.jsonl", "--max-tries", "100000000")
    deadline, kids = time.time() + 30, []
    while not kids and time.time() < deadline:  # the pool's workers, once started
        time.sleep(0.5)
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    assert kids, "the sampler started no worker processes"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    deadline = time.time() + 30  # the workers exit on their own after their parent: wait for that, bounded
    while [k for k in kids if alive(k)] and time.time() < deadline:
        time.sleep(0.2)
    assert not [k for k in kids if alive(k)]
    assert not (tmp_path / "s.jsonl").exists()


def test_resume_refuses_a_changed_experiment_before_any_training(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    exp = dse.experiment.load(write_exp(tmp_path, n=2))
    (out / "plan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dse.plan.plan(exp)))
    (out / "experiment.yaml").write_text(yaml.safe_dump(exp.to_dict()))
    edited = dse.experiment.load(write_exp(tmp_path, n=2, data={"name": "digits", "res": 12}))
    with pytest.raises(DseError, match=r"data.res differ"):
        dse.sweep(edited, out, resume=True, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "experiment.yaml", "plan.jsonl"]
