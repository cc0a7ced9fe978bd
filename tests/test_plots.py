"""Figures: the drawn data against numpy computed independently, layout, save() and `dse plot`."""
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dse.analysis import plots
from dse.analysis.fit import Fit, fit
from dse.errors import DseError

QUICK = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "main_results.jsonl"
OLD = Path(__file__).resolve().parent / "data" / "old_quick_results.jsonl"  # dse 0.1.0, 4 models per space
PNG = b"\x89PNG\r\n\x1a\n"


def table():
    """Two spaces; A has a failed row with a finite error (0.5, must not count) and a NaN error."""
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(9)],
        "space": ["A"] * 6 + ["B"] * 3,
        "status": ["ok", "ok", "ok", "ok", "failed", "ok", "ok", "ok", "ok"],
        "error": [3.0, 1.0, 2.0, 2.0, 0.5, np.nan, 5.0, 4.0, 6.5],
        "flops": [1e6, 2e6, 4e6, 8e6, 1e6, 1e6, 1e7, 2e7, 4e7],
        "params": [1e5, 1e5, 2e5, 2e5, 1e5, 1e5, 3e5, 3e5, 3e5],
    })


def ok_errors(df, space):
    """The finished errors of one space, selected by hand."""
    m = (df.space == space) & (df.status == "ok") & df.error.notna()
    return df.error[m].to_numpy()


def curves(fig):
    """{label prefix: (x, y)} of the step lines of a one-axis figure."""
    ax = fig.axes[0]
    return {ln.get_label().split(" ")[0]: (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
            for ln in ax.get_lines()}


def test_edf_lines_equal_numpy_edf():
    df = table()
    fig = plots.edf_figure(df)
    got = curves(fig)
    assert sorted(got) == ["A", "B"]
    for k, (x, y) in got.items():
        e = ok_errors(df, k)
        np.testing.assert_allclose(y, (e[None, :] < x[:, None]).mean(axis=1))  # F(x) = #{e_i < x} / n
        assert x.min() <= e.min() and x.max() > e.max()  # from 0 to 1
    x, y = got["A"]
    assert y[x == 2.0][0] == 0.25  # by hand: A = {1, 2, 2, 3}; only 1 < 2
    assert y[x == 3.0][0] == 0.75
    assert all(ln.get_drawstyle() == "steps-pre" for ln in fig.axes[0].get_lines())
    ax = fig.axes[0]
    assert ax.get_xlabel() == "error (%)" and ax.get_ylabel() == "cumulative prob."
    assert "normalized" not in ax.get_title()


def test_edf_legend_n_min_mean_equal_numpy():
    df = table()
    texts = [t.get_text() for t in plots.edf_figure(df).axes[0].get_legend().get_texts()]
    assert len(texts) == 2
    for t in texts:
        m = re.fullmatch(r"(\w+) \(n=(\d+), min ([\d.]+), mean ([\d.]+)\)", t)
        assert m, t
        e = ok_errors(df, m[1])
        assert int(m[2]) == e.size
        assert float(m[3]) == pytest.approx(np.min(e), abs=0.05)
        assert float(m[4]) == pytest.approx(np.mean(e), abs=0.05)
    assert texts[0] == "A (n=4, min 1.0, mean 2.0)"  # by hand: (3 + 1 + 2 + 2) / 4


def test_normalized_edf_moves_towards_the_rare_expensive_models():
    # 8 cheap models (1 MFLOP) with high error, 2 expensive (1 GFLOP) with low error
    df = pd.DataFrame({"space": "S", "error": [50.0 + i for i in range(8)] + [10.0, 11.0],
                       "flops": [1e6] * 8 + [1e9] * 2})
    plain = curves(plots.edf_figure(df))["S"]
    fig = plots.edf_figure(df, normalized="flops")
    norm = curves(fig)["S"]
    f_at = lambda c, v: c[1][np.searchsorted(c[0], v)]  # noqa: E731
    # by hand: plainly 2 of 10 models are below 20%; normalized, each of the 2 non-empty log bins weighs 1/2
    assert f_at(plain, 50.0) == pytest.approx(0.2)
    assert f_at(norm, 50.0) == pytest.approx(0.5)
    assert np.all(norm[1] >= plain[1] - 1e-12) and np.any(norm[1] > plain[1])
    assert "normalized by flops" in fig.axes[0].get_title()


def test_edf_reward_legend_shows_the_max_and_title_says_what_is_drawn():
    df = table()
    fig = plots.edf_figure(df.assign(reward=100 - df.error), metric="reward", band=True, n_boot=50)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0] == f"A (n=4, max {100 - 1.0:.3g}, mean {100 - 2.0:.3g})"  # the best reward is 100 - min error
    title = fig.axes[0].get_title()
    assert "of 7 models" in title and "95% bootstrap band (50 resamples)" in title  # 4 + 3 finished rows


