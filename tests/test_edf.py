"""EDFs, complexity-normalised weights, bootstrap bands, KS and summaries against hand-derived values."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from dse.analysis.edf import common_range, edf, edf_band, edfs, ks, normalized_weights, summary
from dse.errors import DseError


def table():
    """Two spaces; A has one failed row (status) and one NaN error, B has none."""
    return pd.DataFrame({
        "space": ["A"] * 6 + ["B"] * 3,
        "error": [1.0, 2.0, 3.0, 4.0, 9.0, np.nan, 2.0, 4.0, 6.0],
        "status": ["ok", "ok", "ok", "ok", "failed", "ok", "ok", "ok", "ok"],
        "flops": [10.0, 10.0, 10.0, 1000.0, 10.0, 10.0, 10.0, 100.0, 1000.0],
        "params": 1.0,
    })


def test_edf_strict_inequality_by_hand():
    g, f = edf([1, 2, 3], [0.5, 1.0, 2.0, 2.5, 3.0, 3.5])
    np.testing.assert_allclose(f, [0, 0, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(g, [0.5, 1.0, 2.0, 2.5, 3.0, 3.5])


def test_edf_default_grid_is_unique_errors_plus_margin():
    g, f = edf([3, 1, 2, 2])
    np.testing.assert_allclose(g, [1, 2, 3, 3.02])
    np.testing.assert_allclose(f, [0, 0.25, 0.75, 1])


def test_edf_weights_are_normalised_and_nan_dropped():
    _, f = edf([1, 2, 3], [2.5], weights=[1, 1, 2])
    assert f[0] == pytest.approx(0.5)
    _, f = edf([1, np.nan, 3], [2.0, 4.0], weights=[5, 100, 5])
    np.testing.assert_allclose(f, [0.5, 1.0])


@pytest.mark.parametrize("errors,weights", [([], None), ([np.nan, np.nan], None), ([1, 2], [1]),
                                            ([1, 2], [1, -1]), ([1, 2], [0, 0]), ([[1, 2]], None)])
def test_edf_bad_input_raises(errors, weights):
    with pytest.raises(DseError) as e:
        edf(errors, weights=weights)
    assert "\n" not in str(e.value)


def test_normalized_weights_make_skewed_complexity_uniform():
    c = np.r_[np.full(8, 10.0), np.full(2, 1000.0)]
    w = normalized_weights(None, c, bins=2)
    np.testing.assert_allclose(w, [1 / 16] * 8 + [1 / 4] * 2)
    assert w.sum() == pytest.approx(1)
    # weighted mass per log bin is uniform
    np.testing.assert_allclose(np.bincount((np.log10(c) > 2).astype(int), weights=w), [0.5, 0.5])


def test_normalized_weights_bin_on_log_scale():
    # log10 edges 0, 1, 2: 1 -> bin 0, 10 and 100 -> bin 1 (linear bins would put 1 and 10 together)
    np.testing.assert_allclose(normalized_weights(None, [1, 10, 100], bins=2), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(normalized_weights(None, [1, 10, 100], bins=2, log=False), [0.25, 0.25, 0.5])


def test_normalized_weights_range_failed_rows_and_empty_bins():
    w = normalized_weights([1, 2, np.nan, 4, 5], [1, 10, 10, 100, 1e4], bins=4, range=(5, 200))
    # in range: 10 (finished) and 100; the NaN-error row and the out-of-range rows get 0
    np.testing.assert_allclose(w, [0, 0.5, 0, 0.5, 0])
    with pytest.raises(DseError):
        normalized_weights(None, [1, 2], range=(5, 6))
    with pytest.raises(DseError):
        normalized_weights(None, [0, 2])


def test_edfs_group_outside_common_range_is_named():
    df = pd.DataFrame({"space": ["A", "A", "B", "B"], "error": [1.0, 2.0, 3.0, 4.0], "flops": [1, 100, 10, 20]})
    with pytest.raises(DseError, match="space 'A': no finished models"):
        edfs(df, normalized="flops")


def test_common_range_is_the_intersection():
    assert common_range({"A": [1, 5, 10], "B": [3, np.nan, 20]}) == (3, 10)
    assert common_range([[1, 2], [2, 3]]) == (2, 2)
    with pytest.raises(DseError):
        common_range([[1, 2], [3, 4]])


def test_edf_band_contains_edf_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = rng.normal(40, 2, 60)
    g, f = edf(x)
    lo, hi = edf_band(x, g, n_boot=2000, seed=3)
    assert np.all(lo <= f + 1e-12) and np.all(f <= hi + 1e-12)
    assert lo[0] == hi[0] == 0 and lo[-1] == hi[-1] == 1
    lo2, hi2 = edf_band(x, g, n_boot=2000, seed=3)
    np.testing.assert_array_equal(lo, lo2)
    np.testing.assert_array_equal(hi, hi2)
    assert not np.array_equal(hi, edf_band(x, g, n_boot=2000, seed=4)[1])


def test_edf_band_narrows_with_n():
    rng = np.random.default_rng(0)
    g = np.linspace(35, 45, 101)
    widths = [np.mean(np.subtract(*edf_band(rng.normal(40, 2, n), g, n_boot=500)[::-1])) for n in (25, 400)]
    assert widths[1] < 0.5 * widths[0]  # band width ~ 1/sqrt(n): a 16x larger sample is about 4x narrower


def test_edf_band_width_matches_binomial_theory():
    x = np.arange(400.0)
    lo, hi = edf_band(x, [200.0], n_boot=4000)  # F = 1/2: bootstrap sd sqrt(F (1 - F) / n) = 0.025
    assert hi[0] - lo[0] == pytest.approx(2 * 1.96 * 0.025, rel=0.15)


def test_edf_band_weighted_matches_weighted_edf():
    x, w = np.arange(10.0), np.r_[np.zeros(5), np.ones(5)]
    g = np.array([4.5, 7.5])
    _, f = edf(x, g, w)
    lo, hi = edf_band(x, g, w, n_boot=500)
    np.testing.assert_allclose(f, [0, 0.6])
    assert lo[0] == hi[0] == 0 and lo[1] <= 0.6 <= hi[1]


def test_ks_identical_and_disjoint():
    a = np.array([1.0, 2.0, 3.0, np.nan])
    assert ks(a, a) == (0.0, 1.0)
    s, p = ks([1, 2, 3, 4, 5], [11, 12, 13, 14, 15])
    assert s == 1.0 and p == pytest.approx(ks_2samp([1, 2, 3, 4, 5], [11, 12, 13, 14, 15]).pvalue) and p < 0.01
    with pytest.raises(DseError):
        ks([np.nan], [1.0])


def test_summary_by_hand():
    s = summary(table())
    assert list(s.columns) == ["n", "n_failed", "min", "mean", "q05", "q25", "q50", "q75", "max"]
    a, b = s.loc["A"], s.loc["B"]
    assert (a.n, a.n_failed, b.n, b.n_failed) == (6, 2, 3, 0)
    # A's finished errors are 1, 2, 3, 4 (9 failed, NaN failed): linear-interpolated quantiles
    stats = a[["min", "mean", "q05", "q25", "q50", "q75", "max"]]
    np.testing.assert_allclose(stats, [1, 2.5, 1.15, 1.75, 2.5, 3.25, 4])
    np.testing.assert_allclose(b[["min", "mean", "q50", "max"]], [2, 4, 4, 6])


def test_summary_of_dict_and_array():
    s = summary({"X": [1.0, np.nan, 3.0], "Y": [5.0]})
    assert s.loc["X", "n"] == 3 and s.loc["X", "n_failed"] == 1 and s.loc["X", "mean"] == 2
    assert summary([1.0, 2.0]).loc["all", "max"] == 2


def test_edfs_tidy_and_normalised_by_hand():
    t = edfs(table(), grid=[2.5, 3.5, 10])
    assert list(t.columns) == ["group", "e", "F"]
    np.testing.assert_allclose(t.loc[t.group == "A", "F"], [0.5, 0.75, 1])
    np.testing.assert_allclose(t.loc[t.group == "B", "F"], [1 / 3, 1 / 3, 1])
    # common flops range [10, 1000], 2 log bins (10 | 100, 1000): A's three 10-flop models share 1/2
    n = edfs(table(), normalized="flops", grid=[2.5, 3.5, 10], bins=2)
    np.testing.assert_allclose(n.loc[n.group == "A", "F"], [1 / 3, 1 / 2, 1])
    np.testing.assert_allclose(n.loc[n.group == "B", "F"], [1 / 2, 1 / 2, 1])


def test_edfs_band_columns_and_default_grid():
    t = edfs(table(), n_boot=200)
    assert list(t.columns) == ["group", "e", "F", "lo", "hi"]
    assert (t.lo <= t.F + 1e-12).all() and (t.F <= t.hi + 1e-12).all()
    assert t.groupby("group").F.max().tolist() == [1.0, 1.0]


@pytest.mark.parametrize("call", [
    lambda: edfs(table(), by="family"),
    lambda: edfs(table(), normalized="latency"),
    lambda: summary(table().iloc[:0]),
    lambda: summary(table().assign(status="failed")),
    lambda: edfs({"A": [np.nan]}),
    lambda: edfs({"A": [1.0]}, normalized="flops"),
])
def test_bad_tables_raise_one_line_dse_error(call):
    with pytest.raises(DseError) as e:
        call()
    assert "\n" not in str(e.value) and str(e.value)


def test_failed_status_excluded_even_with_finite_error():
    # A's failed row has error 9.0: counted, F_A(5) would be 4/5; excluded it is 1
    t = edfs(table(), grid=[5.0])
    np.testing.assert_allclose(t.F, [1.0, 2 / 3])


def test_noise_repeats_are_not_models_in_summaries_and_edfs():
    """A's model with error 1 retrained twice more (errors 7 and 8): still 4 finished models, same quantiles."""
    base = table().assign(id=[f"m{i}" for i in range(9)], repeat=0)
    rep = pd.concat([base, base.iloc[[0, 0]].assign(repeat=[1, 2], error=[7.0, 8.0])], ignore_index=True)
    pd.testing.assert_frame_equal(summary(rep), summary(base))
    pd.testing.assert_frame_equal(edfs(rep, grid=[2.5, 7.5]), edfs(base, grid=[2.5, 7.5]))
    # q50 is numpy's median: the mean of the two middle values of A's 1, 2, 3, 4
    assert summary(base).loc["A", "q50"] == np.median([1.0, 2.0, 3.0, 4.0]) == 2.5
