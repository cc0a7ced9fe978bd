"""EfficientNet B0-B7, EfficientNetV2-S/M/L against published numbers; compound scaling; the V2 space."""
import json

import pytest
import torch
import yaml

import dse
from dse.models.complexity import complexity, count
from dse.errors import DseError
from dse.space.scaling import compound, grid, round_filters, round_repeats

# published parameter counts (torchvision's model tables; B0 also in ../shared/reference)
B_PARAMS = {"b0": 5288548, "b1": 7794184, "b2": 9109994, "b3": 12233232, "b4": 19341616, "b5": 30389784,
            "b6": 43040704, "b7": 66347960}
V2_PARAMS = {"s": 21458488, "m": 54139356, "l": 118515272}
V2S_MACS_NO_BIAS = 8365617152  # published multiply-adds of V2-S at 384 px, bias adds excluded


@pytest.mark.parametrize("preset", sorted(B_PARAMS))
def test_efficientnet_presets_params(preset):
    s = dse.describe("efficientnet", preset=preset)
    assert s.cx.params == B_PARAMS[preset]
    assert s.cx.params == sum(p.numel() for p in dse.build(s.config).parameters())


# published GFLOPS (torchvision's model tables, 2 decimals) at the resolution they were counted at: the paper's,
# except B2, which torchvision counts at its 288 px evaluation crop (at 260 px it would be 0.99)
B_GFLOPS = {"b1": (240, 0.69), "b2": (288, 1.09), "b3": (300, 1.83), "b4": (380, 4.39), "b5": (456, 10.27),
            "b6": (528, 19.07), "b7": (600, 37.75)}


@pytest.mark.parametrize("preset", sorted(B_GFLOPS))
def test_efficientnet_presets_flops(preset):
    res, gflops = B_GFLOPS[preset]
    assert round(dse.describe("efficientnet", preset=preset, at_res=res).cx.flops / 1e9, 2) == gflops


def test_b0_flops_and_resolutions(ref):
    e = ref["efficientnet"]["EfficientNet-B0"]
    s = dse.describe("efficientnet", preset="b0")
    assert (s.cx.flops, s.cx.params, s.cx.acts) == (e["flops"], e["params"], e["acts"])
    assert [dse.describe("efficientnet", preset=p).config.net.res for p in sorted(B_PARAMS)] == \
        [224, 240, 260, 300, 380, 456, 528, 600]


@pytest.mark.parametrize("preset", ["s", "m", "l"])
def test_efficientnetv2_presets_params(preset):
    assert dse.describe("efficientnetv2", preset=preset).cx.params == V2_PARAMS[preset]


def test_efficientnetv2_s_flops_are_published_macs_plus_bias_adds():
    s = dse.describe("efficientnetv2", preset="s")
    model = dse.build(s.config).eval()
    adds = []
    hooks = [m.register_forward_hook(lambda m, i, o: adds.append(o.numel())) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None]
    with torch.no_grad():
        model(torch.zeros(1, 3, 384, 384))
    for h in hooks:
        h.remove()
    # Bias adds by hand: only the SE convs (1x1 spatial) and the FC have a bias. SE of an MBConv block squeezes to
    # 0.25 x its input width and expands back to its inner width e x input. V2-S MBConv stages (in -> w, e, d):
    #   64 -> 128, e4, d6:   (16 + 256) + 5 * (32 + 512)   =  2992
    #  128 -> 160, e6, d9:   (32 + 768) + 8 * (40 + 960)   =  8800
    #  160 -> 256, e6, d15: (40 + 960) + 14 * (64 + 1536)  = 23400
    #  FC: 1000                                             ->  36192 in all
    assert sum(adds) == 2992 + 8800 + 23400 + 1000 == 36192
    assert s.cx.flops == V2S_MACS_NO_BIAS + 36192


def test_round_filters_and_repeats_by_hand():
    assert round_filters(32, 1.1) == 32  # 35.2 -> 32 (>= 90% of 35.2)
    assert round_filters(40, 1.2) == 48  # 48 exactly
    assert round_filters(24, 1.4) == 32  # 33.6 -> 32
    assert round_filters(16, 1.8) == 32  # 28.8 -> 32
    assert round_filters(112, 1.1) == 120  # 123.2 -> 120
    assert round_filters(10, 1.0) == 16  # 10 -> 8 is below 90%, so 16
    assert round_repeats(3, 1.1) == 4 and round_repeats(1, 3.1) == 4 and round_repeats(2, 1.0) == 2