def test_noise_repeats_are_not_extra_models():
    df = table().assign(repeat=0)
    rep = pd.concat([df, df.iloc[[0, 1]].assign(repeat=1, error=[60.0, 70.0])], ignore_index=True)
    assert curves(plots.edf_figure(rep))["A"][1].tolist() == curves(plots.edf_figure(df))["A"][1].tolist()
    texts = [t.get_text() for t in plots.edf_figure(rep).axes[0].get_legend().get_texts()]
    assert texts[0] == "A (n=4, min 1.0, mean 2.0)"


def test_edf_band_shades_each_group_and_metric_column():
    df = table()
    assert len(plots.edf_figure(df).axes[0].collections) == 0
    fig = plots.edf_figure(df, band=True, n_boot=50)
    assert len(fig.axes[0].collections) == 2
    fig = plots.edf_figure(df.assign(reward=-df.error), metric="reward")
    assert fig.axes[0].get_xlabel() == "reward"
    x, y = curves(fig)["B"]
    np.testing.assert_allclose(y, (-ok_errors(df, "B")[None, :] < x[:, None]).mean(axis=1))


@pytest.mark.parametrize("kw", [{"metric": "nope"}, {"by": "nope"}, {"normalized": "nope"}])
def test_edf_unknown_column_raises(kw):
    with pytest.raises(DseError, match="nope"):
        plots.edf_figure(table(), **kw)


def anynet(n=30, seed=0):
    """AnyNet-like rows: d1..d3 and w1..w3 vary, b1..b3 constant, flops vary, params constant."""
    rng = np.random.default_rng(seed)
    cols = {f"{p}{i}": rng.integers(1, 9, n) * (8 if p == "w" else 1) for p in "dw" for i in (1, 2, 3)}
    cols |= {f"b{i}": np.ones(n, int) for i in (1, 2, 3)}
    return pd.DataFrame({"id": range(n), "space": "X", "status": "ok", "error": rng.uniform(5, 50, n),
                         "flops": np.exp(rng.uniform(13, 18, n)), "params": 1000, **cols})


def panels(fig):
    """{x label: (gridspec row, gridspec column, axes)} of a params figure."""
    out = {}
    for ax in fig.axes:
        ss = ax.get_subplotspec()
        out[ax.get_xlabel()] = (ss.rowspan.start, ss.colspan.start, ax)
    return out


def test_params_figure_default_panels_per_stage_rows():
    p = panels(plots.params_figure(anynet()))
    assert sorted(p) == ["d1", "d2", "d3", "flops", "w1", "w2", "w3"]  # constant b_i and params left out
    assert {p[f"d{i}"][0] for i in (1, 2, 3)} == {0} and {p[f"w{i}"][0] for i in (1, 2, 3)} == {1}
    assert [p[f"w{i}"][1] for i in (1, 2, 3)] == [0, 1, 2]
    assert p["flops"][0] == 2
    assert p["w1"][2].get_xscale() == "log" and p["flops"][2].get_xscale() == "log"
    assert p["d1"][2].get_xscale() == "linear"


