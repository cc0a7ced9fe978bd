"""Built models read like pycls's: RegNet state dicts have pycls's keys and shapes in pycls's order (tests/data)."""
import json
from pathlib import Path

import pytest
import torch

import dse

KEYS = json.loads((Path(__file__).parent / "data" / "pycls_state_dict_keys.json").read_text())


def zoo(name: str):
    """RegNetX-400MF -> the regnetx space's 400mf preset."""
    family, preset = name.lower().split("-")
    return dse.describe(family, preset=preset).config


@pytest.mark.parametrize("name", sorted(KEYS["models"]))
def test_regnet_state_dict_is_pycls(name):
    want = [(k, list(s)) for k, s in KEYS["models"][name]]
    model = dse.build(zoo(name))
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == want
    # a pycls checkpoint's model_state (made here from the key list) loads strictly
    state = {k: torch.full(s, 0.5) if s else torch.tensor(7) for k, s in want}
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.head.fc.bias.detach(), torch.full((1000,), 0.5))


def test_named_structure():
    m = dse.build(dse.describe("efficientnetv2", preset="s").config)
    names = [n for n, _ in m.named_children()]
    assert names == ["stem", "s1", "s2", "s3", "s4", "s5", "s6", "head"]
    assert [n for n, _ in m.s6.named_children()] == [f"b{i}" for i in range(1, 16)]
    keys = m.state_dict().keys()
    assert {"s1.b1.conv.weight", "s2.b1.exp.weight", "s2.b1.lin_proj_bn.bias", "s4.b1.dwise.weight",
            "s4.b1.se.f_ex.0.weight", "head.conv.weight", "head.fc.weight"} <= set(keys)


