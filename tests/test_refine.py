"""dse refine: candidates on a hand-made sweep; the expected subsets listed by hand, statistics by numpy/scipy.

Refine works per space: anynetx_a's whole set is its own 7 finished rows (r0..r6), never pooled with regnetx's r8."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from dse.analysis.refine import path_notes, refine, refine_path
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
ERR = {r["id"]: r["error"] for r in ROWS if r["status"] == "ok" and r["space"] == "anynetx_a"}
WHOLE = np.array(list(ERR.values()))
# read off the table above by hand (anynetx_a rows; r8 is regnetx's only row, with e_fit 0)
EXPECT = {
    "shared b": {"r0", "r1", "r3", "r4", "r6"},
    "shared g": {"r0", "r2", "r3", "r5", "r6"},
    "w_{i+1} >= w_i": {"r0", "r1", "r4", "r6"},
    "d_{i+1} >= d_i": {"r0", "r2", "r4", "r6"},
    "e_fit < 0.05": {"r0", "r1", "r4", "r6"},
    "e_fit < 0.1": {"r0", "r1", "r2", "r4", "r6"},
    "e_fit < 0.2": {"r0", "r1", "r2", "r4", "r6"},
}
REGNET = {"e_fit < 0.05", "e_fit < 0.1", "e_fit < 0.2"}  # b, g, w, d stages do not apply to a RegNet space


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
    assert list(t.columns) == ["space", "constraint", "n", "frac", "mean", "best", "d_mean", "d_best", "ks", "p",
                               "note"]
    a, r = t[t.space == "anynetx_a"], t[t.space == "regnetx"]
    assert t["space"].tolist() == ["anynetx_a"] * len(a) + ["regnetx"] * len(r)  # spaces in order, not mixed
    assert set(a["constraint"]) == set(EXPECT) and set(r["constraint"]) == REGNET
    for _, row in a.iterrows():
        check(row, expected_row(EXPECT[row["constraint"]]))
    for _, row in r.iterrows():  # regnetx's whole set is r8 alone: the subset is the set
        check(row, {"n": 1, "frac": 1.0, "mean": 35.0, "best": 35.0, "d_mean": 0.0, "d_best": 0.0})
    # ranked within a space by the improvement of the mean: ascending d_mean for an error (ties keep the order)
    d = {k: np.mean([ERR[i] for i in v]) - WHOLE.mean() for k, v in EXPECT.items()}
    assert a["d_mean"].tolist() == sorted(a["d_mean"].tolist())
    assert a["constraint"].iloc[0] == min(d, key=d.get)


def test_spaces_are_not_pooled(df):
    """Pooling r8 (35%) into anynetx_a's whole set would move its mean from 40 to 39.375: it must not."""
    row = refine(df, e_fit=()).set_index(["space", "constraint"]).loc[("anynetx_a", "shared b")]
    assert row["d_mean"] == pytest.approx(38.0 - 40.0)
    pooled = refine(df, e_fit=(), by=None).set_index("constraint").loc["shared b"]
    assert pooled["d_mean"] == pytest.approx(38.0 - 39.375)  # only when asked for explicitly


def test_hand_numbers_of_one_candidate(df):
    """w non-decreasing keeps r0, r1, r4, r6: mean 37.5 vs 40 over anynetx_a's 7 finished rows, min 10 = the whole's."""
    row = refine(df, e_fit=()).set_index("constraint").loc["w_{i+1} >= w_i"]
    assert (row["n"], row["frac"], row["mean"], row["best"]) == (4, 4 / 7, 37.5, 10.0)
    assert row["d_mean"] == pytest.approx(37.5 - 40.0) and row["d_best"] == 0