def test_params_figure_named_parameters_and_regnet_scalars():
    assert sorted(panels(plots.params_figure(anynet(), params=["w", "b", "flops"]))) == \
        ["b1", "b2", "b3", "flops", "w1", "w2", "w3"]
    assert sorted(panels(plots.params_figure(anynet(), params=["w2"]))) == ["w2"]
    rng = np.random.default_rng(1)
    reg = pd.DataFrame({"id": range(20), "space": "R", "error": rng.uniform(5, 50, 20), "d": rng.integers(10, 25, 20),
                        "w0": 8 * rng.integers(2, 30, 20), "wa": rng.uniform(8, 200, 20), "wm": rng.uniform(1.5, 3, 20),
                        "g": 8, "flops": 4e8})
    p = panels(plots.params_figure(reg))
    assert sorted(p) == ["d", "w0", "wa", "wm"]
    assert p["w0"][2].get_xscale() == "log" and p["wm"][2].get_xscale() == "linear"


def t_interval(e):
    """The 95% t interval of a mean, by scipy (independent of the plotting code)."""
    from scipy import stats

    return stats.t.interval(0.95, len(e) - 1, loc=np.mean(e), scale=stats.sem(e))


def test_params_trend_is_mean_and_interval_per_value_on_categorical_axes():
    df = anynet(60)
    df["b2"] = np.tile([1, 2, 4], 20)
    fig = plots.params_figure(df, params=["b2"])
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "X"]
    for v, mu in zip([1, 2, 4], line.get_ydata()):
        assert mu == pytest.approx(df.error[df.b2 == v].mean())
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])  # categorical: equally spaced
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    segs = ax.containers[0].lines[2][0].get_segments()  # the error bars: the t interval of each mean
    for v, seg in zip([1, 2, 4], segs):
        np.testing.assert_allclose([seg[0][1], seg[1][1]], t_interval(df.error[df.b2 == v].to_numpy()))


def test_params_one_colour_per_space_and_declared_axes():
    """Two real spaces: one mean line per space, log x for AnyNetX's log-sampled d and w, g on its declared values."""
    rng = np.random.default_rng(3)
    n = 40
    df = pd.DataFrame({"id": range(2 * n), "space": ["anynetx_a"] * n + ["anynetx_e"] * n, "status": "ok",
                       "error": rng.uniform(5, 50, 2 * n), "d1": rng.integers(1, 17, 2 * n),
                       "w1": 8 * rng.integers(1, 100, 2 * n), "g1": 2 ** rng.integers(1, 3, 2 * n)})
    fig = plots.params_figure(df)
    p = panels(fig)
    assert p["d1"][2].get_xscale() == "log" and p["w1"][2].get_xscale() == "log"  # d: log by the space file
    assert [t.get_text() for t in p["g1"][2].get_xticklabels()] == ["1", "2", "4", "8", "16", "32"]
    for ax in (p["d1"][2], p["g1"][2]):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert {"anynetx_a", "anynetx_e"} <= set(lines)
        assert lines["anynetx_a"].get_color() != lines["anynetx_e"].get_color()
    g = p["g1"][2]
    (a,) = [ln for ln in g.get_lines() if ln.get_label() == "anynetx_a"]
    sel = df[df.space == "anynetx_a"]
    np.testing.assert_allclose(a.get_ydata(), [sel.error[sel.g1 == v].mean() for v in (2, 4)])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["anynetx_a", "anynetx_e"]


@pytest.mark.parametrize("params", [["foo"], ["w0"], ["d", "nope"]])
def test_params_unknown_parameter_names_what_is_available(params):
    with pytest.raises(DseError) as e:
        plots.params_figure(anynet(), params=params)
    msg = str(e.value)
    assert "unknown parameter" in msg and "d_i" in msg and "\n" not in msg


