"""The analytic counter against pycls's published zoo numbers and against fvcore on a few samples per space."""
import pytest
import torch

import dse
from dse.models.complexity import complexity, count
from dse.models.config import Net, Stage
from dse.space.regnet import regnet_stages

SPACES = ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e", "regnetx", "regnety", "regnetx_pycls"]


def zoo_net(m):
    ds, ws, gs = regnet_stages(m["d"], m["w0"], m["wa"], m["wm"], 1, m["g"])
    return Net(stages=tuple(Stage(d, w, g=g, se=0.25 if m["se"] else 0.0) for d, w, g in zip(ds, ws, gs)))


def test_zoo_complexity_matches_pycls_exactly(ref):
    for name, m in ref["models"].items():
        net = zoo_net(m)
        assert [s.d for s in net.stages] == m["ds"], name
        assert [s.w for s in net.stages] == m["ws"], name
        assert tuple(complexity(net)) == (m["flops"], m["params"], m["acts"]), name


def test_zoo_presets_match_reference(ref):
    for name, m in ref["models"].items():
        space, preset = ("regnety" if m["se"] else "regnetx"), name.split("-")[1].lower()
        s = dse.describe(space, preset=preset)
        assert (s.cx.flops, s.cx.params, s.cx.acts) == (m["flops"], m["params"], m["acts"]), name


def test_efficientnet_b0_counts_match_published(ref):
    e = ref["efficientnet"]["EfficientNet-B0"]
    st = tuple(Stage(d, w, stride=s, block="mb", k=k, e=x, se=e["se_r"]) for d, w, s, k, x in
               zip(e["depths"], e["widths"], e["strides"], e["kernels"], e["exp_ratios"]))
    net = Net(stages=st, stem_w=e["stem_w"], head_w=e["head_w"], act="silu")
    assert tuple(complexity(net)) == (e["flops"], e["params"], e["acts"])


def test_conv_counts_by_hand():
    # 3x3 conv 3->32, stride 2 on 224x224: out 112x112; 3*3*3*32*112*112 multiply-adds, 864 weights
    from dse.models.complexity import conv_cx
    assert conv_cx(224, 224, 3, 32, 3, 2) == (112, 112, 10838016, 864, 401408)
    # bias adds one per output element; odd sizes round up like a padded conv
    assert conv_cx(7, 7, 4, 4, 1, 2, bias=True) == (4, 4, 4 * 4 * 16 + 4 * 16, 20, 64)


@pytest.mark.parametrize("space", SPACES)
def test_counter_agrees_with_built_model_and_fvcore(space):
    """One sample per space: params == the module's numels; flops and acts == fvcore conv+linear + bias adds.

    Counted at 72x72 (sizes 36, 18, 9, 5, 3 exercise the odd-size rounding) with 10 classes to keep it fast;
    the formulas are the same at 224 (covered by the zoo test). Each block type has its own case-by-case check in
    tests/test_blocks.py; benchmarks/bench_complexity.py --exhaustive runs 50 samples per space.
    """
    torch.manual_seed(0)
    for s in dse.sample(space, 1, flops=(360e6, 400e6), seed=1):
        net = s.config.net.replace(res=72, classes=10)
        model = dse.build(net)
        want = complexity(net)
        assert want.params == sum(p.numel() for p in model.parameters()), s.id
        got = count(model, (3, 72, 72))
        assert got == want, (s.id, got, want)


def test_count_works_on_any_module():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 16, 5))
    c = count(m, (3, 4, 4))
    conv = 3 * 3 * 3 * 8 * 16 + 8 * 16  # multiply-adds + bias adds
    fc = 128 * 5 + 5
    assert c == (conv + fc, 3 * 3 * 3 * 8 + 8 + 128 * 5 + 5, 8 * 16 + 5)
