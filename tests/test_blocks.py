"""The block registry: each block type's counter against its module (torch numels, fvcore), a toy block added as one
entry, and load-time checks that a space names only what can be built."""
import pytest
import torch

import dse
from dse.cli.space import stage_table
from dse.models.complexity import complexity, count
from dse.models.config import Net, Stage
from dse.errors import DseError
from dse.models.blocks import ACTS, BLOCKS, Block
from dse.models.cx import add, conv_bn_cx

# Per block type, a small net whose stages hit each branch of its counter: projection with and without stride,
# identity repeats, SE on and off, bottleneck 2, expansion 1 (no expand conv / a single fused conv), kernel 5;
# odd sizes (res 30: 15, 8, 4, ...) check the rounding of strided convs.
CASES = {
    "x": Net(stages=(Stage(d=2, w=24, stride=2, b=1, g=8), Stage(d=1, w=24, stride=1, b=2, g=4, se=0.25),
                     Stage(d=1, w=48, stride=1, b=1, g=16), Stage(d=1, w=56, stride=2, b=1, g=56, se=0.25)),
             stem_w=16, res=30, classes=10),
    "mb": Net(stages=(Stage(d=1, w=16, stride=1, block="mb", e=1, k=3, se=0.25),
                      Stage(d=2, w=24, stride=2, block="mb", e=6, k=5, se=0.25),
                      Stage(d=1, w=32, stride=1, block="mb", e=4, k=3)),
              stem_w=16, head_w=64, res=30, classes=10, act="silu", dropout=0.2),
    "fmb": Net(stages=(Stage(d=2, w=16, stride=1, block="fmb", e=1, k=3),
                       Stage(d=1, w=24, stride=2, block="fmb", e=4, k=3, se=0.25),
                       Stage(d=2, w=24, stride=1, block="fmb", e=4, k=5)),
               stem_w=16, head_w=64, res=30, classes=10, act="silu"),
}


def test_every_block_type_has_a_case():
    assert set(CASES) == set(BLOCKS)


def agree(net: Net) -> None:
    """The analytic count of a net equals torch's parameter numels and fvcore's flops/acts of its module."""
    torch.manual_seed(0)
    model = dse.build(net)
    want = complexity(net)
    assert want.params == sum(p.numel() for p in model.parameters())
    assert count(model, (3, net.res, net.res)) == want
    assert model(torch.zeros(2, 3, net.res, net.res)).shape == (2, net.classes)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_counter_agrees_with_module(kind):
    agree(CASES[kind])


def test_x_block_last_bn_starts_at_zero():
    model = dse.build(CASES["x"])
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert bool((m.weight == 0).all()) == name.endswith(".f.c_bn"), name


# ---------------------------------------------------------------- a new block type is one entry

def basic_cx(h, w, w_in, w_out, stride, se, act):
    """ResNet's basic block: 3x3 conv (stride), 3x3 conv, BN after each; a 1x1 projection when the shape changes."""
    parts = [conv_bn_cx(h, w, w_in, w_out, 1, stride)] if stride != 1 or w_in != w_out else []
    a = conv_bn_cx(h, w, w_in, w_out, 3, stride)
    parts += [a, conv_bn_cx(a[0], a[1], w_out, w_out, 3)]
    return (a[0], a[1], *add(*parts))


def basic_module(w_in, w_out, stride, se, act):
    from dse.models import layers as L

    af = ACTS[act]
    proj = (L.conv(w_in, w_out, 1, stride), L.bn(w_out)) if stride != 1 or w_in != w_out else None
    f = L.seq([("a", L.conv(w_in, w_out, 3, stride)), ("a_bn", L.bn(w_out)), ("a_af", L.act(af)),
               ("b", L.conv(w_out, w_out, 3)), ("b_bn", L.bn(w_out, zero=True))])
    return L.ResBlock(proj, f, L.act(af))


