"""dse refine: candidates on a hand-made sweep; the expected subsets listed by hand, statistics by numpy/scipy."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from dse.analysis.refine import refine, refine_path
from dse.errors import DseError


def stage_cols(p, v):
    return {f"{p}{i + 1}": x for i, x in enumerate(v)}


def anynet(i, err, b, g, w, d, ws, status="ok"):
    return {"id": i, "space": "anynetx_a", "status": status, "error": err, **stage_cols("b", b), **stage_cols("g", g),
            **stage_cols("w", w), **stage_cols("d", d), "ws": ws}


# e_fit of ws by hand: [16, 32, 64, 64] and [64] * 4 are quantized-linear (0); [50, 50] -> 48, 48 (log(50/48));
# [48, 48, 32, 512, 512] (log(1.5) / 5 = 0.081); [1024, 8] and [512, 8, 8, 8] need a decrease that no
# non-decreasing fit follows, so e_fit >= log(128) / 2 and log(64) / 4, both > 1
ROWS = [
    anynet("r0", 10.0, [1, 1, 1, 1], [8, 8, 8, 8], [16, 32, 64, 128], [1, 1, 2, 3], [16, 32, 64, 64]),
    anynet("r1", 20.0, [2, 2, 2, 2], [4, 8, 8, 8], [32, 32, 64, 64], [2, 1, 2, 2], [50, 50]),
    anynet("r2", 30.0, [1, 2, 1, 2], [8, 8, 8, 8], [64, 32, 64, 128], [1, 1, 2, 2], [48, 48, 32, 512, 512]),
    anynet("r3", 40.0, [4, 4, 4, 4], [16, 16, 16, 16], [8, 16, 16, 8], [3, 2, 1, 1], [1024, 8]),
    anynet("r4", 50.0, [1, 1, 1, 1], [2, 4, 8, 16], [16, 16, 16, 16], [1, 1, 1, 1], [64] * 4),
    anynet("r5", 60.0, [2, 4, 2, 4], [8, 8, 8, 8], [128, 64, 32, 16], [4, 3, 2, 1], [512, 8, 8, 8]),
    anynet("r6", 70.0, [1, 1, 1, 1], [8, 8, 8, 8], [8, 16, 32, 64], [1, 1, 1, 1], [24, 56, 152, 152]),
    anynet("r7", None, [1, 1, 1, 1], [8, 8, 8, 8], [8, 16, 32, 64], [1, 1, 1, 1], [8, 16], status="failed"),
    # a RegNet row: no per-stage b/g/w/d columns (w0 is not stage 0), quantized-linear widths
    {"id": "r8", "space": "regnetx", "status": "ok", "error": 35.0, "d": 4, "w0": 16, "wa": 16.0, "wm": 2.0,
     "g": 8, "ws": [16, 32, 64, 64]},
]
ERR = {r["id"]: r["error"] for r in ROWS if r["status"] == "ok"}
WHOLE = np.array(list(ERR.values()))
# read off the table above by hand
EXPECT = {
    "shared b": {"r0", "r1", "r3", "r4", "r6"},
    "shared g": {"r0", "r2", "r3", "r5", "r6"},
    "w_{i+1} >= w_i": {"r0", "r1", "r4", "r6"},
    "d_{i+1} >= d_i": {"r0", "r2", "r4", "r6"},
    "e_fit < 0.05": {"r0", "r1", "r4", "r6", "r8"},
    "e_fit < 0.1": {"r0", "r1", "r2", "r4", "r6", "r8"},
    "e_fit < 0.2": {"r0", "r1", "r2", "r4", "r6", "r8"},
}


@pytest.fixture(scope="module")
def df():
    return pd.DataFrame(ROWS)


def expected_row(ids, whole=WHOLE, asc=True, values=ERR):
    s = np.array([values[i] for i in sorted(ids)])
    top = np.min if asc else np.max
    r = ks_2samp(s, whole)
    return {"n": len(s), "frac": len(s) / len(whole), "mean": s.mean(), "best": top(s),
            "d_mean": s.mean() - whole.mean(), "d_best": top(s) - top(whole), "ks": r.statistic, "p": r.pvalue}


def check(row, exp):
    for k, v in exp.items():
        assert row[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k


def test_candidates_against_numpy_and_scipy(df):
    t = refine(df)
    assert list(t.columns) == ["constraint", "n", "frac", "mean", "best", "d_mean", "d_best", "ks", "p"]
    assert set(t["constraint"]) == set(EXPECT)
    for _, row in t.iterrows():
        check(row, expected_row(EXPECT[row["constraint"]]))
    # ranked by the improvement of the mean: ascending d_mean for an error (ties keep the candidate order)
    d = {k: np.mean([ERR[i] for i in v]) - WHOLE.mean() for k, v in EXPECT.items()}
    assert t["d_mean"].tolist() == sorted(t["d_mean"].tolist())
    assert t["constraint"].iloc[0] == min(d, key=d.get)


def test_hand_numbers_of_one_candidate(df):
    """w non-decreasing keeps r0, r1, r4, r6: mean 37.5 vs 39.375 over the 8 finished rows, min 10 = the whole's."""
    row = refine(df, e_fit=()).set_index("constraint").loc["w_{i+1} >= w_i"]
    assert (row["n"], row["frac"], row["mean"], row["best"]) == (4, 0.5, 37.5, 10.0)
    assert row["d_mean"] == pytest.approx(37.5 - 39.375) and row["d_best"] == 0


