"""Fitting (w0, wa, wm) to per-block widths: pycls zoo round trips, random RegNets, AnyNet widths, validation."""
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from dse.analysis.fit import Fit, e_fit, fit, fit_many
from dse.errors import DseError
from dse.space.regnet import quantized_widths, quantized_widths_many, regnet_stages, stages_from_widths

# pycls model zoo: name -> (d, w0, wa, wm, g); every zoo RegNet has bottleneck ratio b = 1
ZOO = {
    "X-200MF": (13, 24, 36.44, 2.49, 8), "X-400MF": (22, 24, 24.48, 2.54, 16),
    "X-600MF": (16, 48, 36.97, 2.24, 24), "X-800MF": (16, 56, 35.73, 2.28, 16),
    "X-1.6GF": (18, 80, 34.01, 2.25, 24), "X-3.2GF": (25, 88, 26.31, 2.25, 48),
    "X-4.0GF": (23, 96, 38.65, 2.43, 40), "X-6.4GF": (17, 184, 60.83, 2.07, 56),
    "X-8.0GF": (23, 80, 49.56, 2.88, 120), "X-12GF": (19, 168, 73.36, 2.37, 112),
    "X-16GF": (22, 216, 55.59, 2.1, 128), "X-32GF": (23, 320, 69.86, 2.0, 168),
    "Y-200MF": (13, 24, 36.44, 2.49, 8), "Y-400MF": (16, 48, 27.89, 2.09, 8),
    "Y-600MF": (15, 48, 32.54, 2.32, 16), "Y-800MF": (14, 56, 38.84, 2.4, 16),
    "Y-1.6GF": (27, 48, 20.71, 2.65, 24), "Y-3.2GF": (21, 80, 42.63, 2.66, 24),
    "Y-4.0GF": (22, 96, 31.41, 2.24, 64), "Y-6.4GF": (25, 112, 33.22, 2.27, 72),
    "Y-8.0GF": (17, 192, 76.82, 2.19, 56), "Y-12GF": (19, 168, 73.36, 2.37, 112),
    "Y-16GF": (18, 200, 106.23, 2.48, 112), "Y-32GF": (20, 232, 115.89, 2.53, 232),
}
# published stage depths / widths (pycls), independent of dse.regnet
GOLDEN = {
    "X-200MF": ([1, 1, 4, 7], [24, 56, 152, 368]),
    "X-400MF": ([1, 2, 7, 12], [32, 64, 160, 384]),
    "X-1.6GF": ([2, 4, 10, 2], [72, 168, 408, 912]),
    "Y-800MF": ([1, 3, 8, 2], [64, 128, 320, 768]),
}


def adjusted(name):
    """The zoo model's group-adjusted per-block widths."""
    d, w0, wa, wm, g = ZOO[name]
    ds, ws, _ = regnet_stages(d, w0, wa, wm, 1.0, g)
    return np.repeat(ws, ds)


def best_of_random(ws, n=200_000, seed=0):
    """A brute-force baseline: the smallest e_fit over n random (w0, wa, wm) around the model's scale."""
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(0.6, 1.4, n) * ws[0]
    wa, wm = rng.uniform(0, 3, n) * w0, rng.uniform(1.5, 3.5, n)
    hat = np.array(quantized_widths_many(np.full(n, len(ws)), w0, wa, wm))
    return np.abs(np.log(ws / hat)).mean(axis=1).min()


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_stages_and_exact_refit(name):
    ds, ws = GOLDEN[name]
    d, w0, wa, wm, g = ZOO[name]
    assert regnet_stages(d, w0, wa, wm, 1.0, g)[:2] == (ds, ws)
    f = fit(np.repeat(ws, ds))
    assert f.d == sum(ds) and stages_from_widths(f.widths)[0] == ds  # the fitted stages keep the depths
    if name == "X-200MF":  # g = 8 leaves the widths quantized-linear: reproduced exactly
        assert f.e_fit == 0 and f.widths == tuple(np.repeat(ws, ds))
    else:  # the others were moved by group rounding (see test_zoo_group_adjusted_widths)
        assert 0 < f.e_fit < 0.03


@pytest.mark.parametrize("name", ZOO)
def test_zoo_unadjusted_widths_refit_exactly(name):
    d, w0, wa, wm, _ = ZOO[name]
    ws = quantized_widths(d, w0, wa, wm)
    f = fit(ws)
    assert f.e_fit == 0 and f.widths == tuple(ws)
    assert f.w0 == w0  # canonical w0: the first width, as published (w0 % 8 == 0 in pycls)
    assert quantized_widths(d, f.w0, f.wa, f.wm).tolist() == ws.tolist()


@pytest.mark.parametrize("name", ZOO)
def test_zoo_group_adjusted_widths(name):
    """Group rounding moves stage widths by < g/2 off the quantized-linear rule, keeping the depths.

    The tolerance: the published (w0, wa, wm) are among the searched candidates, so the fit can be no worse than
    their e_fit against the adjusted widths; where the adjustment changed nothing that is exactly 0.
    """
    d, w0, wa, wm, _ = ZOO[name]
    ws = adjusted(name)
    f = fit(ws)
    bound = e_fit(ws, w0, wa, wm)
    assert f.e_fit <= bound + 1e-12
    assert f.e_fit == pytest.approx(e_fit(ws, f.w0, f.wa, f.wm), abs=0)
    assert f.e_fit < 0.07  # mean deviation below 7%: the largest g / (2 w) effect in the zoo
    if bound == 0:
        assert f.e_fit == 0


