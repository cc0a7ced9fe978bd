"""Exact analytic complexity (flops, params, acts) of a Net without building it, plus fvcore counting for any module.

The walk is dse.models.arch.layout (the builder's too); each step is counted by its block's registry entry
(dse.models.blocks) with the primitives of dse.models.cx, whose docstring states the convention (pycls's).
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from .arch import layout
from .config import Config, Net
from .blocks import part, se_width, x_inner  # noqa: F401  (the block rules, re-exported)
from .cx import conv_bn_cx, conv_cx, linear_cx, se_cx  # noqa: F401  (the counting convention)


class Cx(NamedTuple):
    flops: int
    params: int
    acts: int


@lru_cache(maxsize=1 << 16)
def _step_cx(kind: str, h: int, w: int, args: tuple):
    return part(kind).cx(h, w, *args)


def complexity(net: Net | Config, res: int | None = None) -> Cx:
    """flops, params and acts of a network at its nominal resolution (or `res`), without building it."""
    net = net.net if isinstance(net, Config) else net
    h = w = res or net.res
    f = p = a = 0
    for _, n, kind, args in layout(net):  # repeats have stride 1, so one count times n is exact
        h, w, df, dp, da = _step_cx(kind, h, w, args)
        f, p, a = f + n * df, p + n * dp, a + n * da
    return Cx(f, p, a)


def count(module, input_size=(3, 224, 224)) -> Cx:
    """Count any torch module: fvcore's conv + linear multiply-adds plus bias adds, parameter numels, and the
    output elements of its conv and linear layers (from forward hooks)."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    x = torch.zeros(1, *input_size)
    was = module.training
    module.eval()
    bias_adds, acts = [], []

    def hook(m, _inp, out):
        acts.append(out.numel())
        if getattr(m, "bias", None) is not None:
            bias_adds.append(out.numel())

    kinds = (torch.nn.Conv2d, torch.nn.Linear)
    hooks = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hk in hooks:
            hk.remove()
    try:
        with torch.no_grad():
            fl = FlopCountAnalysis(module, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            macs = sum(v for k, v in fl.by_operator().items() if k in ("conv", "linear", "addmm", "matmul"))
    finally:
        module.train(was)
    params = sum(p.numel() for p in module.parameters())
    return Cx(int(macs) + sum(bias_adds), int(params), sum(acts))
