"""Sweeps on Ray Tune: the results table, resume after SIGKILL, failing trials, no overwrite (integration)."""
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
from dse.results import load_results, read_rows

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def write_exp(tmp, name="tiny", n=3, epochs=2, extra=None, samples=None):
    d = {"name": name, "spaces": ["anynetx_a"], "n": n, "flops": "-40M", "seed": 0,
         "data": {"name": "digits", "res": 8},
         "train": {"epochs": epochs, "batch_size": 256, "lr": 0.1, "warmup": 0},
         "trial": {"cpus": 1, "retries": 0}}
    if samples:
        d.pop("spaces"), d.pop("n"), d.pop("flops")
        d["samples"] = str(samples)
    for k, v in (extra or {}).items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_sweep_writes_one_row_per_sample(tmp_path):
    exp = dse.experiment.load(write_exp(tmp_path, n=3))
    out = dse.sweep(exp, tmp_path / "run", progress=False)
    df = load_results(out)
    plan = read_rows(out / "plan.jsonl")
    assert sorted(df["id"]) == sorted(r["id"] for r in plan) and len(df) == 3
    assert (df["status"] == "ok").all()
    assert {"space", "error", "best_error", "flops", "params", "acts", "d1", "w4", "errors", "seed", "threads",
            "torch", "dse", "wall", "train_flops"} <= set(df.columns)
    assert all(len(e) == 2 for e in df["errors"]) and ((df["error"] >= 0) & (df["error"] <= 100)).all()
    assert (out / "results.parquet").exists()
    pq = load_results(out / "results.parquet")
    assert list(pq["id"]) == list(df["id"])
    assert "3/3 done" in dse.status.status(out)
    # resuming a finished sweep trains nothing and writes nothing
    before = (out / "results.jsonl").read_bytes()
    dse.sweep(exp, out, resume=True, progress=False)
    assert (out / "results.jsonl").read_bytes() == before


def test_same_seed_same_errors(tmp_path):
    exp = dse.experiment.load(write_exp(tmp_path, n=2))
    a = load_results(dse.sweep(exp, tmp_path / "a", progress=False)).sort_values("id")
    b = load_results(dse.sweep(exp, tmp_path / "b", progress=False)).sort_values("id")
    assert list(a["id"]) == list(b["id"]) and list(a["error"]) == list(b["error"])


def test_failing_trials_are_recorded_and_retried(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(dse.sample("anynetx_a", 3, flops=(None, 40e6), seed=4).to_jsonl())
    ids = [json.loads(x)["id"] for x in samples.read_text().splitlines()]
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / ids[0]).write_text("5")  # always raises
    (faults / ids[1]).write_text("1")  # raises once, then a retry succeeds
    exp = dse.experiment.load(write_exp(tmp_path, samples=samples,
                                        extra={"trial": {"retries": 1}}))
    df = load_results(dse.sweep(exp, tmp_path / "run", progress=False, _faults=str(faults))).set_index("id")
    assert df.loc[ids[0], "status"] == "failed" and "injected fault" in df.loc[ids[0], "reason"]
    assert df.loc[ids[1], "status"] == "ok" and (faults / ids[1]).read_text() == "0"
    assert df.loc[ids[2], "status"] == "ok"
    assert (faults / ids[0]).read_text() == "3"  # two attempts: the first try and one retry


def test_diverging_trial_is_failed_not_a_crash(tmp_path):
    exp = dse.experiment.load(write_exp(tmp_path, n=1, epochs=2, extra={"train": {"lr": 1e12}}))
    df = load_results(dse.sweep(exp, tmp_path / "run", progress=False))
    assert df.loc[0, "status"] == "failed" and "diverged" in df.loc[0, "reason"]


def test_no_overwrite_without_resume(tmp_path, run_cli):
    exp = write_exp(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"id": "x"}\n')
    code, _, err = run_cli("sweep", exp, "--out", out)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "already exists" in err and "--resume" in err
    assert (out / "results.jsonl").read_text() == '{"id": "x"}\n' and len(list(out.iterdir())) == 1
    code, _, err = run_cli("sweep", exp, "--out", tmp_path / "nothing", "--resume")
    assert code != 0 and "nothing to resume" in err


def test_resume_after_sigkill(tmp_path):
    exp = write_exp(tmp_path, name="killme", n=6, epochs=4)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dse", "sweep", str(exp), "--out", str(out)]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    log = out / "results.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if log.exists() and len(read_rows(log)) >= 2:
            break
        time.sleep(0.2)
    assert p.poll() is None, "the sweep ended before it could be killed"
    from dse.run.sweep import _checkpoints

    deadline = time.time() + 30  # let a running trial write an epoch checkpoint (an event, not a fixed wait)
    while time.time() < deadline and p.poll() is None and not (
            set(_checkpoints(out)) - {r["id"] for r in read_rows(log)}):
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 30  # Ray's processes in the driver's session share its fate: wait until they are gone
    while time.time() < deadline and subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True).stdout:
        time.sleep(0.2)
    before = {r["id"]: r for r in read_rows(log)}
    assert 2 <= len(before) < 6
    partial = {k: v for k, v in _checkpoints(out).items() if k not in before}
    dse.sweep(dse.experiment.load(exp), out, resume=True, progress=False)  # in-process: Ray may already be up
    rows = read_rows(log)
    ids = [x["id"] for x in rows]
    plan = [x["id"] for x in read_rows(out / "plan.jsonl")]
    assert sorted(ids) == sorted(plan) and len(set(ids)) == len(ids) == 6  # every sample exactly once
    for x in rows[:len(before)]:
        assert before[x["id"]] == x  # earlier rows untouched
    retrained = {p.name for p in (out / "ray" / "run-1").iterdir() if p.is_dir()}
    assert not (retrained & set(before))  # no finished sample was trained again
    after = {x["id"]: x for x in rows[len(before):]}
    for sid, ck in partial.items():  # unfinished trials continued from their last epoch checkpoint
        import torch
        epoch = torch.load(Path(ck) / "state.pt", weights_only=True)["epoch"]
        assert after[sid]["resumed_at"] == epoch > 0
    assert all(x["status"] == "ok" for x in rows)


def test_corrupt_and_missing_results(tmp_path):
    with pytest.raises(DseError, match="no such results"):
        load_results(tmp_path / "nope")
    with pytest.raises(DseError, match="no results table"):
        load_results(tmp_path)
    f = tmp_path / "results.jsonl"
    f.write_text('{"id": "a", "error": 1}\nnot json\n{"id": "b"}\n')
    with pytest.raises(DseError, match=r"results.jsonl:2: corrupt line"):
        load_results(tmp_path)
    f.write_text('{"id": "a", "error": 1}\n{"id": "b", "err')  # a write cut short by a crash
    assert list(load_results(tmp_path)["id"]) == ["a"]
    (tmp_path / "x.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(DseError, match="corrupt results file"):
        load_results(tmp_path / "x.parquet")
    f.write_text("")
    with pytest.raises(DseError, match="empty"):
        load_results(f)