def test_published_b7_is_not_the_compound_net_at_phi_7():
    # by hand: B7's depth 3.1 gives ceil(d * 3.1) = 4, 7, 7, 10, 10, 13, 4 for B0's depths 1, 2, 2, 3, 3, 4, 1;
    # compound phi = 7 has depth 1.2**7 = 3.583, so ceil(d * 3.583) = 4, 8, 8, 11, 11, 15, 4 (the presets are not
    # powers of alpha, beta, gamma), and resolution round(224 * 1.15**7) = 596, not 600
    b7 = dse.describe("efficientnet", preset="b7").config.net
    c7 = dse.describe("efficientnet_compound", phi=7).config.net
    assert [st.d for st in b7.stages] == [4, 7, 7, 10, 10, 13, 4]
    assert [st.d for st in c7.stages] == [4, 8, 8, 11, 11, 15, 4]
    assert (b7.res, c7.res) == (600, 596)


def test_grid():
    g = grid()
    assert all(a >= 1 and b >= 1 and c >= 1 and abs(a * b * b * c * c - 2) <= 0.1 + 1e-9 for a, b, c in g)
    assert (1.2, 1.1, 1.15) in g
    with pytest.raises(DseError, match="empty"):
        grid(step=0.5, tol=0.0, max_value=1.5)
    with pytest.raises(DseError, match="phi"):
        compound(1.2, 1.1, 1.15, -1)


def test_compound_family_space():
    # phi = 1 by hand: res 224 * 1.15 = 257.6 -> 258; widths x 1.1 rounded to 8 (stem 35.2 -> 32, 16 -> 17.6 -> 16,
    # 24 -> 26.4 -> 24, 40 -> 44 -> 48 (44 + 4 = 48), 80 -> 88, 112 -> 123.2 -> 120, 192 -> 211.2 -> 208,
    # 320 -> 352, head 1280 -> 1408); depths x 1.2 rounded up: 1.2, 2.4, 2.4, 3.6, 3.6, 4.8, 1.2 -> 2,3,3,4,4,5,2
    net = dse.describe("efficientnet_compound", phi=1).config.net
    assert (net.res, net.stem_w, net.head_w) == (258, 32, 1408)
    assert [st.w for st in net.stages] == [16, 24, 48, 88, 120, 208, 352]
    assert [st.d for st in net.stages] == [2, 3, 3, 4, 4, 5, 2]
    assert compound(1.2, 1.1, 1.15, 2)[2] == 296  # 224 * 1.3225 = 296.24


def test_scale_apply_cli(run_cli):
    code, out, _ = run_cli("scale", "apply", "--phi", "0..2", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["phi"] for r in rows] == [0, 1, 2]
    assert rows[0]["params"] == B_PARAMS["b0"] and rows[1]["flops"] > 1.8 * rows[0]["flops"]
    code, _, err = run_cli("scale", "apply", "--phi", "-1")
    assert code == 1 and "phi must be >= 0" in err


def test_describe_preset_json(run_cli):
    code, out, _ = run_cli("describe", "--space", "efficientnet", "--preset", "b3", "--json")
    rec = json.loads(out)
    assert code == 0 and set(rec) >= {"stages", "flops", "params", "acts"} and rec["params"] == B_PARAMS["b3"]
    assert rec["net"]["res"] == 300 and rec["stages"][0]["block"] == "mb"


@pytest.mark.parametrize("space,band", [("efficientnet", (0.5e9, 2e9)), ("efficientnetv2", (0.5e9, 3e9))])
def test_spaces_sample_in_band_and_match_fvcore(space, band):
    res = dse.sample(space, 20, flops=band, seed=0)
    assert all(band[0] <= s.cx.flops <= band[1] for s in res)
    for s in list(res)[:2]:  # each branch of each block: tests/test_blocks.py
        net = s.config.net.replace(res=64, classes=10)
        assert count(dse.build(net), (3, 64, 64)) == complexity(net)


