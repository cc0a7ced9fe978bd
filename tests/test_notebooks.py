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


SHIPPED = {"main": "main_results.jsonl", "main_fashion": "main_fashion_results.jsonl", "fixres": "fixres_results.jsonl",
           "progressive": "progressive_results.jsonl", "efficientnet_scaling": "efficientnet_scaling_results.jsonl",
           "efficientnet_grid_fmnist": "efficientnet_grid_fmnist_results.jsonl",
           "efficientnet_scaling_b32": "efficientnet_scaling_b32_results.jsonl"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_results_match_the_experiment_they_claim(name):
    """notebooks/data/<name>_results.jsonl says it is a run of experiments/<name>.yaml with this dse: every row's
    recipe (its arm's), test view, data, band and dse version match, and it holds every planned trial once."""
    import dse
    from dse.results import read_rows, trial_key
    from dse.run.experiment import load
    from dse.run.plan import plan, points

    exp = load(NB.parent / "experiments" / f"{name}.yaml")
    rows = read_rows(NB / "data" / SHIPPED[name])
    assert f"experiments/{name}.yaml" in (NB / "data" / "README.md").read_text()
    pts = points(exp, plan(exp))
    want = {trial_key(p["sample"]["id"], p["repeat"], p.get("arm")) for p in pts}
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) and want <= set(keys)
    assert len(keys) - len(want) == min(exp.noise.models, len(plan(exp))) * exp.noise.repeats  # the noise repeats
    for r in rows:
        e = exp.arm(r.get("arm"))
        assert r["exp"] == exp.name and r["recipe"] == e.train.to_dict(), r["key"]
        assert r.get("eval", {"crop": "none", "resize": 1.143}) == {"crop": e.eval.crop, "resize": e.eval.resize}
        assert {k: r["data"].get(k) for k in ("name", "val_frac")} == {"name": e.data.name, "val_frac": e.data.val_frac}
        assert r["data"]["res"] == (e.data.res if e.data.res != "net" else r["train_res"]), r["key"]
        if e.data.n_train is not None:
            assert r["data"]["n_train"] == e.data.n_train
        assert r["band"] == ({m: list(b) for m, b in exp.bands.items()} or None) and r["n_planned"] == (exp.n or None)
        assert r["dse"] == dse.__version__, f"shipped with dse {r['dse']}, installed {dse.__version__}: regenerate"
