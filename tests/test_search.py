"""`dse search`: the space in Optuna's terms, band refusals before training, every searcher/scheduler pair end to
end on a tiny budget, interrupt and resume."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import dse
from dse.errors import DseError
from dse.results import read_rows
from dse.run.search import from_optuna, grace, judge, to_optuna
from test_live import events  # a TensorBoard event-file reader independent of dse

ROOT = Path(__file__).resolve().parents[1]
SPACES = ["anynetx_a", "anynetx_c", "anynetx_e", "regnetx", "regnety", "efficientnetv2"]


def random_points(space, k, seed=0):
    """k points drawn from the Optuna distributions themselves (independent of TPE)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        p = {}
        for name, d in to_optuna(space).items():
            if isinstance(d, CategoricalDistribution):
                p[name] = d.choices[rng.integers(len(d.choices))]
            elif isinstance(d, FloatDistribution):
                p[name] = float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))) if d.log
                                else rng.uniform(d.low, d.high))
            else:
                p[name] = int(rng.integers(d.low, d.high + 1))
        out.append(p)
    return out


@pytest.mark.parametrize("name", SPACES)
def test_optuna_points_decode_to_the_space_s_own_values(name):
    sp = dse.load(name)
    declared = {p.name: p for p in sp.params}
    for params in random_points(sp, 30):
        vals = from_optuna(sp, params)
        cfg = sp.make(vals)  # on the space's grid (make refuses w0 = 25 in regnetx)
        for k, v in vals.items():
            p = declared[k]
            for x in (v if isinstance(v, list) else [v]):
                if p.kind == "choice":
                    assert x in p.values
                else:
                    assert p.low <= x <= p.high, (k, x)
        for kind, pname in sp.constraints:
            v = vals[pname]
            if kind == "shared":
                assert len(set(v)) == 1
            if kind == "nondecreasing":
                assert v == sorted(v)
        assert cfg.id


def test_encodings_by_hand():
    sp = dse.load("anynetx_a")
    d = to_optuna(sp)
    assert (d["w1"].low, d["w1"].high, d["w1"].log) == (1, 128, True)  # w in 8..1024 by 8, log-uniform: w/8
    assert (d["g1"].low, d["g1"].high) == (0, 5)  # g in 1..32, powers of two: the exponent
    assert list(d["b1"].choices) == [1, 2, 4]
    p = {**{f"w{i}": k for i, k in zip(range(1, 5), (3, 1, 128, 2))}, **{f"d{i}": 2 for i in range(1, 5)},
         **{f"b{i}": 1 for i in range(1, 5)}, **{f"g{i}": 3 for i in range(1, 5)}}
    assert from_optuna(sp, p)["w"] == [24, 8, 1024, 16] and from_optuna(sp, p)["g"] == [8] * 4
    assert from_optuna(dse.load("anynetx_d"), {**p, "b": 1, "g": 3})["w"] == [8, 16, 24, 1024]  # sorted: D's rule


def test_judge_refuses_outside_the_band():
    sp = dse.load("anynetx_a")
    pts = random_points(sp, 200, seed=1)
    band = {"flops": (360e6, 400e6)}
    got = [judge(sp, band, p) for p in pts]
    inside = [s for s, d in got if s is not None]
    assert all(360e6 <= s.cx.flops <= 400e6 and d == 0 for (s, d) in got if s is not None)
    assert all(d > 0 for s, d in got if s is None)
    assert len(inside) < len(pts)  # most random points miss a 10% band: refusals are needed
    far = [d for s, d in got if s is None]
    assert min(far) > 0 and math.isfinite(min(far))


def test_asha_grace_default():
    s = dse.experiment.Search()
    assert grace(s, 10) == 3 and grace(s, 4) == 1 and grace(s, 1) == 1
    assert grace(dse.experiment.Search(grace=5), 10) == 5 and grace(dse.experiment.Search(grace=50), 10) == 10


def test_search_needs_one_space_and_a_band(tmp_path):
    e = dse.experiment.parse({"name": "s", "spaces": ["anynetx_a", "anynetx_e"], "flops": "-40M", "search": {}})
    with pytest.raises(DseError, match="one space"):
        dse.search.search(e, tmp_path / "run", progress=False)
    e = dse.experiment.parse({"name": "s", "spaces": ["anynetx_a"], "search": {}})
    with pytest.raises(DseError, match="band"):
        dse.search.search(e, tmp_path / "run", progress=False)
    with pytest.raises(DseError, match="search.budget"):
        dse.experiment.parse({"name": "s", "spaces": ["anynetx_a"], "search": {"budget": "soon"}})
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- end to end (Ray)

