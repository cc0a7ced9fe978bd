"""`dse fit`: one model's widths (--widths), a sweep's models (RUN --top K), fit_results / fit_summary, bad input."""
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from dse.analysis.fit import fit_results, fit_summary, parse_widths
from dse.errors import DseError


def rule(d, w0, wa, wm, q=8):
    """The paper's quantized linear rule written out here (independent of dse.regnet): u_j, s_j, w_j."""
    u = w0 + wa * np.arange(d)
    s = np.round(np.log(u / w0) / np.log(wm))
    return (q * np.round(w0 * wm**s / q)).astype(int)


def runs(ws):
    """Stage depths and widths: runs of equal consecutive widths."""
    g = [(w, len(list(r))) for w, r in itertools.groupby(ws)]
    return [n for _, n in g], [w for w, _ in g]


def widths_arg(ws):
    return "--widths=" + ",".join(map(str, ws))


def fit_json(run_cli, ws):
    code, out, err = run_cli("fit", widths_arg(ws), "--json")
    assert code == 0, err
    return json.loads(out)


# ---------------------------------------------------------------- --widths against the pycls zoo

def test_x400mf_adjusted_widths_json(run_cli, ref):
    """RegNetX-400MF's published stages [32, 64, 160, 384] x [1, 2, 7, 12] (after the group adjustment)."""
    m = ref["models"]["RegNetX-400MF"]
    ws = np.repeat(m["ws"], m["ds"])
    rec = fit_json(run_cli, ws)
    assert list(rec) == ["d", "w0", "wa", "wm", "e_fit", "widths"]
    assert rec["d"] == m["d"] == 22
    assert runs(rec["widths"])[0] == m["ds"]  # the fit keeps the published stage depths
    assert rec["widths"] == rule(rec["d"], rec["w0"], rec["wa"], rec["wm"]).tolist()  # self-consistent
    assert rec["e_fit"] == pytest.approx(np.abs(np.log(ws / np.array(rec["widths"]))).mean(), abs=1e-12)
    # the published (w0, wa, wm) reproduce the widths only up to the adjustment; the fit is at least as good
    e_pub = np.abs(np.log(ws / rule(m["d"], m["w0"], m["wa"], m["wm"]))).mean()
    assert 0 < rec["e_fit"] <= e_pub + 1e-12 and rec["e_fit"] < 0.03


@pytest.mark.parametrize("name", ["RegNetX-400MF", "RegNetX-1.6GF", "RegNetY-800MF"])
def test_zoo_rule_widths_regenerated_exactly(run_cli, ref, name):
    """Widths made by the published parameters (before the group adjustment) come back with e_fit 0 and w0."""
    m = ref["models"][name]
    ws = rule(m["d"], m["w0"], m["wa"], m["wm"])
    rec = fit_json(run_cli, ws)
    assert rec["e_fit"] == 0 and rec["widths"] == ws.tolist() and rec["w0"] == m["w0"]


def test_x200mf_published_widths_exact(run_cli, ref):
    """g = 8 leaves X-200MF quantized-linear: the published stages are regenerated exactly."""
    m = ref["models"]["RegNetX-200MF"]
    ws = np.repeat(m["ws"], m["ds"]).tolist()
    rec = fit_json(run_cli, ws)
    assert rec["e_fit"] == 0 and rec["widths"] == ws
    assert runs(rec["widths"]) == (m["ds"], m["ws"])


def test_widths_text_table(run_cli):
    code, out, _ = run_cli("fit", "--widths", "24,56,56,152,152,152,152")
    assert code == 0
    head, cols, *body = out.strip().splitlines()
    kv = dict(zip(head.split()[::2], head.split()[1::2]))
    assert set(kv) == {"d", "w0", "wa", "wm", "e_fit"} and kv["d"] == "7" and float(kv["e_fit"]) == 0
    assert cols.split() == ["j", "w", "u", "s", "w_fit"]
    w0, wa = float(kv["w0"]), float(kv["wa"])
    for j, line in enumerate(body):
        jj, w, u, s, wf = line.split()
        assert int(jj) == j and float(u) == pytest.approx(w0 + wa * j, abs=0.01)  # u_j = w0 + wa j
        assert int(w) == int(wf)  # exact fit


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("w", ["8,x", "0", "-8", "", "8,,16", "8.5", "8,0", " ", "²"])
def test_bad_widths(run_cli, w):
    code, out, err = run_cli("fit", f"--widths={w}")
    assert code == 1 and out == ""
    assert err.startswith("dse: error: --widths: expected positive integers") and err.count("\n") == 1


