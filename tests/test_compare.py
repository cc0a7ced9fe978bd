"""Verdicts (dse.analysis.compare): bootstrap coverage on synthetic data with a known shift, the wording at small and
large n, the metric's direction, the noise-floor flag, and `dse compare`. Expected numbers come from numpy/scipy or
from the textbook power formula worked by hand, never from the code under test."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from dse.analysis.compare import (COLUMNS, MIN_N, bootstrap_ci, compare, format_verdicts, n_needed, pooled_std,
                                  too_small, verdict_lines)
from dse.analysis.noise import noise
from dse.errors import DseError

Z = 1.959964 + 0.841621  # z_0.975 + z_0.80 from a normal table


def two(a, b, names=("anynetx_a", "anynetx_e"), metric="error"):
    """A results table of two spaces with the given metric values."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return pd.DataFrame({"id": [f"m{i}" for i in range(a.size + b.size)], "status": "ok",
                         "space": [names[0]] * a.size + [names[1]] * b.size, metric: np.r_[a, b]})


def test_bootstrap_interval_covers_a_known_shift():
    """200 repetitions of two normal samples (n = 30, sd 5) whose means differ by 3: the 95% interval covers 3 in
    90-98% of them (the binomial sd of the coverage at 200 repetitions is 1.5 points)."""
    rng = np.random.default_rng(12345)
    cover = 0
    for r in range(200):
        a, b = rng.normal(33, 5, 30), rng.normal(30, 5, 30)
        lo, hi = bootstrap_ci(a, b, n_boot=1000, seed=r)
        cover += lo <= 3 <= hi
    assert 0.90 <= cover / 200 <= 0.98, cover


def test_bootstrap_interval_width_matches_theory_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 5, 400), rng.normal(0, 5, 400)
    lo, hi = bootstrap_ci(a, b, n_boot=4000, seed=1)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)  # the standard error of a difference in means
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert bootstrap_ci(a, b, n_boot=4000, seed=1) == (lo, hi)
    assert bootstrap_ci(a, b, n_boot=4000, seed=2) != (lo, hi)
    with pytest.raises(DseError):
        bootstrap_ci([], b)


def test_power_formula_by_hand():
    # n = 2 (z_0.975 + z_0.8)^2 sd^2 / shift^2: sd 5, shift 2 -> 2 * 7.8489 * 6.25 = 98.1 -> 99 per group
    assert n_needed(5, 2) == 99
    assert n_needed(5, 2) == math.ceil(2 * Z ** 2 * 25 / 4)
    assert math.isnan(n_needed(float("nan"), 2)) and math.isnan(n_needed(5, 0))
    a, b = [1.0, 2.0, 6.0], [3.0, 5.0]
    assert pooled_std(a, b) == pytest.approx(math.sqrt((2 * np.var(a, ddof=1) + np.var(b, ddof=1)) / 3))


def test_columns_statistics_against_numpy_and_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.normal(30, 6, 25), rng.normal(27, 4, 35)
    t = compare(two(a, b))
    assert list(t.columns) == COLUMNS and len(t) == 1
    r = t.iloc[0]
    assert (r.a, r.b, r.n_a, r.n_b) == ("anynetx_a", "anynetx_e", 25, 35)
    assert r.delta_mean == pytest.approx(a.mean() - b.mean())
    for q, col in ((0.1, "d_q10"), (0.25, "d_q25"), (0.5, "d_q50")):
        assert r[col] == pytest.approx(np.quantile(a, q) - np.quantile(b, q))
    k = ks_2samp(a, b)
    assert (r.ks, r.ks_p) == pytest.approx((k.statistic, k.pvalue))
    assert r.ci_low < r.delta_mean < r.ci_high


def test_small_n_says_no_difference_and_too_small():
    a, b = [30.0, 45.0, 20.0, 38.0], [25.0, 41.0, 33.0, 22.0]
    t = compare(two(a, b))
    line = t["verdict"].iloc[0]
    sd = math.sqrt((3 * np.var(a, ddof=1) + 3 * np.var(b, ddof=1)) / 6)
    n = math.ceil(2 * Z ** 2 * sd ** 2 / 2 ** 2)
    assert line.startswith("anynetx_a vs anynetx_e: no difference detected at n = 4/4, too small for conclusions")
    assert line.endswith(f"about {n} per space would detect a 2-point shift; noise floor not measured")
    assert f"mean {np.mean(a) - np.mean(b):+.1f} points" in line
    assert too_small(t)
    lines = format_verdicts(t, noise(two(a, b)))
    assert lines[0].startswith("noise floor: not measured (no noise repeats in this run")
    assert lines[1].startswith("TOO SMALL FOR CONCLUSIONS") and lines[2] == line


def test_small_n_with_separated_groups_is_still_too_small():
    """4 against 4 with no overlap: the interval excludes 0, yet below MIN_N the line does not conclude."""
    t = compare(two([40.0, 41, 42, 43], [10.0, 11, 12, 13]))
    line = t["verdict"].iloc[0]
    assert t["ci_low"].iloc[0] > 0 and "too small for conclusions" in line
    assert "although anynetx_e looks better" in line and " is better than" not in line
    assert MIN_N == 10 and not too_small(compare(two(np.arange(10.0), np.arange(10.0) + 5)))


def test_large_n_names_the_better_group_with_its_numbers():
    rng = np.random.default_rng(7)
    a, b = rng.normal(30, 3, 64), rng.normal(25, 3, 64)
    r = compare(two(a, b)).iloc[0]
    d = b.mean() - a.mean()  # the better group (lower error) minus the other
    assert r.verdict.startswith(f"anynetx_e is better than anynetx_a: mean {d:+.1f} points [{-r.ci_high:+.1f}, "
                                f"{-r.ci_low:+.1f}], KS p = ")
    assert r.verdict.endswith("n = 64/64, noise floor not measured")
    assert not too_small(compare(two(a, b)))


