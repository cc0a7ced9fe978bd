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
