"""`dse report`: one self-contained HTML page; `dse run`: the whole protocol, re-runnable."""
import base64
import re
from pathlib import Path

import pytest

import dse
from dse.analysis.report import report_html

QUICK = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "main_results.jsonl"
OLD = Path(__file__).resolve().parent / "data" / "old_quick_results.jsonl"  # dse 0.1.0, 4 models per space
SECTIONS = ["Recipe", "Verdicts", "Noise floor", "Summary per space", "Error EDFs", "EDFs normalised by flops",
            "Kolmogorov-Smirnov", "design parameters", "Best and worst models", "Widths of the best",
            "Quantized-linear width fits", "Constraint discovery", "Low-epoch validity"]


@pytest.fixture(scope="module")
def page():
    return report_html(dse.load_results(QUICK), title="quick")


def test_all_sections_present_and_available(page):
    for s in SECTIONS:
        assert s in page, s
    assert "not available" not in page  # every section could be made from a real sweep table


def test_self_contained_images_are_real_pngs(page):
    assert not re.search(r'(src|href)="(https?:|//|file:)', page)  # nothing fetched from anywhere
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 6  # EDF, normalised EDF, parameters, widths, fits, rank correlation against the epoch
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_numbers_match_numpy(page):
    df = dse.load_results(QUICK)
    df = df[df["repeat"] == 0]  # one row per model: the noise repeats are not models
    summary = page[page.index("<h2>Summary per space</h2>"):]
    for space, g in df.groupby("space"):
        e = g["error"].to_numpy(dtype=float)
        row = re.search(rf"<td>{space}</td>\s*<td>(\d+)</td>\s*<td>\d+</td>\s*<td>([\d.]+)</td>\s*<td>([\d.]+)</td>",
                        summary)
        assert row, space
        assert int(row.group(1)) == len(e)
        assert float(row.group(2)) == pytest.approx(e.min(), rel=1e-3)
        assert float(row.group(3)) == pytest.approx(e.mean(), rel=1e-3)


def test_deterministic():
    assert report_html(dse.load_results(OLD), title="old") == report_html(dse.load_results(OLD), title="old")


def test_missing_columns_give_a_note_not_a_crash():
    df = dse.load_results(OLD).drop(columns=["errors"])
    page = report_html(df)
    assert page.count("not available") == 1 and "Low-epoch validity" in page


def test_cli_writes_and_refuses_to_overwrite(run_cli, tmp_path):
    out = tmp_path / "r.html"
    code, so, _ = run_cli("report", OLD, "-o", out)
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    before = out.read_bytes()
    code, _, err = run_cli("report", OLD, "-o", out)
    assert code == 1 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before