def test_path_is_cumulative(df):
    p = refine_path(df)
    assert p["step"].tolist() == list("ABCDE")
    assert p["constraint"].tolist() == ["all", "shared b", "shared g", "w_{i+1} >= w_i", "d_{i+1} >= d_i"]
    keep = set(ERR)
    for step, name in zip("BCDE", ["shared b", "shared g", "w_{i+1} >= w_i", "d_{i+1} >= d_i"]):
        keep &= EXPECT[name]
        check(p.set_index("step").loc[step], expected_row(keep))
    assert p["n"].tolist() == [8, 5, 3, 2, 2]  # B {r0 r1 r3 r4 r6}, C {r0 r3 r6}, D and E {r0 r6}
    check(p.iloc[0], expected_row(set(ERR)))  # A: the whole set (ks 0, p 1)


def test_reward_ranks_higher_first(df):
    rw = df.assign(reward=-df["error"].astype(float))
    t = refine(rw, metric="reward", e_fit=())
    vals = {i: -e for i, e in ERR.items()}
    whole = -WHOLE
    for _, row in t.iterrows():
        check(row, expected_row(EXPECT[row["constraint"]], whole, asc=False, values=vals))
    assert t["d_mean"].tolist() == sorted(t["d_mean"].tolist(), reverse=True)
    assert t.set_index("constraint").loc["shared b", "best"] == -10  # the max reward


def test_user_predicates_and_thresholds(df):
    t = refine(df, e_fit=[0.5], predicates={"w1 >= 32": lambda r: r.get("w1", 0) >= 32}).set_index("constraint")
    assert "e_fit < 0.05" not in t.index
    check(t.loc["w1 >= 32"], expected_row({"r1", "r2", "r5"}))  # r8's w1 is NaN: not >= 32
    check(t.loc["e_fit < 0.5"], expected_row(EXPECT["e_fit < 0.1"]))
    with pytest.raises(DseError, match="predicate 'bad' failed on row 'r0': KeyError"):
        refine(df, e_fit=(), predicates={"bad": lambda r: r["nope"]})
    with pytest.raises(DseError, match="built-in"):
        refine(df, e_fit=(), predicates={"shared b": lambda r: True})
    with pytest.raises(DseError, match="positive numbers"):
        refine(df, e_fit=[0])


def test_candidates_that_do_not_apply(df):
    """Only RegNet rows: no per-stage columns, so the built-ins keep no row (n = 0, NaN), ranked last."""
    t = refine(df[df["space"] == "regnetx"], e_fit=[0.01])
    na = t[t["constraint"] != "e_fit < 0.01"]
    assert (na["n"] == 0).all() and na[["mean", "best", "d_mean", "ks", "p"]].isna().all().all()
    assert t["constraint"].iloc[0] == "e_fit < 0.01" and t["n"].iloc[0] == 1
    p = refine_path(df[df["space"] == "regnetx"])
    assert p["n"].tolist() == [1, 0, 0, 0, 0]


def test_errors(df):
    with pytest.raises(DseError, match="no finished rows"):
        refine(df[df["status"] == "failed"])
    with pytest.raises(DseError, match="unknown column 'acc'"):
        refine(df, metric="acc")


def test_cli(run_cli, tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    code, out, err = run_cli("refine", p, "--json", "--e-fit", "0.05")
    assert code == 0, err
    rec = json.loads(out)
    assert list(rec) == ["candidates", "path"]
    assert {r["constraint"] for r in rec["candidates"]} == set(EXPECT) - {"e_fit < 0.1", "e_fit < 0.2"}
    assert [r["n"] for r in rec["path"]] == [8, 5, 3, 2, 2]
    code, out, _ = run_cli("refine", p, "--space", "anynetx_a")
    assert code == 0 and "cumulative path" in out and out.count("shared g") == 2
    for args, msg in [(("--e-fit", "0.1,x"), "--e-fit"), (("--space", "zzz"), "'zzz' is not in the results"),
                      (("--metric", "acc"), "unknown column")]:
        code, out, err = run_cli("refine", p, *args)
        assert code == 1 and out == "" and msg in err and err.count("\n") == 1


def test_nan_stats_are_json_null(run_cli, tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(ROWS[-1]) + "\n")
    code, out, _ = run_cli("refine", p, "--json")
    rec = json.loads(out)
    assert code == 0 and rec["path"][1]["mean"] is None and not math.isnan(rec["path"][0]["mean"])