def test_v2_space_choices_and_fused_blocks_have_no_se():
    res = dse.sample("efficientnetv2", 50, flops=(None, 5e9), seed=1)
    for s in res:
        for st in s.config.net.stages:
            assert st.block in ("mb", "fmb") and st.k in (3, 5) and st.e in (1, 4, 6)
            assert (st.se == 0) == (st.block == "fmb")


def test_bad_block_type(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\nextends: efficientnetv2\nparams:\n  block: {kind: choice, values: [mb, xx], per_stage: true}\n")
    with pytest.raises(DseError, match="params.block: unknown block type 'xx'"):
        dse.load(str(tmp_path / "bad.yaml"))  # at load time, not by silently rejecting every 'xx' draw
    with pytest.raises(DseError, match=r"block=xx \(stages 1, 2, 3, 4, 5, 6\) is not one of mb, fmb$"):
        dse.load("efficientnetv2").make({"block": ["xx"] * 6})


@pytest.mark.slow
def test_grid_search_end_to_end_on_digits(tmp_path, run_cli):
    e = yaml.safe_load(open("experiments/efficientnet_grid.yaml"))
    e["grid"].update(tol=0.05, max=1.2)  # a few candidates
    e["train"].update(epochs=1)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(e))
    code, out, err = run_cli("scale", "grid", tmp_path / "g.yaml", "--out", tmp_path / "run")
    assert code == 0, err
    df = dse.load_results(tmp_path / "run")
    assert len(df) >= 1 and {"alpha", "beta", "gamma"} <= set(df.columns) and "best: alpha=" in out
    assert all(abs(r.alpha * r.beta ** 2 * r.gamma ** 2 - 2) <= 0.1 + 1e-9 for r in df.itertuples())


def test_preset_with_overrides_keeps_the_presets_backbone():
    # V2-M brings its own 7-stage backbone; overriding dropout must not fall back to the space's V2-S backbone
    s = dse.describe("efficientnetv2", preset="m", dropout=0.3)
    assert s.cx.params == V2_PARAMS["m"] and len(s.config.net.stages) == 7
    assert dse.describe("efficientnetv2", preset="m", res=384).config.net.res == 384


def test_one_route_from_alpha_beta_gamma_phi():
    # before: `scale apply` built phi = 3 in the efficientnet space (id f3e170739a60), describe and the grid in the
    # compound space (14e03716abd7), and the compound record said res 224 for a 341 px net
    from dse.space.scaled import compound, compound_family, compound_grid
    described = dse.describe("efficientnet_compound", phi=3)
    applied = compound_family(1.2, 1.1, 1.15, [3])
    gridded = [s for s in compound_grid(0.05, 0.05, 1.25, 3, dropout=0.2)
               if (s.config.p["alpha"], s.config.p["beta"], s.config.p["gamma"]) == (1.2, 1.1, 1.15)]
    assert described.id == applied["id"][0] == gridded[0].id == compound(1.2, 1.1, 1.15, 3).id == "14e03716abd7"
    rec = described.to_dict()
    assert rec["net"]["res"] == applied["res"][0] == 341  # round(224 * 1.15**3) = round(340.68)
    assert not {"res", "width", "depth"} & set(rec["config"])  # the only resolution in the record is the net's
    # a grid's base (the digits proxy): resolution round(16 * 1.15) = 18; widths 16 * 0.25 * 1.1 = 4.4 -> 8 (the
    # divisor is the floor); depths ceil(d * 0.34 * 1.2) = ceil(d * 0.408) for d = 1, 2, 2, 3, 3, 4, 1
    net = compound(1.2, 1.1, 1.15, 1, width=0.25, depth=0.34, res=16).config.net
    assert net.res == 18 and net.stages[0].w == 8 and [st.d for st in net.stages] == [1, 1, 1, 2, 2, 2, 1]


def test_compound_space_takes_no_width_depth_res(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: c\nextends: efficientnet_compound\nparams:\n  res: 256\n")
    with pytest.raises(DseError, match="derives width, depth and res from alpha, beta, gamma, phi"):
        dse.load(str(f))
