"""The noise floor (dse.analysis.noise) on a hand-made table: stds, IQRs and ratios worked out by hand."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from dse.analysis.noise import NO_REPEATS, noise, per_model
from dse.analysis.table import finished, seed_rows

# space s: model a (errors 10, 12, 14 over three seeds: std 2), model b (20, 21: std sqrt(0.5)), model c (30, one
# seed; its repeat failed); space t: model d (40, 50: std sqrt(50)) and model e (60, not repeated)
ROWS = [
    ("a", "s", 0, 10.0, "ok"), ("a", "s", 1, 12.0, "ok"), ("a", "s", 2, 14.0, "ok"),
    ("b", "s", 0, 20.0, "ok"), ("b", "s", 1, 21.0, "ok"),
    ("c", "s", 0, 30.0, "ok"), ("c", "s", 1, None, "failed"),
    ("d", "t", 0, 40.0, "ok"), ("d", "t", 1, 50.0, "ok"),
    ("e", "t", 0, 60.0, "ok"),
]


def table():
    return pd.DataFrame(ROWS, columns=["id", "space", "repeat", "error", "status"]).assign(
        key=lambda d: d["id"] + ":" + d["repeat"].astype(str))


def test_per_model_by_hand():
    pm = per_model(table())
    assert pm["id"].tolist() == ["a", "b", "d"]  # c has one finished seed, e none repeated
    assert pm["seeds"].tolist() == [3, 2, 2]
    np.testing.assert_allclose(pm["std"], [2.0, math.sqrt(0.5), math.sqrt(50)])
    np.testing.assert_allclose(pm["mean"], [12.0, 20.5, 45.0])
    np.testing.assert_allclose(pm["primary"], [10.0, 20.0, 40.0])


def test_noise_spread_ratio_by_hand():
    nz = noise(table())
    # noise: median of 2, 0.7071, 7.0711 = 2; spread: primaries 10, 20, 30, 40, 60 -> q25 20, q75 40 (linear), IQR 20
    assert nz.noise == pytest.approx(2.0)
    assert nz.spread == pytest.approx(20.0)
    assert nz.ratio == pytest.approx(0.1)
    assert (nz.n_models, nz.seeds_min, nz.seeds_max, nz.seeds()) == (3, 2, 3, "2-3")
    s, t = nz.by_space
    # s: noise median(2, 0.7071) = 1.3536; primaries 10, 20, 30: IQR 25 - 15 = 10
    assert (s["space"], s["n"], s["n_repeated"]) == ("s", 3, 2)
    assert s["noise"] == pytest.approx((2 + math.sqrt(0.5)) / 2) and s["spread"] == pytest.approx(10.0)
    assert s["ratio"] == pytest.approx((2 + math.sqrt(0.5)) / 20)
    # t: noise sqrt(50); primaries 40, 60: IQR 55 - 45 = 10
    assert (t["n"], t["n_repeated"]) == (2, 1)
    assert t["noise"] == pytest.approx(math.sqrt(50)) and t["spread"] == pytest.approx(10.0)
    assert nz.line() == ("noise floor: median seed std 2.00 points over 3 models x 2-3 seeds; spread of models (IQR) "
                         "20.00 points; ratio 0.10")


def test_primary_and_repeat_accessors():
    df = table()
    assert finished(df)["id"].tolist() == ["a", "b", "c", "d", "e"]  # one row per model
    assert len(seed_rows(df)) == 9  # every finished seed
    assert finished(df.drop(columns="repeat"))["id"].tolist() == ["a"] * 3 + ["b"] * 2 + ["c", "d", "d", "e"]


def test_no_repeats_says_how_to_measure():
    df = table()
    nz = noise(df[df["repeat"] == 0].drop(columns="repeat"))
    assert not nz.measured and nz.n_models == 0 and math.isnan(nz.noise) and math.isnan(nz.ratio)
    assert nz.spread == pytest.approx(20.0)
    assert nz.line() == f"noise floor: not measured ({NO_REPEATS})"
    assert "add `noise: {models: 8, seeds: 3}` to the experiment" in NO_REPEATS
    assert nz.to_dict()["note"] == NO_REPEATS and nz.to_dict()["noise"] is None


def test_runs_keep_their_models_apart():
    """The same id in two runs (two recipes) is two models: its seeds are not pooled across runs."""
    df = pd.concat([table().assign(run="r1"), table().assign(run="r2", error=lambda d: d["error"] * 2)],
                   ignore_index=True)
    pm = per_model(df)
    assert list(pm.columns[:3]) == ["run", "space", "id"] and len(pm) == 6
    np.testing.assert_allclose(pm.set_index(["run", "id"]).loc[("r2", "a"), "std"], 4.0)


def test_cli(run_cli, tmp_path):
    p = tmp_path / "results.jsonl"
    p.write_text("".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n"
                         for r in table().to_dict("records")))
    code, out, err = run_cli("noise", p, "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["noise"] == pytest.approx(2.0) and rec["spread"] == pytest.approx(20.0) and rec["n_models"] == 3
    assert [m["id"] for m in rec["models"]] == ["a", "b", "d"] and rec["note"] is None
    code, out, _ = run_cli("noise", p)
    assert code == 0 and out.startswith("noise floor: median seed std 2.00 points")
    q = tmp_path / "plain.jsonl"
    q.write_text("".join(json.dumps({"id": i, "space": "s", "error": e}) + "\n" for i, e in (("a", 1.0), ("b", 2.0))))
    code, out, _ = run_cli("noise", q)
    assert code == 0 and out.startswith(f"noise floor: not measured ({NO_REPEATS})")
    code, out, err = run_cli("noise", tmp_path / "missing")
    assert code == 1 and out == "" and err.startswith("dse: error:")
