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
    """dse module -> the dse modules it imports (at any level, lazy imports too)."""
    import ast

    root = path.parent
    mods = {".".join(f.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): f
            for f in root.rglob("*.py")}
    graph = {}
    for name, f in mods.items():
        pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                deps |= {f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names}
        graph[name] = deps & set(mods)
    return graph


def test_no_import_cycle_and_scaling_is_a_leaf():
    graph = _imports(Path(dse.__file__))
    assert graph["dse.scaling"] <= {"dse.errors"}  # pure rules: it loads no space (it did: api -> ... -> scaling -> api)
    # packages (dse, dse.models) run their __init__ first anyway; between modules there is no cycle
    graph = {k: v - {"dse", "dse.models", k} for k, v in graph.items() if k not in ("dse", "dse.models")}
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
