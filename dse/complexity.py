"""Exact analytic complexity (flops, params, acts) that mirrors the builders, plus fvcore counting for any module.

Convention (pycls's): flops are multiply-adds of conv and linear layers *including* bias adds; params are all
learnable parameters (BN affine included); acts are the output elements of conv and linear layers. Pooling, BN,
activations, the SE gate multiply and residual adds are not counted in flops, as in pycls.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from .arch import layout
from .config import Config, Net


class Cx(NamedTuple):
    flops: int
    params: int
    acts: int


# Every *_cx function returns (h_out, w_out, flops, params, acts) as plain ints: the sampler calls them
# tens of thousands of times per second, so they avoid objects.

def conv_cx(h: int, w: int, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False):
    """One conv with 'same' padding (pycls's conv2d_cx)."""
    h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
    hw = h * w
    flops = k * k * c_in * c_out * hw // groups + (c_out * hw if bias else 0)
    params = k * k * c_in * c_out // groups + (c_out if bias else 0)
    return h, w, flops, params, c_out * hw


def conv_bn_cx(h, w, c_in, c_out, k, stride=1, groups=1):
    """A conv without bias followed by BN (2 affine parameters per channel)."""
    h, w, f, p, a = conv_cx(h, w, c_in, c_out, k, stride, groups)
    return h, w, f, p + 2 * c_out, a


def linear_cx(c_in: int, c_out: int):
    """A fully connected layer with bias on a pooled 1x1 input."""
    return 1, 1, c_in * c_out + c_out, c_in * c_out + c_out, c_out


def se_cx(c: int, c_se: int):
    """Squeeze-and-Excitation on c channels: pool, 1x1 conv c->c_se (bias), act, 1x1 conv c_se->c (bias), sigmoid."""
    _, _, f1, p1, a1 = conv_cx(1, 1, c, c_se, 1, bias=True)
    _, _, f2, p2, a2 = conv_cx(1, 1, c_se, c, 1, bias=True)
    return f1 + f2, p1 + p2, a1 + a2


def x_inner(w_out: int, b: float, g: int) -> tuple[int, int]:
    """Inner width and number of groups of an X block."""
    wb = int(round(w_out / b))
    return wb, wb // min(g, wb)


def se_width(w_in: int, se: float, trunc: bool = False) -> int:
    """SE squeeze width from the block input width (pycls rounds for X blocks, truncates for MBConv)."""
    return int(w_in * se) if trunc else int(round(w_in * se))


def _sum(*parts):
    """Add (flops, params, acts) triples (or the last three fields of conv results)."""
    return tuple(sum(x) for x in zip(*(p[-3:] for p in parts)))


def stem_cx(h, w, w_in, w_out, act):
    return conv_bn_cx(h, w, w_in, w_out, 3, 2)


def x_cx(h, w, w_in, w_out, stride, b, g, se, act):
    """X block: 1x1 -> 3x3 group conv (stride) -> [SE] -> 1x1, BN after each, projection when shape changes."""
    wb, groups = x_inner(w_out, b, g)
    c1 = conv_bn_cx(h, w, w_in, wb, 1)
    c2 = conv_bn_cx(h, w, wb, wb, 3, stride, groups)
    h2, w2 = c2[0], c2[1]
    parts = [c1, c2, conv_bn_cx(h2, w2, wb, w_out, 1)]
    if se:
        parts.append(se_cx(wb, se_width(w_in, se)))
    if stride != 1 or w_in != w_out:
        parts.append(conv_bn_cx(h, w, w_in, w_out, 1, stride))
    return (h2, w2, *_sum(*parts))


def mb_cx(h, w, w_in, w_out, stride, e, k, se, act):
    """MBConv: [1x1 expand] -> kxk depthwise (stride) -> SE -> 1x1 project, BN after each conv."""
    w_exp = int(w_in * e)
    parts = [conv_bn_cx(h, w, w_in, w_exp, 1)] if w_exp != w_in else []
    c2 = conv_bn_cx(h, w, w_exp, w_exp, k, stride, w_exp)
    h2, w2 = c2[0], c2[1]
    parts += [c2, conv_bn_cx(h2, w2, w_exp, w_out, 1)]
    if se:
        parts.append(se_cx(w_exp, se_width(w_in, se, trunc=True)))
    return (h2, w2, *_sum(*parts))


def fmb_cx(h, w, w_in, w_out, stride, e, k, se, act):
    """Fused-MBConv: kxk conv (stride) to w_in*e, [SE], 1x1 project; with e == 1 a single kxk conv to w_out."""
    w_exp = int(w_in * e)
    if w_exp == w_in:
        return conv_bn_cx(h, w, w_in, w_out, k, stride)
    c1 = conv_bn_cx(h, w, w_in, w_exp, k, stride)
    h2, w2 = c1[0], c1[1]
    parts = [c1, conv_bn_cx(h2, w2, w_exp, w_out, 1)]
    if se:
        parts.append(se_cx(w_exp, se_width(w_in, se, trunc=True)))
    return (h2, w2, *_sum(*parts))


def head_cx(h, w, w_in, w_head, classes, act, dropout):
    """[1x1 conv to w_head + BN] -> global average pool -> FC with bias."""
    parts = []
    if w_head:
        parts.append(conv_bn_cx(h, w, w_in, w_head, 1))
        w_in = w_head
    parts.append(linear_cx(w_in, classes))
    return (1, 1, *_sum(*parts))


CX = {"stem": stem_cx, "x": x_cx, "mb": mb_cx, "fmb": fmb_cx, "head": head_cx}


@lru_cache(maxsize=1 << 16)
def _step_cx(kind: str, h: int, w: int, args: tuple):
    return CX[kind](h, w, **dict(args))


def complexity(net: Net | Config, res: int | None = None) -> Cx:
    """flops, params and acts of a network at its nominal resolution (or `res`), without building it."""
    net = net.net if isinstance(net, Config) else net
    h = w = res or net.res
    f = p = a = 0
    for n, kind, args in layout(net):  # repeats have stride 1, so one count times n is exact
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