BASIC = Block("basic", "ResNet basic block", fields=(), takes_se=False, cx=basic_cx, module=basic_module)


@pytest.fixture
def basic(monkeypatch):
    monkeypatch.setitem(BLOCKS, "basic", BASIC)


def test_a_toy_block_is_one_registry_entry(basic, tmp_path):
    # counter == module, in a net of its own
    agree(Net(stages=(Stage(d=2, w=16, stride=1, block="basic"), Stage(d=2, w=32, stride=2, block="basic")),
              res=30, classes=10))
    # a space file picks it with the top-level `block:` key; sampling, ids, the stage table and building follow
    f = tmp_path / "anynet_basic.yaml"
    f.write_text("name: anynet_basic\nextends: anynetx_a\nblock: basic\n")
    res = dse.sample(str(f), 3, flops=(100e6, 400e6), seed=0)
    for s in res:
        assert {st.block for st in s.config.net.stages} == {"basic"}
        assert dse.Config.from_dict(s.to_dict()).id == s.id
        assert s.cx.params == sum(p.numel() for p in dse.build(s.config).parameters())
    table = stage_table(res[0].to_dict())
    assert "block" in table and "basic" in table and " b " not in table.splitlines()[2]  # b, g: not read


def test_an_unregistered_block_is_an_error(tmp_path):
    f = tmp_path / "anynet_basic.yaml"
    f.write_text("name: anynet_basic\nextends: anynetx_a\nblock: basic\n")
    with pytest.raises(DseError, match=r"anynet_basic.yaml: block: unknown block type 'basic' \(known: x\)"):
        dse.load(str(f))
    with pytest.raises(DseError, match="unknown block type 'basic'"):
        complexity(Net(stages=(Stage(d=1, w=16, block="basic"),)))


# ---------------------------------------------------------------- a space names only what can be built

@pytest.mark.parametrize("text,msg", [
    ("extends: anynetx_a\nact: gelu\n", r"act: unknown activation 'gelu' \(known: relu, silu\)"),
    ("extends: regnetx\nblock: mb\n", "block: block type 'mb' reads e, k, which regnet stages do not give"),
    ("extends: anynetx_a\nscale: {width: 2}\n", "scale: only a compound-scaled effnet space"),
    ("extends: efficientnet\nblock: mb\n", "block: an effnet space names its blocks in base"),
    ("extends: efficientnetv2\nparams:\n  k: {kind: choice, values: [3, 4], per_stage: true}\n",
     "params.k: kernels must be odd positive integers"),
    ("extends: efficientnetv2\nparams:\n  e: {kind: choice, values: [0, 4], per_stage: true}\n",
     "params.e: expansion ratios must be positive"),
    ("extends: efficientnet\nbase:\n  - {block: mb, e: 1, stride: 1, w: 16, d: 1}\n",
     r"base\[0\]: needs block, e, k, stride, w, d"),
    ("extends: efficientnetv2\nbase:\n  - {block: x, b: 1, g: 8, stride: 1, w: 16, d: 1}\n",
     r"base\[0\].block: block type 'x' reads b, g, which effnet stages do not give \(known: mb, fmb\)"),
    ("extends: efficientnetv2\npresets:\n  z: {act: gelu}\n", "presets.z.act: unknown activation 'gelu'"),
])
def test_unbuildable_space_fails_at_load(tmp_path, text, msg):
    # before the registry, `act: gelu` and `block: mb` loaded and sampled (gelu failed only when built; `block:`
    # was never read, so the space built X blocks)
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\n" + text)
    with pytest.raises(DseError, match=msg):
        dse.load(str(f))


def test_unknown_act_in_a_net_is_an_error_for_counter_and_builder():
    net = Net(stages=(Stage(d=1, w=16),), act="gelu")
    with pytest.raises(DseError, match="unknown activation 'gelu'"):
        complexity(net)
    with pytest.raises(DseError, match="unknown activation 'gelu'"):
        dse.build(net)
