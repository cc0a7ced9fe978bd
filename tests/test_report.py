"""`dse report`: one self-contained HTML page; `dse run`: the whole protocol, re-runnable."""
import base64
import re
from pathlib import Path

import pytest
import yaml

import dse
from dse.analysis.report import report_html

QUICK = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "quick_results.jsonl"
SECTIONS = ["Summary per space", "Error EDFs", "EDFs normalised by flops", "Kolmogorov-Smirnov", "design parameters",
            "Best and worst models", "Widths of the best", "Quantized-linear fits", "Constraint discovery",
            "Low-epoch validity"]


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
    assert len(imgs) == 5  # EDF, normalised EDF, parameters, widths, fits
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_numbers_match_numpy(page):
    df = dse.load_results(QUICK)
    for space, g in df.groupby("space"):
        e = g["error"].to_numpy(dtype=float)
        row = re.search(rf"<td>{space}</td>\s*<td>(\d+)</td>\s*<td>\d+</td>\s*<td>([\d.]+)</td>\s*<td>([\d.]+)</td>",
                        page)
        assert row, space
        assert int(row.group(1)) == len(e)
        assert float(row.group(2)) == pytest.approx(e.min(), rel=1e-3)
        assert float(row.group(3)) == pytest.approx(e.mean(), rel=1e-3)


def test_deterministic(page):
    assert report_html(dse.load_results(QUICK), title="quick") == page


def test_missing_columns_give_a_note_not_a_crash():
    df = dse.load_results(QUICK).drop(columns=["errors"])
    page = report_html(df)
    assert page.count("not available") == 1 and "Low-epoch validity" in page


def test_cli_writes_and_refuses_to_overwrite(run_cli, tmp_path):
    out = tmp_path / "r.html"
    code, so, _ = run_cli("report", QUICK, "-o", out)
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    before = out.read_bytes()
    code, _, err = run_cli("report", QUICK, "-o", out)
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
def test_run_then_run_again_continues_and_refreshes(tmp_path, run_cli):
    exp = tmp_path / "tiny.yaml"
    exp.write_text(yaml.safe_dump({"name": "tiny", "spaces": ["anynetx_a", "anynetx_e"], "n": 2, "flops": "-40M",
                                   "data": {"name": "digits", "res": 8},
                                   "train": {"epochs": 2, "batch_size": 256, "lr": 0.1, "warmup": 0}}))
    out = tmp_path / "run"
    code, so, err = run_cli("run", exp, "--out", out)
    assert code == 0, err
    assert {"results.jsonl", "results.parquet", "edf.png", "report.html"} <= {p.name for p in out.iterdir()}
    df = dse.load_results(out)
    assert len(df) == 4 and set(df["space"]) == {"anynetx_a", "anynetx_e"}
    assert "anynetx_a" in so and "report" in so
    rows = (out / "results.jsonl").read_bytes()
    (out / "report.html").write_text("old")
    code, _, err = run_cli("run", exp, "--out", out)  # again: nothing retrained, outputs refreshed
    assert code == 0, err
    assert (out / "results.jsonl").read_bytes() == rows
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    other = tmp_path / "other.yaml"
    other.write_text(exp.read_text().replace("n: 2", "n: 3"))
    code, _, err = run_cli("run", other, "--out", out)
    assert code == 1 and "different experiment" in err
    assert (out / "results.jsonl").read_bytes() == rows


def test_same_space_from_two_runs_stays_apart(tmp_path, run_cli):
    for name in ("recipe_a", "recipe_b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text(QUICK.read_text())
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
