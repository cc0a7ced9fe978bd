"""The notebooks run top to bottom on the shipped results file, and are stored without outputs."""
from pathlib import Path

import nbformat
import pytest

NB = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["fit_quantized_linear_widths.ipynb", "compare_design_spaces.ipynb"]


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name):
    nb = nbformat.read(NB / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks its inline backend, as in Jupyter
    nb = nbformat.read(NB / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB)}}).execute()
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outs if o.output_type == "error"]
    images = [o for o in outs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the figures were drawn


def test_shipped_results_match_the_experiment_they_claim():
    """notebooks/data/main_results.jsonl says it is a run of experiments/main.yaml with this dse: check every row."""
    import dse
    from dse.run.experiment import load
    from dse.results import read_rows

    exp = load(NB.parent / "experiments" / "main.yaml")
    rows = read_rows(NB / "data" / "main_results.jsonl")
    assert "experiments/main.yaml" in (NB / "data" / "README.md").read_text()
    prim = [r for r in rows if r["repeat"] == 0]
    assert len(prim) == exp.n * len(exp.spaces) and len(rows) - len(prim) == exp.noise.models * exp.noise.repeats
    for r in rows:
        assert r["exp"] == exp.name and r["recipe"] == exp.train.to_dict(), r["key"]
        assert {k: r["data"][k] for k in ("name", "res", "val_frac")} == \
               {"name": exp.data.name, "res": exp.data.res, "val_frac": exp.data.val_frac}, r["key"]
        assert r["band"] == {m: list(b) for m, b in exp.bands.items()} and r["n_planned"] == exp.n
        assert r["dse"] == dse.__version__, f"shipped with dse {r['dse']}, installed {dse.__version__}: regenerate"
    assert {r["space"] for r in rows} == set(exp.spaces)
    assert [r["id"] for r in prim if r["space"] == exp.spaces[0]] != []