def test_widths_figure_top_k_lines_and_colorbar():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "status": ["ok", "ok", "ok", "failed"],
                       "error": [30.0, 10.0, 20.0, 1.0],
                       "ws": [[8, 16], [16, 16, 32], [24, 48, 48, 96], [8]]})
    fig = plots.widths_figure(df, top=2)
    ax = fig.axes[0]
    ys = sorted(list(ln.get_ydata()) for ln in ax.get_lines())
    assert ys == [[16, 16, 32], [24, 48, 48, 96]]  # the two best finished rows: b (10%) and c (20%)
    assert ax.get_yscale() == "log" and ax.yaxis.get_transform().base == 2
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "error (%)"  # the colorbar
    assert fig.axes[0].get_title() == "best 2 of 3"
    with pytest.raises(DseError):
        plots.widths_figure(df, top=0)


def test_widths_figure_one_panel_per_space():
    df = pd.DataFrame({"id": list("abcde"), "space": ["s", "s", "s", "t", "t"], "error": [30.0, 10.0, 20.0, 5.0, 9.0],
                       "ws": [[8, 16], [16, 32], [24, 48], [64, 64], [32, 64, 128]]})
    fig = plots.widths_figure(df, top=2)
    axs = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axs] == ["s: best 2 of 3", "t: best 2 of 2"]
    assert sorted(list(ln.get_ydata()) for ln in axs[0].get_lines()) == [[16, 32], [24, 48]]  # s's best, not t's
    assert sorted(list(ln.get_ydata()) for ln in axs[1].get_lines()) == [[32, 64, 128], [64, 64]]


def test_fit_figure_lines():
    ws = [24, 56, 56, 152, 152, 152, 152, 368, 368, 368]
    f = fit(ws)
    fig = plots.fit_figure(ws, f)
    ln = fig.axes[0].get_lines()
    np.testing.assert_array_equal(ln[0].get_ydata(), ws)
    np.testing.assert_allclose(ln[1].get_ydata(), f.w0 + f.wa * np.arange(10))
    np.testing.assert_array_equal(ln[2].get_ydata(), f.widths)
    assert "d=10" in fig.axes[0].get_title() and "e_fit=" in fig.axes[0].get_title()
    with pytest.raises(DseError):
        plots.fit_figure(ws[:-1], Fit(10, 24.0, 30.0, 2.5, 0.0, tuple(ws)))


def test_fits_figure_histograms_count_every_model():
    rng = np.random.default_rng(0)
    fits = pd.DataFrame({"error": rng.uniform(5, 9, 40), "e_fit": rng.uniform(0, 0.3, 40),
                         "w0": rng.uniform(16, 256, 40), "wa": rng.uniform(8, 100, 40), "wm": rng.uniform(1.5, 3, 40)})
    fig = plots.fits_figure(fits)
    assert [ax.get_xlabel() for ax in fig.axes] == ["e_fit", "w0", "wa", "wm"]
    for ax in fig.axes[1:]:  # one step outline per space: its tops are the counts
        (poly,) = ax.patches
        assert poly.get_xy()[1:-1:2, 1].sum() == 40
        assert ax.get_xscale() == "log"
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), fits[["e_fit", "error"]].to_numpy())
    with pytest.raises(DseError, match="wm"):
        plots.fits_figure(fits.drop(columns="wm"))


def test_no_global_pyplot_or_rc_state():
    before = dict(matplotlib.rcParams)
    plots.edf_figure(table())
    plots.params_figure(anynet())
    assert plt.get_fignums() == []
    assert dict(matplotlib.rcParams) == before