def test_parse_widths():
    assert parse_widths(" 8, 16,24 ") == [8, 16, 24]
    with pytest.raises(DseError):
        parse_widths("8;16")


def results(tmp_path, rows, name="r.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


# error, widths with e_fit known by hand: quantized-linear (0), [50, 50] -> 48 (log(50/48) / 1 per block, mean over
# 2 blocks = log(50/48)), [48, 48, 32, 512, 512] (the 32 cannot be followed: log(48/32) / 5)
E1, E2 = math.log(50 / 48), math.log(1.5) / 5
ROWS = [
    {"id": "a", "space": "s", "status": "ok", "error": 10.0, "ws": rule(13, 24, 36.44, 2.49).tolist()},  # w0 24
    {"id": "b", "space": "s", "status": "ok", "error": 20.0, "ws": rule(14, 56, 38.84, 2.4).tolist()},  # w0 56
    {"id": "c", "space": "s", "status": "ok", "error": 30.0, "ws": [50, 50]},
    {"id": "d", "space": "s", "status": "ok", "error": 40.0, "ws": [48, 48, 32, 512, 512]},
    {"id": "e", "space": "s", "status": "ok", "error": 50.0, "ws": [64] * 5},  # constant: w0 64, e_fit 0
    {"id": "f", "space": "s", "status": "failed", "error": None, "ws": [8, 16]},
]
EFIT = {"a": 0, "b": 0, "c": E1, "d": E2, "e": 0}


def test_fit_results_order_columns_and_values(tmp_path):
    import dse

    df = dse.load_results(results(tmp_path, ROWS))
    t = fit_results(df)
    assert list(t.columns) == ["id", "space", "error", "d", "w0", "wa", "wm", "e_fit", "widths"]
    assert t["id"].tolist() == ["a", "b", "c", "d", "e"]  # best first, the failed row left out
    assert t["e_fit"].to_numpy() == pytest.approx([EFIT[i] for i in t["id"]], abs=1e-12)
    assert t["d"].tolist() == [13, 14, 2, 5, 5]
    assert fit_results(df, top=2)["id"].tolist() == ["a", "b"]
    assert fit_results(df, ids=["e", "c"])["id"].tolist() == ["c", "e"]  # ranked
    assert fit_results(df.assign(reward=-df["error"]), metric="reward")["id"].tolist() == ["a", "b", "c", "d", "e"]


def test_fit_summary_against_scipy(tmp_path):
    import dse

    t = fit_results(dse.load_results(results(tmp_path, ROWS)))
    s = fit_summary(t, k=2)
    err = [10, 20, 30, 40, 50]
    ref = spearmanr([EFIT[i] for i in "abcde"], err)
    assert (s["n"], s["k"]) == (5, 2)
    assert s["rho"] == pytest.approx(ref.statistic) and s["p"] == pytest.approx(ref.pvalue)
    assert s["e_fit_top"] == 0 and s["e_fit_rest"] == pytest.approx(E1)  # median of (E1, E2, 0) = E1
    # top 2 are exact fits with the published w0 (24, 56): numpy's linear quantiles 32, 40, 48
    assert (s["w0_q25"], s["w0_q50"], s["w0_q75"]) == (32, 40, 48)
    assert fit_summary(t)["k"] == 1  # default: the best 10%, at least one


def test_cli_run_json_and_text(run_cli, tmp_path):
    p = results(tmp_path, ROWS)
    code, out, err = run_cli("fit", p, "--top", "2", "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert [r["id"] for r in rec["fits"]] == ["a", "b"] and rec["fits"][0]["widths"] == ROWS[0]["ws"]
    (summ,) = rec["summary"]  # one summary per space (this table has one)
    assert summ["space"] == "s" and summ["n"] == 5 and summ["k"] == 2  # the summary covers all finished rows
    assert summ["rho"] == pytest.approx(spearmanr([EFIT[i] for i in "abcde"], range(5)).statistic)
    code, out, _ = run_cli("fit", p, "--top", "3")
    assert code == 0
    assert "spearman(e_fit, error)" in out and "median e_fit: top 3" in out
    ids = [line.split()[0] for line in out.splitlines()[1:4]]
    assert ids == ["a", "b", "c"]  # the table: the top 3, best first
    code, out, _ = run_cli("fit", p, "--id", "d", "--json")
    rec = json.loads(out)
    assert [r["id"] for r in rec["fits"]] == ["d"] and rec["summary"] is None
    assert rec["fits"][0]["e_fit"] == pytest.approx(E2)


def test_csv_results(tmp_path):
    """results.csv keeps list cells as JSON text."""
    import dse

    df = dse.load_results(results(tmp_path, ROWS))
    csv = tmp_path / "r.csv"
    df.assign(ws=df["ws"].map(json.dumps)).to_csv(csv, index=False)
    t = fit_results(dse.load_results(csv))
    assert t["e_fit"].to_numpy() == pytest.approx([EFIT[i] for i in "abcde"], abs=1e-12)


def test_samples_file(run_cli, tmp_path):
    """A file from `dse sample` (stages, no error): every row is fitted in file order; --top needs a metric."""
    out = tmp_path / "s.jsonl"
    code, _, err = run_cli("sample", "--space", "regnetx", "--flops", "360-400M", "-n", "6", "-o", out, "-q",
                           "--workers", "1")
    assert code == 0, err
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    code, stdout, err = run_cli("fit", out, "--json")
    assert code == 0, err
    got = json.loads(stdout)
    assert got["summary"] is None and [r["id"] for r in got["fits"]] == [r["id"] for r in recs]
    for r, f in zip(recs, got["fits"]):
        ws = np.repeat([s["w"] for s in r["stages"]], [s["d"] for s in r["stages"]])
        assert f["d"] == len(ws)
        assert f["e_fit"] == pytest.approx(np.abs(np.log(ws / np.array(f["widths"]))).mean(), abs=1e-12)
        assert f["e_fit"] < 0.1  # sampled RegNets: quantized-linear up to the group adjustment
    code, _, err = run_cli("fit", out, "--top", "2")
    assert code == 1 and "needs a metric" in err and "no 'error' column" in err


def test_run_errors(run_cli, tmp_path):
    p = results(tmp_path, ROWS)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    corrupt = results(tmp_path, ROWS[:1], "c.jsonl")
    corrupt.write_text(corrupt.read_text() + "{not json\n" + json.dumps(ROWS[1]) + "\n")
    failed = results(tmp_path, [ROWS[-1]], "f.jsonl")
    nows = results(tmp_path, [{"id": "x", "space": "s", "status": "ok", "error": 1.0}], "n.jsonl")
    cases = [
        (("fit",), "nothing to fit"),
        (("fit", p, "--widths", "8,16"), "not both"),
        (("fit", "--widths", "8,16", "--top", "2"), "do not apply to --widths"),
        (("fit", p, "--id", "a", "zzz"), "unknown id 'zzz'"),
        (("fit", empty), "empty"),
        (("fit", corrupt), "corrupt line"),
        (("fit", failed), "no finished rows"),
        (("fit", nows), "model x: row 'x' has no widths"),
        (("fit", p, "--top", "0"), "positive integer"),
        (("fit", tmp_path / "missing.jsonl"), "no such results file"),
        (("fit", "--widths", "8,16", "-q", "0"), "q must be a positive integer"),
    ]
    for args, msg in cases:
        code, out, err = run_cli(*args)
        assert code == 1 and out == "", args
        assert err.startswith("dse: error: ") and msg in err and err.count("\n") == 1, (args, err)


# ---------------------------------------------------------------- -o figures (dse.analysis.plots)

def test_figures(run_cli, tmp_path):
    pytest.importorskip("dse.analysis.plots")
    one, many = tmp_path / "one.png", tmp_path / "many.svg"
    code, out, err = run_cli("fit", "--widths", "24,56,56,152", "-o", one)
    assert code == 0, err
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {one}" in out
    code, out, err = run_cli("fit", results(tmp_path, ROWS), "--json", "-o", many)
    assert code == 0, err
    json.loads(out)  # stdout stays pure JSON
    assert b"<svg" in many.read_bytes()
    before = one.read_bytes()
    code, out, err = run_cli("fit", "--widths", "8,16", "-o", one)  # exists, no --force: refused before fitting
    assert code == 1 and out == "" and "already exists" in err and one.read_bytes() == before
    assert run_cli("fit", "--widths", "8,16", "-o", one, "--force")[0] == 0 and one.read_bytes() != before
    samples = results(tmp_path, [{"id": "x", "space": "s", "ws": [8, 16]}], "s.jsonl")
    code, out, err = run_cli("fit", samples, "-o", tmp_path / "s.png")
    assert code == 1 and out == "" and not (tmp_path / "s.png").exists() and "does not have" in err


def test_results_dataframe_is_not_modified(tmp_path):
    import dse

    df = dse.load_results(results(tmp_path, ROWS))
    before = df.copy()
    fit_results(df)
    pd.testing.assert_frame_equal(df, before)