@pytest.mark.parametrize("name", ["X-200MF", "X-1.6GF", "Y-800MF", "Y-32GF"])
def test_canonical_point_is_interior(name):
    """The reported point is the centre of its feasible region, so small perturbations keep the widths."""
    d, w0, wa, wm, _ = ZOO[name]
    ws = quantized_widths(d, w0, wa, wm).tolist()
    f = fit(ws)
    for dw0, dwa, dwm in [(1, 1, 1 + 1e-4), (1, 1, 1 - 1e-4), (1, 1 + 1e-4, 1), (1, 1 - 1e-4, 1), (1 + 1e-4, 1, 1)]:
        assert quantized_widths(d, f.w0 * dw0, f.wa * dwa, f.wm * dwm).tolist() == ws


def test_group_adjusted_residual_is_real():
    """X-400MF [32, 64, 160, 384] x [1, 2, 7, 12]: the widths need wm in (2.364, 2.402), the depths wm > 2.49."""
    ws = adjusted("X-400MF")
    f = fit(ws)
    assert 0 < f.e_fit < e_fit(ws, 24, 24.48, 2.54)
    assert best_of_random(ws) >= f.e_fit - 1e-12


def test_random_quantized_linear_widths_refit_exactly():
    rng = np.random.default_rng(2019)
    for _ in range(200):
        d, w0 = int(rng.integers(5, 41)), 8 * int(rng.integers(1, 33))
        wa, wm = rng.uniform(8, 256), rng.uniform(1.5, 3)
        ws = quantized_widths(d, w0, wa, wm)
        f = fit(ws)
        assert f.e_fit == 0 and f.widths == tuple(ws), (d, w0, wa, wm)
        assert quantized_widths(d, f.w0, f.wa, f.wm).tolist() == ws.tolist()


def test_skipped_exponents_and_small_wm():
    ws = quantized_widths(12, 8, 256, 1.5)  # s jumps from 0 to 9 at block 1
    assert ws[0] == 8 and ws[1] > 256
    assert fit(ws).e_fit == 0
    lin = [16, 24, 32, 40, 48, 56, 64, 72]  # linear widths: one exponent per block, wm close to 1
    f = fit(lin)
    assert f.e_fit == 0 and 1.1 <= f.wm < 1.5


def test_anynet_widths_fit_with_positive_error():
    ws = [48, 48, 32, 512, 512]
    f = fit(ws)
    assert f.e_fit > 0 and f.widths == tuple(quantized_widths(5, f.w0, f.wa, f.wm))
    assert f.e_fit == pytest.approx(e_fit(ws, f.w0, f.wa, f.wm))
    # the decrease 48 -> 32 cannot be followed: the best keeps 48 and pays |log(32/48)| / 5 = 0.0811
    assert f.e_fit == pytest.approx(math.log(1.5) / 5)


def test_constant_single_and_non_multiple_widths():
    for ws in ([24], [64] * 7):
        f = fit(ws)
        assert (f.w0, f.wa, f.wm, f.e_fit) == (ws[0], 0.0, 2.0, 0.0)
    f = fit([50, 50])
    assert f.widths == (48, 48) and f.e_fit == pytest.approx(math.log(50 / 48))
    assert fit([24, 56, 56], q=4).e_fit == 0


def test_e_fit_by_hand():
    assert e_fit([16, 32], 16, 0, 2) == pytest.approx(math.log(2) / 2)
    assert e_fit([16, 32], 16, 16, 2) == 0


def test_fit_dataclass_and_to_dict():
    f = fit([24, 56, 152, 152])
    assert isinstance(f, Fit)
    assert list(f.to_dict()) == ["d", "w0", "wa", "wm", "e_fit", "widths"]
    assert f.to_dict()["widths"] == [24, 56, 152, 152]
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.w0 = 1
    assert fit([24, 56, 152, 152]) == f  # deterministic


def test_fit_many_rows():
    wss = [quantized_widths(*ZOO[n][:4]) for n in ("X-200MF", "Y-800MF")] + [[48, 48, 32, 512, 512]]
    t = fit_many(wss)
    assert isinstance(t, pd.DataFrame) and len(t) == 3
    assert list(t.columns) == ["d", "w0", "wa", "wm", "e_fit", "widths"]
    assert t.e_fit.tolist()[:2] == [0, 0] and t.e_fit.iloc[2] > 0
    assert t.iloc[1].to_dict() == fit(wss[1]).to_dict()


@pytest.mark.parametrize("ws", [[], [0, 8], [8.5, 16], [-8], "abc", [[8, 16]], [np.nan], None])
def test_bad_widths_raise(ws):
    with pytest.raises(DseError, match="widths must be positive integers: got") as e:
        fit(ws)
    assert "\n" not in str(e.value)


def test_fit_many_names_the_bad_model():
    with pytest.raises(DseError, match="model 1: widths must be positive integers"):
        fit_many([[8, 16], [8, 0]])


def test_bad_q_raises():
    with pytest.raises(DseError):
        fit([8, 16], q=0)