@pytest.mark.parametrize("args,needle", [
    (["missing.jsonl"], "no such results"),
    ([str(QUICK), "--metric", "nope"], "unknown column"),
])
def test_cli_bad_input(run_cli, tmp_path, args, needle):
    out = tmp_path / "r.html"
    code, _, err = run_cli("report", *args, "-o", out)
    assert code == 1 and needle in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_cli_bad_suffix_and_corrupt_table(run_cli, tmp_path):
    code, _, err = run_cli("report", QUICK, "-o", tmp_path / "r.pdf")
    assert code == 1 and ".html" in err
    bad = tmp_path / "results.jsonl"
    bad.write_text('{"id": "a"}\nnot json\n')
    code, _, err = run_cli("report", bad, "-o", tmp_path / "r.html")
    assert code == 1 and "corrupt line" in err and not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_same_space_from_two_runs_stays_apart(tmp_path, run_cli):
    for name in ("recipe_a", "recipe_b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text(OLD.read_text())
    out = tmp_path / "r.html"
    code, _, err = run_cli("report", tmp_path / "recipe_a", tmp_path / "recipe_b", "-o", out)
    assert code == 0, err
    page = out.read_text()
    for label in ("recipe_a/anynetx_a", "recipe_b/anynetx_a", "recipe_a/anynetx_e", "recipe_b/anynetx_e"):
        assert f"<td>{label}</td>" in page
    code, so, err = run_cli("refine", tmp_path / "recipe_a", tmp_path / "recipe_b", "--space", "anynetx_e")
    assert code == 0 and "on 8 rows" in so  # the filter sees the plain space names, before relabelling


def test_one_run_keeps_plain_space_names(page):
    assert "<td>anynetx_a</td>" in page and "/anynetx_a" not in page


# ---------------------------------------------------------------- the honest report: recipe, verdicts, noise, medians

def big(n=12, repeats=True):
    """Two spaces of n models (anynetx_e 6 points better) with recipe columns, and 3 repeats of 2 models."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    rows = [{"id": f"{s[-1]}{i:03d}", "space": s, "status": "ok", "repeat": 0, "error": float(rng.normal(mu, 2)),
             "flops": float(rng.uniform(3.6e8, 4e8)), "exp": "main", "n_planned": n, "dse": "0.2.0",
             "torch": "2.13.0+cpu", "recipe": {"epochs": 10, "batch_size": 32, "lr": 0.1},
             "data": {"name": "digits", "res": 16, "n_train": 1437, "n_val": 360}, "band": {"flops": [360e6, 400e6]}}
            for s, mu in (("anynetx_a", 36.0), ("anynetx_e", 30.0)) for i in range(n)]
    if repeats:
        rows += [{**rows[i], "repeat": r, "error": rows[i]["error"] + d}
                 for i in (0, n) for r, d in ((1, 1.5), (2, -1.5))]
    return pd.DataFrame(rows)


def test_recipe_header_from_row_columns_and_unknown_when_absent():
    from dse.analysis.report import recipe

    r = recipe(big()).iloc[0]
    assert (r["experiment"], r["data"], r["resolution"], r["epochs"], r["batch"], r["lr (at batch 128)"]) == \
        ("main", "digits (1437 train / 360 val)", "16 px", "10", "32", "0.1")
    assert r["band"] == "flops 360M-400M"
    assert r["n per space"] == "planned 12; finished: anynetx_a 12, anynetx_e 12"
    assert r["seeds"] == "1 per model; 2 models retrained with 3 seeds for the noise floor"
    assert (r["dse"], r["torch"]) == ("0.2.0", "2.13.0+cpu")
    old = recipe(dse.load_results(OLD)).iloc[0]  # a table from before the recipe columns: what it can say
    assert (old["experiment"], old["batch"], old["lr (at batch 128)"], old["band"]) == ("unknown",) * 4
    assert (old["epochs"], old["resolution"]) == ("6", "16 px")  # from the `epochs` and `train_res` columns
    assert old["seeds"] == "1 per model (no noise repeats)"


def test_small_run_banner_and_terminal_lines():
    import html

    from dse.analysis.compare import verdict_lines

    page = report_html(dse.load_results(OLD), title="old quick")
    assert '<div class="banner">Too small for conclusions: 4 models in the smallest space' in page
    for line in verdict_lines(dse.load_results(OLD)):  # the same words as `dse run` and `dse compare`
        assert f"<li>{html.escape(line)}</li>" in page
    assert "Widths of the best 4 models of each space" in page and "best 10" not in page


def test_verdicts_and_noise_section_of_an_adequate_run():
    import html

    from dse.analysis.compare import verdict_lines

    df = big()
    page = report_html(df)
    assert 'class="banner"' not in page
    lines = verdict_lines(df)
    # the std (ddof 1) of x - 1.5, x, x + 1.5 is sqrt(4.5 / 2) = 1.5 for both repeated models
    assert lines[0].startswith("noise floor: median seed std 1.50 points over 2 models x 3 seeds")
    assert lines[1].startswith("anynetx_e is better than anynetx_a: mean -")
    for line in lines:
        assert f"<li>{html.escape(line)}</li>" in page
    assert "24 models finished (0 failed, 4 extra seeds (repeats) or unfinished)" in page
    assert "<td>flops 360M-400M</td>" in page.replace(' class="text"', "")


def test_status_and_report_medians_agree(tmp_path):
    """An even number of models per space (the median is the mean of the middle two) plus noise repeats."""
    import json

    import numpy as np

    from dse.analysis.edf import summary
    from dse.run.status import status

    df = big(n=6)
    d = tmp_path / "run"
    d.mkdir()
    (d / "plan.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in df[df.repeat == 0]["id"]))
    (d / "noise.jsonl").write_text("".join(json.dumps({"id": i, "repeat": int(r)}) + "\n"
                                           for i, r in zip(df["id"], df["repeat"]) if r))
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    text = status(d)
    s = summary(dse.load_results(d))
    for space in ("anynetx_a", "anynetx_e"):
        e = df[(df.space == space) & (df.repeat == 0)]["error"].to_numpy()
        m = re.search(rf"{space}\s+n=\s*(\d+)\s+min ([\d.]+)%\s+median ([\d.]+)%", text)
        assert m and int(m[1]) == 6
        assert float(m[3]) == pytest.approx(np.median(e), abs=0.005)
        assert s.loc[space, "q50"] == pytest.approx(np.median(e), rel=1e-12)
        assert f"{s.loc[space, 'q50']:.2f}" == m[3]
    assert "(+2 noise repeats)" in text and "16/16 done, 0 failed, 0 to go" in text


def test_efficientnet_grid_shows_alpha_beta_gamma_not_anynet_sections():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    g = [(a, b, c) for a in (1.0, 1.1, 1.2) for b in (1.0, 1.1) for c in (1.0, 1.15)]
    df = pd.DataFrame({"id": [f"g{i}" for i in range(len(g))], "space": "efficientnet", "status": "ok",
                       "alpha": [x[0] for x in g], "beta": [x[1] for x in g], "gamma": [x[2] for x in g],
                       "error": rng.uniform(10, 20, len(g)), "flops": rng.uniform(1e7, 2e7, len(g))})
    page = report_html(df)
    assert "The metric against alpha, beta, gamma" in page
    for gone in ("Quantized-linear", "Constraint discovery", "design parameters"):
        assert gone not in page


def test_the_shipped_main_job_is_not_called_too_small(page):
    assert "Too small for conclusions" not in page and "TOO SMALL" not in page
    assert "noise floor: median seed std" in page and "over 8 models x 3 seeds" in page