def _imports(path: Path) -> dict[str, set[str]]:
    """dse module -> the dse modules it imports (at any level, lazy imports too; relative and absolute). `from dse
    import __version__` is left out: a constant of the root package, whose __init__ has run before any module."""
    import ast

    root = path.parent
    mods = {".".join(f.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): f
            for f in root.rglob("*.py")}
    graph = {}
    for name, f in mods.items():
        pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target == "dse" and [a.name for a in node.names] == ["__version__"]:
                    continue
                deps |= {f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = deps & set(mods)
    return graph


def test_no_import_cycle_and_scaling_is_a_leaf():
    graph = _imports(Path(dse.__file__))
    assert graph["dse.space.scaling"] <= {"dse.errors"}  # pure rules: it loads no space (it did once, via api)
    # packages run their __init__ first anyway; between modules there is no cycle
    packages = {k for k in graph if (Path(dse.__file__).parent.parent / k.replace(".", "/") / "__init__.py").exists()}
    graph = {k: v - packages - {k} for k, v in graph.items() if k not in packages}
    state = {}

    def visit(m, path):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, " -> ".join(path + [d])
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


# The layers, lowest first: a module imports modules of its own layer or of lower ones, never of a higher one, nor
# of the other layer of its rank (data and analysis know nothing of each other). errors, io, progress and results are
# the base every layer uses (space files are read through io, a prepared cache shows progress, models are written
# through io, and space, models and analysis read results tables: the contract between run and analysis). models
# sits below space: the band sampler counts every draw with dse.models.complexity and families build Nets from the
# block registry, while models need nothing from a space (named models, presets of spaces, are dse.space.zoo).
# analysis reads results tables (and the spaces' rules: the width rule, a space's ranges) and sits below train and
# run, so it imports nothing that trains; run imports it (dse run writes the report, dse status the medians).
LAYERS = {  # layer: (rank, its top-level modules and subpackages)
    "base": (0, ("dse.errors", "dse.io", "dse.progress", "dse.results")),
    "models": (1, ("dse.models",)),
    "space": (2, ("dse.space",)),
    "data": (3, ("dse.data",)),
    "analysis": (3, ("dse.analysis",)),
    "train": (4, ("dse.train",)),
    "run": (5, ("dse.run",)),
    "top": (6, ("dse", "dse.__main__", "dse.cli", "dse.regnet")),  # the root API, the command, deprecated aliases
}


def _layer(module: str) -> str:
    """The layer of a module: the one that lists it (a top-level module) or its subpackage."""
    sub = ".".join(module.split(".")[:2])
    for name, (_, members) in LAYERS.items():
        if module in members or sub in members and sub != module:
            return name
    raise AssertionError(f"{module}: in no layer (add it to LAYERS)")


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """The imports that break the layering."""
    return [f"{m} ({_layer(m)}) imports {d} ({_layer(d)})" for m, deps in sorted(graph.items()) for d in sorted(deps)
            if _layer(d) != _layer(m) and LAYERS[_layer(d)][0] >= LAYERS[_layer(m)][0]]


def test_layers():
    graph = _imports(Path(dse.__file__))
    assert _upward(graph) == []
    # the rule can fail: an upward import, and one between the two packages of layer 3
    assert _upward({"dse.space.sampler": {"dse.run.plan"}, "dse.analysis.edf": {"dse.data.core"},
                    "dse.run.plan": {"dse.space.sampler"}}) == [
        "dse.analysis.edf (analysis) imports dse.data.core (data)",
        "dse.space.sampler (space) imports dse.run.plan (run)"]
    # each subpackage is in pyproject's package list (an installed dse has every one)
    import re

    root = Path(dse.__file__).parent.parent
    listed = re.search(r"^packages = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.M).group(1)
    assert {m for m in graph if (root / m.replace(".", "/")).is_dir()} <= set(re.findall(r'"([\w.]+)"', listed))


def test_old_regnet_path_warns_and_still_works():
    # the one old module path a notebook used (dse 0.3 moved the width rule to dse.space.regnet)
    import importlib
    import sys

    import dse.space.regnet

    sys.modules.pop("dse.regnet", None)
    with pytest.warns(DeprecationWarning, match=r"dse\.regnet is deprecated: import from dse\.space\.regnet"):
        old = importlib.import_module("dse.regnet")
    assert old.quantized_widths is dse.space.regnet.quantized_widths


# ---------------------------------------------------------------- named models

ZOO = ([f"regnet{v}_{p}" for v in "xy" for p in ("200mf", "400mf", "600mf", "800mf", "1.6gf", "3.2gf", "4.0gf",
                                                   "6.4gf", "8.0gf", "12gf", "16gf", "32gf")]
       + [f"efficientnet_b{i}" for i in range(8)] + ["efficientnetv2_s", "efficientnetv2_m", "efficientnetv2_l"])


def test_list_models():
    assert dse.list_models() == ZOO
    assert dse.list_models("regnety_*") == ZOO[12:24]
    assert dse.list_models("EfficientNet_B[0-1]") == ["efficientnet_b0", "efficientnet_b1"]
    assert dse.list_models("resnet*") == []


@pytest.mark.parametrize("name", ZOO)
def test_create_model_for_every_preset(name):
    with torch.device("meta"):  # structure and sizes without allocating the big ones
        m = dse.create_model(name, num_classes=10)
    cfg = dse.space.zoo.config(name)
    assert m.head.fc.out_features == 10 and m.net == cfg.net.replace(classes=10)
    assert sum(p.numel() for p in m.parameters()) == dse.complexity(cfg.net.replace(classes=10)).params


def test_names_match_published_counts(ref):
    # pycls's names work too; the counts are pycls's published ones (tests/data)
    for name, m in ref["models"].items():
        with torch.device("meta"):
            model = dse.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == m["params"], name
    assert type(dse.build("regnetx_400mf")).__name__ == "Network"  # was AttributeError: 'str' ... 'in_ch'


def test_unknown_model_name():
    with pytest.raises(dse.DseError, match=r"unknown model 'regnetx_400m'; closest: regnetx_400mf"):
        dse.create_model("regnetx_400m")


def test_pycls_checkpoint_loads_strictly(tmp_path):
    keys = KEYS["models"]["RegNetX-200MF"]
    state = {k: torch.randn(s) if s else torch.tensor(3) for k, s in keys}
    f = tmp_path / "RegNetX-200MF_dds_8gpu.pyth"
    torch.save({"epoch": 100, "model_state": state, "optimizer_state": {}}, f)  # pycls's checkpoint layout
    m = dse.create_model("regnetx_200mf", checkpoint=f)
    assert torch.equal(m.s3.b2.f.b.weight.detach(), state["s3.b2.f.b.weight"])
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)
    assert torch.equal(dse.create_model("regnetx_200mf", checkpoint=plain).head.fc.bias.detach(), state["head.fc.bias"])
    with pytest.raises(dse.DseError, match=r"plain.pt: the weights do not fit regnetx_400mf \("):
        dse.create_model("regnetx_400mf", checkpoint=plain)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A sweep folder as the sweep leaves it: plan.jsonl, results.jsonl (one finished row), weights/<id>.pt."""
    from dse.models.export import save_weights

    d = tmp_path_factory.mktemp("run")
    recs = [s.to_dict() for s in dse.sample("anynetx_a", 2, flops=(None, 40e6), seed=0)]
    (d / "plan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = [{**r, "status": "ok", "error": e, "repeat": 0, "train_res": 12,
             "recipe": {"epochs": 1, "lr": 0.2}, "data": {"name": "digits", "res": 12, "classes": 10}}
            for r, e in zip(recs, (30.0, 20.0))]
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "weights").mkdir()
    torch.manual_seed(0)
    model = dse.build(dse.Config.from_dict(recs[1]), res=12, classes=10)
    for m in model.modules():  # non-trivial BN statistics, so the check below sees them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    save_weights(d / "weights" / f"{recs[1]['id']}.pt", recs[1], model.state_dict())  # as the trial writes it
    return d, recs, model.eval()


def test_create_model_from_a_sweep_sample(run):
    d, recs, _ = run
    for where in (d, d / "results.jsonl"):
        m = dse.create_model(f"{where}:{recs[0]['id'][:6]}", num_classes=10)
        assert m.net == dse.Config.from_dict(recs[0]).net.replace(classes=10)
    with pytest.raises(dse.DseError, match="'zzz' is not a sample id"):
        dse.create_model(f"{d}:zzz")


def test_export_then_load_gives_the_same_outputs(run, run_cli, tmp_path):
    d, recs, model = run
    out = tmp_path / "best.pt"
    code, stdout, err = run_cli("export", d, "--best", "-o", out)
    assert code == 0 and f"wrote {out}" in stdout, err
    loaded = dse.load_model(out)  # no other argument
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.config.id == recs[1]["id"] and loaded.net.res == 12 and loaded.net.classes == 10
    assert loaded.meta["recipe"] == {"epochs": 1, "lr": 0.2} and loaded.meta["result"]["error"] == 20.0
    # a sweep's weights file loads the same way
    with torch.no_grad():
        assert torch.equal(dse.load_model(d / "weights" / f"{recs[1]['id']}.pt")(x), model(x))


def test_export_errors(run, run_cli, tmp_path):
    d, recs, _ = run

    def one_line(args, *needles):
        code, out, err = run_cli("export", *args)
        assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        for n in needles:
            assert n in err, (n, err)

    one_line([d, "--id", recs[0]["id"]], "no kept weights for " + recs[0]["id"])
    one_line([d, "--id", "zzz"], "--id: 'zzz' is not a sample id")
    absent = next(h for h in "0123456789abcdef" if not any(r["id"].startswith(h) for r in recs))
    one_line([d, "--id", absent], f"no model with id '{absent}'")
    one_line([d], "one of the arguments --id --best is required")
    (tmp_path / "x.pt").write_text("keep")
    one_line([d, "--best", "-o", tmp_path / "x.pt"], "already exists")
    assert (tmp_path / "x.pt").read_text() == "keep"