def test_save_png_svg_refuse_force_suffix(tmp_path):
    fig = plots.edf_figure(table())
    png = plots.save(fig, tmp_path / "a.png")
    assert png.read_bytes()[:8] == PNG
    svg = plots.save(fig, tmp_path / "a.svg")
    assert b"<svg" in svg.read_bytes()[:500]
    old = png.read_bytes()
    with pytest.raises(DseError, match="already exists"):
        plots.save(plots.params_figure(anynet()), png)
    assert png.read_bytes() == old
    plots.save(plots.params_figure(anynet()), png, force=True)
    assert png.read_bytes() != old and png.read_bytes()[:8] == PNG
    for bad in ("a.tiff", "a"):
        with pytest.raises(DseError, match=r"png, \.svg or \.pdf"):
            plots.save(fig, tmp_path / bad)
        assert not (tmp_path / bad).exists()
    with pytest.raises(DseError, match="does not exist"):
        plots.save(fig, tmp_path / "no" / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.svg"]  # no temporary files left


def test_save_is_deterministic(tmp_path):
    for suffix in ("png", "svg"):
        a = plots.save(plots.edf_figure(table()), tmp_path / f"a.{suffix}").read_bytes()
        b = plots.save(plots.edf_figure(table()), tmp_path / f"b.{suffix}").read_bytes()
        assert a == b


# ---------------------------------------------------------------- CLI

@pytest.mark.parametrize("what,extra", [("edf", []), ("edf", ["--normalized", "--band"]), ("params", []),
                                        ("params", ["--params", "w,flops"]), ("widths", ["--top", "3"])])
def test_cli_plot_writes_png(run_cli, tmp_path, what, extra):
    out = tmp_path / "x.png"
    code, stdout, err = run_cli("plot", what, QUICK, "-o", out, *extra)
    assert (code, err) == (0, "")
    assert f"wrote {out}" in stdout
    assert out.read_bytes()[:8] == PNG


def test_cli_space_filter(run_cli, tmp_path, monkeypatch):
    seen = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path, force=False: seen.append(fig) or save(fig, path, force))
    code, _, err = run_cli("plot", "edf", OLD, "--space", "anynetx_a", "-o", tmp_path / "x.svg")
    assert code == 0, err
    texts = [t.get_text() for t in seen[0].axes[0].get_legend().get_texts()]
    assert len(texts) == 1 and texts[0].startswith("anynetx_a (n=4,")
    assert (tmp_path / "x.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_cli_bad_input(run_cli, tmp_path):
    corrupt = tmp_path / "bad.jsonl"
    corrupt.write_text('{"id": "a", "space": "x", "error": 1}\n{not json\n')
    cases = [
        (("edf", QUICK, "--space", "anynetx_z"), "anynetx_z"),
        (("params", QUICK, "--params", "depthz"), "depthz"),
        (("edf", tmp_path / "missing.jsonl"), "missing.jsonl"),
        (("edf", corrupt), "bad.jsonl"),
        (("edf", QUICK, "--metric", "nope"), "nope"),
        (("widths", QUICK, "--top", "0"), "top"),
    ]
    for args, word in cases:
        out = tmp_path / "out.png"
        code, stdout, err = run_cli("plot", *args, "-o", out)
        assert code == 1, args
        assert err.startswith("dse: error:") and err.count("\n") == 1 and word in err, err
        assert not out.exists()
    code, _, err = run_cli("plot", "edf", QUICK, "-o", tmp_path / "out.tiff")
    assert code == 1 and err.startswith("dse: error:") and not (tmp_path / "out.tiff").exists()
    assert "use .png, .svg or .pdf" in err


def test_cli_refuses_existing_output(run_cli, tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"keep")
    code, _, err = run_cli("plot", "edf", QUICK, "-o", out)
    assert code == 1 and "already exists" in err and out.read_bytes() == b"keep"
    code, _, err = run_cli("plot", "edf", QUICK, "-o", out, "--force")
    assert code == 0 and out.read_bytes()[:8] == PNG


def test_regnet_w0_is_not_a_stage_width():
    """w0 (RegNet's initial width) must not be taken for a stage width w_i: w_i panels come from w1..wk only."""
    df = pd.DataFrame({"id": list("abcd"), "space": "regnetx", "status": "ok", "error": [10.0, 20.0, 30.0, 40.0],
                       "w0": [24, 48, 72, 96], "wa": [20.0, 30.0, 40.0, 50.0], "w1": [24, 48, 64, 96],
                       "w2": [56, 96, 152, 200]})
    fig = plots.params_figure(df)
    labels = sorted(ax.get_xlabel() for ax in fig.axes if ax.get_xlabel())
    assert labels == ["w0", "w1", "w2", "wa"]
