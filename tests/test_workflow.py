"""The researcher's first hour (issue 17): CLI habits, figures fit for a paper, statistics hygiene, report glitches."""
import argparse
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dse
from dse.analysis import plots
from dse.errors import DseError

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "notebooks" / "data" / "main_results.jsonl"  # a real run: anynetx_a, anynetx_e, regnetx x 20


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The first 5 models of each space of MAIN (fast to fit), as a results file."""
    rows = [json.loads(x) for x in MAIN.read_text().splitlines()]
    keep = [r for r in rows if r.get("repeat", 0) == 0]
    keep = [r for s in ("anynetx_a", "anynetx_e", "regnetx") for r in [x for x in keep if x["space"] == s][:5]]
    p = tmp_path_factory.mktemp("small") / "small.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in keep))
    return p


# ---------------------------------------------------------------- command-line habits

def test_version(capsys):
    from dse.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert e.value.code == 0 and capsys.readouterr().out == f"dse {version}\n"


def test_every_subcommand_has_a_description_examples_and_argument_help():
    from dse.cli import build_parser

    def walk(p, name):
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for a in p._actions:
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                assert a.help, f"{name}: {a.dest} has no help"
        if name != "dse":
            assert p.description and p.epilog.startswith("examples:\n  dse "), name
            assert p.format_help().count("\n  dse ") >= 2, name  # one or two examples, as written
        for s in subs:
            for child, sp in s.choices.items():
                walk(sp, f"{name} {child}")
    walk(build_parser(), "dse")


def test_models_match_a_part_of_the_name_or_a_shell_pattern(run_cli):
    _, out, _ = run_cli("models", "regnety")
    names = [x.split()[0] for x in out.splitlines()[1:]]
    assert len(names) == 12 and all(n.startswith("regnety_") for n in names)
    assert dse.list_models("400MF") == ["regnetx_400mf", "regnety_400mf"]
    assert dse.list_models("efficientnet_b[0-1]") == ["efficientnet_b0", "efficientnet_b1"]
    assert dse.list_models("regnet?_2*") == ["regnetx_200mf", "regnety_200mf"]


def test_json_on_spaces_and_show(run_cli):
    _, out, _ = run_cli("spaces", "--json")
    recs = {r["name"]: r for r in json.loads(out)}
    assert recs["anynetx_e"]["extends"] == "anynetx_d" and recs["anynetx_e"]["family"] == "anynet"
    assert recs["anynetx_a"]["extends"] is None and recs["regnetx"]["path"].endswith("regnetx.yaml")
    _, out, _ = run_cli("show", "anynetx_e", "--json")
    rec = json.loads(out)
    assert rec["extends_chain"] == ["anynetx_d", "anynetx_c", "anynetx_b", "anynetx_a"]
    assert {"shared": "b"} in rec["space"]["constraints"] and {"nondecreasing": "d"} in rec["space"]["constraints"]
    _, text, _ = run_cli("show", "anynetx_e")
    assert text.startswith("# ") and "constraints:" in text  # the text output as before


def test_pretrained_is_a_clear_error():
    with pytest.raises(DseError, match=r"dse ships no pretrained weights.*checkpoint='RegNetX-400MF_dds_8gpu.pyth'"):
        dse.create_model("regnetx_400mf", pretrained=True)


def test_status_counts_stopped_trials_apart_from_failed(tmp_path, run_cli):
    run = tmp_path / "run"
    run.mkdir()
    (run / "plan.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in "abcd"))
    rows = [{"id": "a", "space": "s", "status": "ok", "error": 10.0}, {"id": "b", "space": "s", "status": "stopped",
            "error": 50.0, "reason": "stopped early after epoch 1"},
            {"id": "c", "space": "s", "status": "failed", "error": None, "reason": "RuntimeError: boom"}]
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, out, _ = run_cli("status", run)
    assert out.splitlines()[1] == "  3/4 done, 1 failed, 1 stopped early, 1 to go"
    assert "failed c (s): RuntimeError: boom" in out and "failed b" not in out
    _, out, _ = run_cli("status", run, "--json")
    s = json.loads(out)
    assert (s["done"], s["failed"], s["stopped"], s["to_go"]) == (3, 1, 1, 1)
    assert s["failed_trials"] == [{"key": "c", "space": "s", "reason": "RuntimeError: boom"}]
    from dse.analysis.edf import summary

    t = summary(pd.DataFrame(rows))
    assert (t.loc["s", "n_failed"], t.loc["s", "n_stopped"]) == (1, 1)


def test_report_versions_without_nan_and_stopped_trials_counted_apart():
    from dse.analysis.report import _others, _recipe_html, recipe

    df = dse.load_results(MAIN)
    df.loc[df.index[:3], ["dse", "torch"]] = np.nan  # rows an ASHA scheduler stopped carry no versions
    df.loc[df.index[:3], "status"] = "stopped"
    df.loc[df.index[3], "status"] = "failed"
    r = recipe(df).iloc[0]
    assert (r["dse"], r["torch"]) == (df["dse"].dropna().iloc[0], df["torch"].dropna().iloc[0])  # the others' value
    assert "nan" not in _recipe_html(df, "error")
    assert _others(df, 56) == "1 failed, 3 stopped early by the scheduler, 16 extra seeds (repeats) or unfinished"


def test_a_normalised_edf_range_prints_in_units():
    from dse.analysis.edf import common_range

    with pytest.raises(DseError) as e:
        common_range({"a": [370.912e6, 372e6], "b": [377.781e6, 380e6]})
    assert str(e.value) == "the complexity ranges do not overlap: 377.8M\u2013372M is empty"


# ---------------------------------------------------------------- statistics hygiene

def test_rank_correlation_below_four_models_has_no_p_value(tmp_path, run_cli):
    from dse.analysis.table import spearman

    assert math.isnan(spearman([1, 2, 3], [1, 2, 3])[1]) and spearman([1, 2, 3], [1, 2, 3])[0] == 1.0
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4])[1] == pytest.approx(0.2, abs=1e-12)  # scipy: rho 0.8, p 0.2
    rows = [{"id": str(i), "space": "s", "status": "ok", "error": e, "errors": [e + 5, e]}
            for i, e in enumerate((10.0, 20.0, 30.0))]
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, out, _ = run_cli("analyze", p)
    assert out.splitlines()[1].split() == ["s", "1", "3", "1", "\u2014"]
    _, out, _ = run_cli("analyze", p, "--json")
    assert json.loads(out)[0]["p"] is None


def test_refine_subsets_below_min_n_are_too_few_never_above_noise(run_cli):
    from dse.analysis.refine import refine
    from dse.analysis.report import _refine

    df = dse.load_results(MAIN)
    df = df[df["space"] == "anynetx_a"]
    t = refine(df, min_n=10, e_fit=())
    few = t[t["n"] < 10]
    assert len(few) and (few["note"] == "too few").all() and (t.loc[t["n"] >= 10, "note"] == "").all()
    one = t[(t["space"] == "anynetx_a") & (t["constraint"] == "shared b")].iloc[0]
    assert one["n"] == 1 and abs(one["d_mean"]) > 2.05  # a subset of one model, further from the mean than noise
    html = _refine(df, "error", 2.05)
    row = html.split("<td>shared b</td>")[1].split("</tr>")[0]
    assert "too few" in row and "above" not in row
    _, out, _ = run_cli("refine", MAIN, "--space", "anynetx_a", "--min-n", "2", "--e-fit", "0.3")
    t2 = refine(df, min_n=2, e_fit=[0.3])
    assert 0 < out.count("too few") == int((t2["n"] < 2).sum())


def runs(tmp_path, lr_b=0.1):
    """Two runs of one space whose recipes differ (lr) or agree."""
    rng = np.random.default_rng(0)
    out = []
    for name, lr, shift in (("a", 0.1, 0.0), ("b", lr_b, 5.0)):
        rows = [{"id": f"{name}{i}", "space": "anynetx_a", "status": "ok", "error": float(e),
                 "recipe": {"epochs": 10, "lr": lr}, "data": {"name": "digits", "res": 16},
                 "band": {"flops": [360e6, 400e6]}} for i, e in enumerate(rng.normal(20 + shift, 3, 12))]
        p = tmp_path / f"{name}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out.append(p)
    return out


def test_compare_by_run_names_what_differs_and_is_not_comparable_unless_forced(tmp_path, run_cli):
    a, b = runs(tmp_path, lr_b=0.2)
    _, out, _ = run_cli("compare", a, b, "--by", "run")
    line = out.splitlines()[1]
    assert line == ("a vs b: not comparable: the runs differ in recipe.lr, so a difference would mix the designs "
                    "with the protocols (--force gives the verdict anyway)")
    _, out, _ = run_cli("compare", a, b, "--by", "run", "--force")
    assert out.splitlines()[1].startswith("a is better than b: mean -") and "(the runs differ in recipe.lr)" in out
    _, out, _ = run_cli("compare", a, b, "--by", "run", "--json")
    assert json.loads(out)[0]["differ"] == "recipe.lr"
    a, b = runs(tmp_path / "same" if (tmp_path / "same").mkdir() is None else None)
    _, out, _ = run_cli("compare", a, b, "--by", "run")
    assert out.splitlines()[1].startswith("a is better than b") and "differ" not in out


def test_fit_of_a_run_is_per_space(run_cli, small):
    from dse.analysis.table import spearman

    _, out, _ = run_cli("fit", small, "--json")
    rec = json.loads(out)
    assert [s["space"] for s in rec["summary"]] == ["anynetx_a", "anynetx_e", "regnetx"]
    fits = pd.DataFrame(rec["fits"])
    assert list(fits["space"]) == ["anynetx_a"] * 5 + ["anynetx_e"] * 5 + ["regnetx"] * 5  # each space best first
    for s in rec["summary"]:
        g = fits[fits["space"] == s["space"]]
        assert list(g["error"]) == sorted(g["error"])
        rho = spearman(g["e_fit"], g["error"])[0]  # NaN for RegNetX here: its e_fit are all 0 (JSON null)
        assert s["n"] == 5 and (s["rho"] == pytest.approx(rho) if s["rho"] is not None else math.isnan(rho))
    _, out, _ = run_cli("fit", small, "--top", "2")
    assert out.count("spearman(e_fit, error)") == 3 and "\nanynetx_e: spearman" in out
    assert len(out.split("\n\n")[0].splitlines()) == 1 + 3 * 2  # the table: the top 2 of each space


# ---------------------------------------------------------------- figures

def test_edf_bands_are_outlines_with_a_light_fill_and_the_legend_is_n_min_mean():
    from matplotlib.colors import to_rgba

    df = dse.load_results(MAIN)
    ax = plots.edf_figure(df, band=True, n_boot=50).axes[0]
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == ["anynetx_a", "anynetx_e", "regnetx"]
    a = df[(df["space"] == "anynetx_a") & (df["repeat"] == 0)]["error"]  # the legend's numbers, from the table
    assert ax.get_legend().get_texts()[0].get_text().startswith(f"anynetx_a (n=20, min {a.min():.1f}, mean "
                                                                f"{a.mean():.1f}")
    assert all(c.get_alpha() <= 0.1 for c in ax.collections)  # fills too light to blend into brown
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("-", "None")]
    assert len(dashed) == 6  # the band's two edges, per space, in the curve's colour
    curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert {to_rgba(ln.get_color()) for ln in dashed} == {to_rgba(ln.get_color()) for ln in curves}


def test_params_categories_shared_parameters_bins_and_axes():
    from matplotlib.collections import LineCollection, PathCollection

    df = dse.load_results(MAIN)
    fig = plots.params_figure(df)
    ax = {a.get_xlabel(): a for a in fig.axes}
    # anynetx_e shares b and g across stages: drawn once (with RegNetX's g), never once per stage
    assert {"b1", "g4", "b", "g"} <= set(ax)
    labels = lambda a: {ln.get_label() for ln in ax[a].get_lines()} - {"_nolegend_"}  # noqa: E731 (caps)
    assert set().union(*(labels(a) for a in ("b1", "b2", "b3", "b4", "g1"))) == {"anynetx_a"}
    assert labels("g") == {"anynetx_e", "regnetx"} and labels("b") == {"anynetx_e"}
    for name in ("b1", "g2", "g", "b"):  # categories: means as markers, never a line joining categories
        assert all(ln.get_linestyle() == "None" for ln in ax[name].get_lines())
    e = df[(df["space"] == "anynetx_e") & (df["repeat"] == 0)]
    (mean,) = [ln for ln in ax["b"].get_lines() if ln.get_label() == "anynetx_e"]
    assert list(mean.get_ydata()) == pytest.approx([e.loc[e.b1 == v, "error"].mean() for v in (1, 2, 4)])
    lo, hi = fig.axes[0].get_ylim()
    for a in fig.axes:  # no error bar or band runs off its axes
        for c in a.collections:
            if isinstance(c, PathCollection):  # scatter: the models' points
                ys = np.asarray(c.get_offsets())[:, 1]
            else:  # error bars (LineCollection) and bands (fill_between)
                segs = c.get_segments() if isinstance(c, LineCollection) else [p.vertices for p in c.get_paths()]
                ys = np.concatenate([np.asarray(s).reshape(-1, 2)[:, 1] for s in segs] + [[]])
            assert ((ys >= lo - 1e-9) & (ys <= hi + 1e-9)).all(), a.get_xlabel()


def test_numeric_bins_hold_at_least_k_models():
    from dse.analysis.plots import _bins

    x = np.array([1, 1, 2, 3, 3, 3, 5, 8, 9, 12, 13, 16], dtype=float)
    key, centres = _bins(x, 10, True, 5)
    assert np.bincount(key).min() >= 5 and len(centres) == 2  # 12 values, at least 5 per bin
    df = dse.load_results(MAIN)
    ax = {a.get_xlabel(): a for a in plots.params_figure(df, params=["d"], min_bin=5).axes}["d"]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "regnetx"]
    d = df[(df["space"] == "regnetx") & (df["repeat"] == 0)]["d"].to_numpy(dtype=float)
    assert 2 <= len(line.get_xdata()) <= len(d) // 5  # 20 models: at most 4 bins of 5


def test_fits_figure_per_space_with_regnet_apart(tmp_path):
    from dse.analysis.fit import fit_results
    from dse.analysis.table import spearman

    fits = fit_results(dse.load_results(MAIN))
    fig = plots.fits_figure(fits)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    rho = {s: spearman(g["e_fit"], g["error"])[0] for s, g in fits.groupby("space")}
    assert labels == [f"anynetx_a (n=20, rho {rho['anynetx_a']:.2f})", f"anynetx_e (n=20, rho {rho['anynetx_e']:.2f})"]
    assert "regnetx left out: e_fit = 0 by construction" in ax.get_title()
    assert [a.get_xscale() for a in fig.axes[1:4]] == ["log"] * 3
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["anynetx_a", "anynetx_e", "regnetx"]


def test_widths_titles_say_best_k_of_n():
    fig = plots.widths_figure(dse.load_results(MAIN), top=10)
    assert [a.get_title() for a in fig.axes[:3]] == [f"{s}: best 10 of 20" for s in ("anynetx_a", "anynetx_e",
                                                                                      "regnetx")]
    assert fig.axes[0].get_yscale() == "log" and all(ln.get_linewidth() < 1 for ln in fig.axes[0].get_lines())


def test_pdf_wherever_png_works_and_the_same_bytes_twice(tmp_path, run_cli, small):
    for name, args in (("edf", ("plot", "edf", small)), ("fits", ("fit", small))):
        out = tmp_path / f"{name}.pdf"
        code, _, err = run_cli(*args, "-o", out)
        assert code == 0, err
        assert out.read_bytes()[:5] == b"%PDF-"
    a = plots.save(plots.edf_figure(dse.load_results(small)), tmp_path / "a.pdf")
    b = plots.save(plots.edf_figure(dse.load_results(small)), tmp_path / "b.pdf")
    assert a.read_bytes() == b.read_bytes()


def test_report_tables_per_space_with_that_space_s_columns_only():
    from dse.analysis.report import _models

    page = _models(dse.load_results(MAIN), "error", 10)
    parts = {h.split("</h3>")[0]: h for h in page.split("<h3>")[1:]}
    assert list(parts)[:2] == ["anynetx_a: best 10 of 20", "anynetx_a: worst 10 of 20"]
    head = lambda h: [c.split("</th>")[0] for c in h.split("<th>")[1:]]  # noqa: E731
    assert head(parts["anynetx_a: best 10 of 20"]) == ["id", "error", "best_error", "flops", "params", "b", "d", "g",
                                                       "w"]
    assert head(parts["regnetx: best 10 of 20"]) == ["id", "error", "best_error", "flops", "params", "d", "g", "w0",
                                                     "wa", "wm"]
    assert "the same in every model of this space: b 1" in parts["regnetx: best 10 of 20"]
    assert "<td></td>" not in page  # no column of blanks


# ---------------------------------------------------------------- progress

def test_long_analysis_commands_show_the_progress_bar(run_cli, monkeypatch, small):
    import dse.progress

    monkeypatch.setattr(dse.progress, "interactive", lambda stream=None: True)  # as on a terminal
    _, _, err = run_cli("fit", small, "--json")
    assert "fitting widths" in err and "15/15" in err
    rows = []
    from dse.analysis.refine import refine

    refine(dse.load_results(small), progress=lambda d, t: rows.append((d, t)))
    assert rows[-1] == (15, 15) and [d for d, _ in rows] == sorted(d for d, _ in rows)
