"""dse analyze: Spearman of each epoch's val error with the final error, against scipy on hand-made tables."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from dse.analysis.rank import epoch_rank
from dse.errors import DseError

# space a: 4 models, 3 epochs; space b: unequal epoch counts (3, 2, 3, 1); one failed row that must not count
ROWS = [
    {"id": "a1", "space": "a", "status": "ok", "error": 12.0, "errors": [80.0, 30.0, 12.0]},
    {"id": "a2", "space": "a", "status": "ok", "error": 15.0, "errors": [60.0, 40.0, 15.0]},
    {"id": "a3", "space": "a", "status": "ok", "error": 9.0, "errors": [70.0, 20.0, 9.0]},
    {"id": "a4", "space": "a", "status": "ok", "error": 30.0, "errors": [90.0, 50.0, 30.0]},
    {"id": "b1", "space": "b", "status": "ok", "error": 20.0, "errors": [50.0, 25.0, 20.0]},
    {"id": "b2", "space": "b", "status": "ok", "error": 11.0, "errors": [55.0, 11.0]},
    {"id": "b3", "space": "b", "status": "ok", "error": 40.0, "errors": [45.0, 42.0, 40.0]},
    {"id": "b4", "space": "b", "status": "ok", "error": 25.0, "errors": [65.0]},
    {"id": "x", "space": "a", "status": "failed", "error": None, "errors": [10.0]},
]


def expected(rows):
    """(space, epoch) -> (n, rho, p) by scipy on the rows that have that epoch."""
    ok = [r for r in rows if r["status"] == "ok"]
    out = {}
    for space in ["a", "b", "all"]:
        rs = [r for r in ok if space in ("all", r["space"])]
        for k in range(max(len(r["errors"]) for r in rs)):
            have = [r for r in rs if len(r["errors"]) > k]
            x, y = [r["errors"][k] for r in have], [r["error"] for r in have]
            res = spearmanr(x, y) if len(have) >= 2 else None
            # no p-value below 4 models (scipy gives 0 at n = 2, which is not a p-value)
            out[space, k + 1] = (len(have), res.statistic if res else math.nan,
                                 res.pvalue if res and len(have) >= 4 else math.nan)
    return out


def test_against_scipy():
    t = epoch_rank(pd.DataFrame(ROWS))
    assert list(t.columns) == ["space", "epoch", "n", "rho", "p"]
    exp = expected(ROWS)
    assert [(s, e) for s, e in zip(t["space"], t["epoch"])] == list(exp)
    for _, r in t.iterrows():
        n, rho, p = exp[r["space"], r["epoch"]]
        assert r["n"] == n
        np.testing.assert_allclose([r["rho"], r["p"]], [rho, p], rtol=1e-12, equal_nan=True)
    # by hand: epoch 3 of space b has b1, b3 only (n 2); epoch 2 of b ranks 25, 11, 42 as the finals 20, 11, 40
    assert t.set_index(["space", "epoch"]).loc[("b", 3), "n"] == 2
    assert t.set_index(["space", "epoch"]).loc[("b", 2), "rho"] == pytest.approx(1.0)
    assert t.set_index(["space", "epoch"]).loc[("all", 1), "n"] == 8


def test_monotone_is_one():
    """Every epoch's error a strictly increasing function of the final: rho == 1 at every epoch."""
    fin = np.array([5.0, 9.0, 2.0, 7.0, 30.0])
    rows = [{"id": str(i), "space": "s", "error": f, "errors": [f * 3 + 10, f**2, f]} for i, f in enumerate(fin)]
    t = epoch_rank(pd.DataFrame(rows))
    assert t["rho"].tolist() == pytest.approx([1.0] * 6, abs=1e-12)  # s and all, 3 epochs each
    assert (t["n"] == 5).all()
    rows = [{**r, "errors": [-e for e in r["errors"]]} for r in rows]  # reversed order: rho == -1
    assert epoch_rank(pd.DataFrame(rows))["rho"].tolist() == pytest.approx([-1.0] * 6, abs=1e-12)


def test_small_and_constant_groups_are_nan():
    rows = [{"id": "1", "space": "s", "error": 1.0, "errors": [5.0, 1.0]},
            {"id": "2", "space": "s", "error": 2.0, "errors": [5.0]},
            {"id": "3", "space": "t", "error": 3.0, "errors": [4.0, np.nan]}]
    t = epoch_rank(pd.DataFrame(rows)).set_index(["space", "epoch"])
    assert t.loc[("s", 1), "n"] == 2 and math.isnan(t.loc[("s", 1), "rho"])  # constant epoch-1 errors
    assert t.loc[("s", 2), "n"] == 1 and math.isnan(t.loc[("s", 2), "rho"])
    assert t.loc[("t", 2), "n"] == 0  # a NaN epoch error drops the row from that epoch


def test_errors():
    with pytest.raises(DseError, match="no per-epoch errors"):
        epoch_rank(pd.DataFrame([{"id": "1", "space": "s", "error": 1.0}]))
    with pytest.raises(DseError, match="no finished rows"):
        epoch_rank(pd.DataFrame([ROWS[-1]]))
    with pytest.raises(DseError, match="row '1': 'errors' must be a list of numbers"):
        epoch_rank(pd.DataFrame([{"id": "1", "space": "s", "error": 1.0, "errors": "[1, 2"}]))


def test_csv_text_cells(tmp_path):
    """results.csv keeps list cells as JSON text; load_results decodes them, so the ranks are the same."""
    import dse

    p = tmp_path / "results.csv"
    pd.DataFrame(ROWS).assign(errors=lambda d: d["errors"].map(json.dumps)).to_csv(p, index=False)
    pd.testing.assert_frame_equal(epoch_rank(dse.load_results(p)), epoch_rank(pd.DataFrame(ROWS)))
    bad = tmp_path / "bad.csv"
    bad.write_text('id,space,error,errors\n1,s,1.0,"[1, 2"\n')
    with pytest.raises(DseError, match="bad.csv: corrupt cell in column 'errors'"):
        dse.load_results(bad)


def test_cli(run_cli, tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    code, out, err = run_cli("analyze", p, "--json")
    assert code == 0, err
    rec = json.loads(out)
    exp = expected(ROWS)
    assert [(r["space"], r["epoch"], r["n"]) for r in rec] == [(s, e, v[0]) for (s, e), v in exp.items()]
    code, out, _ = run_cli("analyze", p)
    assert code == 0 and out.split()[:5] == ["space", "epoch", "n", "rho", "p"]
    code, out, err = run_cli("analyze", tmp_path / "missing")
    assert code == 1 and out == "" and "dse: error:" in err