def test_path_is_cumulative(df):
    p = refine_path(df, min_n=2)
    assert p["space"].unique().tolist() == ["anynetx_a"]  # regnetx has no A -> E path
    assert p["step"].tolist() == list("ABCDE")
    assert p["constraint"].tolist() == ["all", "shared b", "shared g", "w_{i+1} >= w_i", "d_{i+1} >= d_i"]
    keep = set(ERR)
    for step, name in zip("BCDE", ["shared b", "shared g", "w_{i+1} >= w_i", "d_{i+1} >= d_i"]):
        keep &= EXPECT[name]
        check(p.set_index("step").loc[step], expected_row(keep))
    assert p["n"].tolist() == [7, 5, 3, 2, 2]  # B {r0 r1 r3 r4 r6}, C {r0 r3 r6}, D and E {r0 r6}
    check(p.iloc[0], expected_row(set(ERR)))  # A: the whole set (ks 0, p 1)
    assert (p["note"] == "").all() and path_notes(p) == []


def test_path_stops_below_min_n(df):
    p = refine_path(df, min_n=3)  # D keeps 2 rows: stop after C, no NaN rows
    assert p["step"].tolist() == list("ABC") and p["n"].tolist() == [7, 5, 3]
    assert p["mean"].notna().all()
    assert path_notes(p) == ["anynetx_a: stops before D (w_{i+1} >= w_i): sample anynetx_d itself: filtering leaves "
                             "2 of 7 (fewer than 3)"]
    p = refine_path(df)  # the default minimum, 10: only A, and the note names B
    assert p["step"].tolist() == ["A"] and "sample anynetx_b itself: filtering leaves 5 of 7" in p["note"].iloc[0]


def test_path_on_an_anynetx_a_like_sample_stops_at_shared_g():
    """500 random AnyNetX_A-like rows: counts of each cumulative step computed with plain numpy, independently."""
    rng = np.random.default_rng(0)
    n = 500
    b = rng.choice([1, 2, 4], (n, 4))
    g = 2 ** rng.integers(0, 6, (n, 4))
    w = 8 * rng.integers(1, 128, (n, 4))
    d = rng.integers(1, 17, (n, 4))
    df = pd.DataFrame({"id": [f"m{i}" for i in range(n)], "space": "anynetx_a", "status": "ok",
                       "error": rng.uniform(10, 90, n), **{f"{p}{i + 1}": v[:, i] for p, v in zip("bgwd", (b, g, w, d))
                                                            for i in range(4)}})
    keep_b = (b == b[:, :1]).all(axis=1)
    keep_c = keep_b & (g == g[:, :1]).all(axis=1)
    assert keep_b.sum() >= 10 > keep_c.sum()  # 1/27 of 500 is about 19; 1/27 * 1/216 of 500 about 0
    p = refine_path(df)
    assert p["step"].tolist() == ["A", "B"] and p["n"].tolist() == [n, keep_b.sum()]
    assert path_notes(p) == [f"anynetx_a: stops before C (shared g): sample anynetx_c itself: filtering leaves "
                             f"{keep_c.sum()} of {n} (fewer than 10)"]


def test_same_space_in_two_runs_is_refined_apart(df):
    two = pd.concat([df.assign(run="r1"), df.assign(run="r2", error=df["error"] * 2)], ignore_index=True)
    t = refine(two, e_fit=())
    assert t["space"].unique().tolist() == ["r1/anynetx_a", "r2/anynetx_a"]  # regnetx: nothing applies
    row = t.set_index(["space", "constraint"]).loc[("r2/anynetx_a", "shared b")]
    assert row["mean"] == pytest.approx(2 * 38.0) and row["n"] == 5


def test_reward_ranks_higher_first(df):
    rw = df.assign(reward=-df["error"].astype(float))
    t = refine(rw, metric="reward", e_fit=())
    assert set(t["space"]) == {"anynetx_a"}  # regnetx: no candidate applies without e_fit
    vals = {i: -e for i, e in ERR.items()}
    whole = -WHOLE
    for _, row in t.iterrows():
        check(row, expected_row(EXPECT[row["constraint"]], whole, asc=False, values=vals))
    assert t["d_mean"].tolist() == sorted(t["d_mean"].tolist(), reverse=True)
    assert t.set_index("constraint").loc["shared b", "best"] == -10  # the max reward