def write_exp(tmp, budget=4, **search):
    d = {"name": "srch", "spaces": ["anynetx_a"], "flops": "10-40M", "seed": 0,
         "data": {"name": "digits", "res": 8}, "train": {"epochs": 3, "batch_size": 256, "lr": 0.1, "warmup": 0},
         "search": {"budget": budget, **search}}
    p = tmp / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


@pytest.mark.slow
def test_every_searcher_and_scheduler_end_to_end(tmp_path):
    for searcher in ("random", "tpe"):
        for scheduler in ("asha", "none"):
            exp = dse.experiment.load(write_exp(tmp_path, 2, searcher=searcher, scheduler=scheduler))
            out = tmp_path / f"{searcher}_{scheduler}"
            df = dse.load_results(dse.search.search(exp, out, progress=False))
            assert len(df) == 2 and df["key"].is_unique, (searcher, scheduler)
            assert df["flops"].between(10e6, 40e6).all()  # every trained row inside the band
            assert (df["searcher"] == searcher).all() and (df["scheduler"] == scheduler).all()
            trained = {p.name for p in (out / "ray").glob("run-*/*") if p.is_dir()}
            assert trained == set(df["id"])  # a Ray trial exists for exactly the rows: nothing else trained
            if scheduler == "none":
                assert (df["status"] == "ok").all() and (df["epochs"] == 3).all()
            else:
                assert set(df["status"]) <= {"ok", "stopped"}
                st = df[df["status"] == "stopped"]
                assert (st["epochs"] < 3).all() and st["stopped_early"].all()
            # live curves: one line per epoch each trial reported (ASHA-stopped ones up to their last epoch), the
            # same numbers as the row; TensorBoard event files hold them too
            lines = [json.loads(x) for x in (out / "curves.jsonl").read_text().splitlines()]
            for r in df.to_dict("records"):
                mine = sorted((x for x in lines if x["key"] == r["key"]), key=lambda x: x["epoch"])
                assert [x["epoch"] for x in mine] == list(range(1, r["epochs"] + 1))
                assert [x["val_error"] for x in mine] == r["errors"]
                tb = [e for f in (out / "tb" / r["key"]).iterdir() for e in events(f) if e[0] == "val_error"]
                assert sorted(e[1:] for e in tb) == [(k + 1, pytest.approx(v)) for k, v in enumerate(r["errors"])]
            assert len(lines) == df["epochs"].sum()
            if searcher == "random":  # exactly dse sample's draws
                assert list(df.sort_values("id")["id"]) == sorted(
                    s.id for s in dse.sample("anynetx_a", 2, flops=(10e6, 40e6), seed=0))
            else:
                refused = [json.loads(x) for x in (out / "refused.jsonl").read_text().splitlines()]
                sp = dse.load("anynetx_a")
                for r in refused:  # refused points are out of the band and never became a trial
                    s, d = judge(sp, {"flops": (10e6, 40e6)}, r["params"])
                    assert s is None and d > 0
                assert all(r["suggested"] for r in df.to_dict("records"))


@pytest.mark.slow
def test_search_interrupt_then_resume(tmp_path, run_cli):
    exp = write_exp(tmp_path, 5, searcher="tpe", scheduler="none")
    out = tmp_path / "run"
    env = {**os.environ, "CI": "true", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dse", "search", str(exp), "--out", str(out)]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and p.poll() is None:
        if (out / "results.jsonl").exists() and read_rows(out / "results.jsonl"):
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "dse search" in err and "--resume" in err, err
    n = len(read_rows(out / "results.jsonl"))
    assert 1 <= n < 5
    code, so, err = run_cli("search", exp, "--out", out, "--resume")  # in-process: Ray may already be up
    assert code == 0, err
    rows = read_rows(out / "results.jsonl")
    assert len(rows) == 5 and len({x["key"] for x in rows}) == 5
    assert "best:" in so


def test_search_curves_by_hand():
    import pandas as pd

    from dse.analysis.plots import search_curves

    df = pd.DataFrame({"id": list("abcd"), "searcher": "tpe", "scheduler": "asha", "repeat": 0,
                       "status": ["stopped", "ok", "ok", "stopped"], "error": [90.0, 50.0, 60.0, 10.0],
                       "epochs": [1, 10, 10, 3], "wall": [1.0, 9.0, 8.0, 2.0]})
    c = search_curves(df)
    assert c["epochs"].tolist() == [1, 11, 21, 24] and c["seconds"].tolist() == [1.0, 10.0, 18.0, 20.0]
    # a stopped trial's 10% is not a completed model: the best stays 50
    assert c["best"].isna().tolist() == [True, False, False, False] and c["best"].tolist()[1:] == [50.0, 50.0, 50.0]