def test_reward_higher_is_better():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0.70, 0.03, 64), rng.normal(0.75, 0.03, 64)
    r = compare(two(a, b, metric="reward"), metric="reward").iloc[0]
    assert r.delta_mean == pytest.approx(a.mean() - b.mean()) and r.delta_mean < 0
    assert r.verdict.startswith(f"anynetx_e is better than anynetx_a: mean {b.mean() - a.mean():+.3g} [")
    # the same values as errors: lower is better, so anynetx_a wins
    assert compare(two(a, b)).iloc[0].verdict.startswith("anynetx_a is better than anynetx_e")


def test_difference_smaller_than_the_noise_floor_is_flagged():
    rng = np.random.default_rng(3)
    a, b = rng.normal(31, 0.5, 50), rng.normal(30, 0.5, 50)  # a clear 1-point difference
    r = compare(two(a, b), noise=2.5).iloc[0]
    assert r.ci_low > 0
    assert r.verdict.startswith("anynetx_e is better than anynetx_a by less than the noise floor")
    assert "median seed std 2.5 points, so it is not a conclusion" in r.verdict
    assert compare(two(a, b), noise=0.5).iloc[0].verdict.endswith("noise floor 0.5 points")


def test_noise_floor_is_measured_from_repeats():
    """Repeats of two models, seed std 2 and 4 (errors 28/30/32 and 36/40/44): the floor is their median, 3."""
    rng = np.random.default_rng(3)
    df = two(rng.normal(31, 0.5, 50), rng.normal(30, 0.5, 50)).assign(repeat=0)
    reps = pd.DataFrame({"id": ["m0", "m0", "m1", "m1"], "space": "anynetx_a", "status": "ok", "repeat": [1, 2, 1, 2]})
    df.loc[df.id == "m0", "error"], df.loc[df.id == "m1", "error"] = 30.0, 40.0
    df = pd.concat([df, reps.assign(error=[28.0, 32.0, 36.0, 44.0])], ignore_index=True)
    line = verdict_lines(df)
    assert line[0].startswith("noise floor: median seed std 3.00 points over 2 models x 3 seeds")
    assert "less than the noise floor" in line[1] and "std 3 points" in line[1]
    assert compare(df).iloc[0]["n_a"] == 50  # repeats are not models


def test_pairs_and_stacked_runs():
    rng = np.random.default_rng(0)
    df = pd.concat([two(rng.normal(30, 5, 12), rng.normal(30, 5, 12)).assign(space="s", run=r) for r in ("r1", "r2")]
                   + [two(rng.normal(30, 5, 12), rng.normal(30, 5, 12), names=("t", "u")).assign(run="r1")],
                   ignore_index=True)
    t = compare(df)
    labels = ["r1/s", "r1/t", "r1/u", "r2/s"]  # once a space spans runs, every label names its run
    assert list(zip(t.a, t.b)) == [(x, y) for i, x in enumerate(labels) for y in labels[i + 1:]]
    assert t.set_index(["a", "b"]).loc[("r1/s", "r2/s"), "n_a"] == 24
    r = compare(df, by="run")
    assert list(zip(r.a, r.b, r.n_a, r.n_b)) == [("r1", "r2", 48, 24)]
    with pytest.raises(DseError, match="--by run needs several runs"):
        compare(two([1.0], [2.0]), by="run")
    assert compare(two([1.0, 2.0], [3.0]).assign(space="s")).empty
    assert verdict_lines(two([1.0, 2.0], [3.0]).assign(space="s"))[-1] == "one space only: nothing to compare"


def test_cli_json_and_text(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "results.jsonl"
    df = two(rng.normal(30, 3, 40), rng.normal(26, 3, 40))
    p.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    code, out, err = run_cli("compare", p, "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert len(rec) == 1 and list(rec[0]) == COLUMNS
    assert set(COLUMNS) >= {"a", "b", "n_a", "n_b", "delta_mean", "ci_low", "ci_high", "ks", "ks_p", "verdict"}
    code, out, err = run_cli("compare", p)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("noise floor: not measured")
    assert lines[1].startswith("anynetx_e is better than anynetx_a: mean -") and "n = 40/40" in lines[1]
    code, out, _ = run_cli("compare", p, "--space", "anynetx_a")
    assert code == 0 and "one space only" in out
    for args, msg in [(("--by", "model"), "--by"), (("--shift", "-1"), "--shift"), (("--metric", "acc"), "acc"),
                      (("--space", "zzz"), "zzz")]:
        code, out, err = run_cli("compare", p, *args)
        assert code == 1 and out == "" and msg in err and err.count("\n") == 1


def test_equal_means_but_different_edfs_are_named():
    # 12 models at 5% and 8 at 60% (mean 27) against 20 models tightly around 27: the means agree, the EDFs do not
    a = [5.0] * 12 + [60.0] * 8
    b = list(27.0 + np.linspace(-2, 2, 20))
    t = compare(two(a, b))
    r = t.iloc[0]
    assert r.ci_low < 0 < r.ci_high and r.ks_p < 0.05
    assert "no difference in the mean detected at n = 20/20" in r.verdict
    assert "the EDFs differ" in r.verdict and "anynetx_a is better at q25 and q50" in r.verdict
    assert f"by {abs(r.d_q25):.1f} and {abs(r.d_q50):.1f} points" in r.verdict