def test_user_predicates_and_thresholds(df):
    t = refine(df, e_fit=[0.5], predicates={"w1 >= 32": lambda r: r.get("w1", 0) >= 32})
    a = t[t.space == "anynetx_a"].set_index("constraint")
    assert "e_fit < 0.05" not in a.index
    check(a.loc["w1 >= 32"], expected_row({"r1", "r2", "r5"}))
    check(a.loc["e_fit < 0.5"], expected_row(EXPECT["e_fit < 0.1"]))
    r = t[t.space == "regnetx"].set_index("constraint")
    assert r.loc["w1 >= 32", "n"] == 0 and np.isnan(r.loc["w1 >= 32", "mean"])  # r8's w1 is NaN: not >= 32
    with pytest.raises(DseError, match="predicate 'bad' failed on row 'r0': KeyError"):
        refine(df, e_fit=(), predicates={"bad": lambda r: r["nope"]})
    with pytest.raises(DseError, match="built-in"):
        refine(df, e_fit=(), predicates={"shared b": lambda r: True})
    with pytest.raises(DseError, match="positive numbers"):
        refine(df, e_fit=[0])


def test_candidates_that_do_not_apply(df):
    """Only RegNet rows: the per-stage candidates are left out, e_fit applies; there is no A -> E path."""
    t = refine(df[df["space"] == "regnetx"], e_fit=[0.01])
    assert t["constraint"].tolist() == ["e_fit < 0.01"] and t["n"].tolist() == [1]
    assert refine(df[df["space"] == "regnetx"], e_fit=()).empty
    with pytest.raises(DseError, match="no AnyNet space"):
        refine_path(df[df["space"] == "regnetx"])
    keep_none = refine(df[df["id"].isin(["r2", "r5"])], e_fit=()).set_index("constraint")
    assert keep_none.loc["shared b", "n"] == 0 and keep_none[["mean", "ks", "p"]].loc["shared b"].isna().all()


def test_errors(df):
    with pytest.raises(DseError, match="no finished rows"):
        refine(df[df["status"] == "failed"])
    with pytest.raises(DseError, match="unknown column 'acc'"):
        refine(df, metric="acc")
    with pytest.raises(DseError, match="min_n"):
        refine_path(df, min_n=0)


def test_repeats_are_not_models(df):
    """A noise repeat (repeat 1) of r0 with another error is not one more model in the whole set."""
    rep = pd.concat([df.assign(repeat=0), df[df.id == "r0"].assign(repeat=1, error=99.0)], ignore_index=True)
    pd.testing.assert_frame_equal(refine(rep), refine(df))


def test_cli(run_cli, tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    code, out, err = run_cli("refine", p, "--json", "--e-fit", "0.05", "--min-n", "2")
    assert code == 0, err
    rec = json.loads(out)
    assert list(rec) == ["candidates", "path"]
    got = {(r["space"], r["constraint"]) for r in rec["candidates"]}
    want = {("anynetx_a", c) for c in set(EXPECT) - {"e_fit < 0.1", "e_fit < 0.2"}} | {("regnetx", "e_fit < 0.05")}
    assert got == want
    assert [r["n"] for r in rec["path"]] == [7, 5, 3, 2, 2]
    code, out, _ = run_cli("refine", p, "--space", "anynetx_a")
    assert code == 0 and "cumulative path" in out and out.count("shared g") == 1  # the path stops before B
    assert "anynetx_a: stops before B (shared b): sample anynetx_b itself: filtering leaves 5 of 7" in out
    assert "NaN" not in out
    code, out, _ = run_cli("refine", p, "--space", "regnetx")
    assert code == 0 and "no AnyNet space" in out
    for args, msg in [(("--e-fit", "0.1,x"), "--e-fit"), (("--space", "zzz"), "'zzz' is not in the results"),
                      (("--metric", "acc"), "unknown column"), (("--min-n", "0"), "--min-n")]:
        code, out, err = run_cli("refine", p, *args)
        assert code == 1 and out == "" and msg in err and err.count("\n") == 1


def test_nan_stats_are_json_null(run_cli, tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in (ROWS[2], ROWS[5])))  # no shared b: the candidate keeps none
    code, out, _ = run_cli("refine", p, "--json", "--e-fit", "0.05")
    rec = {r["constraint"]: r for r in json.loads(out)["candidates"]}
    assert code == 0 and rec["shared b"]["mean"] is None and not math.isnan(rec["shared g"]["mean"])
