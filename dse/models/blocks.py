"""The block registry: per block type one entry holding its stage fields, its SE rule, its analytic counter and its
module, side by side, so that a new block type is one entry here (and its test). Importing it does not import torch.

A counter takes (h, w, w_in, w_out, stride, *fields, se, act) and returns (h_out, w_out, flops, params, acts); the
module builder takes the same arguments without (h, w). Both are called with the arguments that dse.models.arch.layout
derives from a Stage, so they see the same layout. Modules use pycls's names where pycls has the block.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import DseError
from .cx import add, conv_bn_cx, linear_cx, se_cx

ACTS = {"relu": "ReLU", "silu": "SiLU"}  # activation names a space may use -> torch.nn class names
DEFAULT = "x"  # the block of a Stage that names none; its fields are written for every stage (stable ids)


@dataclass(frozen=True)
class Block:
    """One block type (or the stem / head): what it reads from a Stage, and how it is counted and built."""

    name: str
    doc: str
    fields: tuple[str, ...]  # Stage fields it reads besides w, stride and se (its layout arguments)
    takes_se: bool  # whether a space's `se` ratio applies to its stages
    cx: Callable  # (h, w, w_in, w_out, stride, *fields, se, act) -> (h_out, w_out, flops, params, acts)
    module: Callable  # (w_in, w_out, stride, *fields, se, act) -> torch.nn.Module


BLOCKS: dict[str, Block] = {}  # stage blocks by name, in registration order
PARTS: dict[str, Block] = {}  # the stem and the head


def register(b: Block, table: dict = BLOCKS) -> Block:
    table[b.name] = b
    return b


def block(name: str) -> Block:
    """The entry of a stage block type; unknown names are a one-line error."""
    try:
        return BLOCKS[name]
    except (KeyError, TypeError):
        raise DseError(f"unknown block type {name!r} (known: {', '.join(BLOCKS)})") from None


def part(kind: str) -> Block:
    """The entry of any step of the layout: stem, head or a stage block."""
    return PARTS.get(kind) or block(kind)


def check_act(name) -> str:
    if name not in ACTS:
        raise DseError(f"unknown activation {name!r} (known: {', '.join(ACTS)})")
    return name


def x_inner(w_out: int, b: float, g: int) -> tuple[int, int]:
    """Inner width and number of groups of an X block."""
    wb = int(round(w_out / b))
    return wb, wb // min(g, wb)


def se_width(w_in: int, se: float, trunc: bool = False) -> int:
    """SE squeeze width from the block input width (pycls rounds for X blocks, truncates for MBConv)."""
    return int(w_in * se) if trunc else int(round(w_in * se))


# ---------------------------------------------------------------- stem and head

def stem_cx(h, w, w_in, w_out, act):
    return conv_bn_cx(h, w, w_in, w_out, 3, 2)


def stem_module(w_in, w_out, act):
    """3x3 conv, stride 2, BN, act (pycls: stem.conv, stem.bn)."""
    from . import layers as L

    return L.seq([("conv", L.conv(w_in, w_out, 3, 2)), ("bn", L.bn(w_out)), ("af", L.act(ACTS[act]))])


def head_cx(h, w, w_in, w_head, classes, act, dropout):
    """[1x1 conv to w_head + BN] -> global average pool -> FC with bias."""
    parts = []
    if w_head:
        parts.append(conv_bn_cx(h, w, w_in, w_head, 1))
        w_in = w_head
    parts.append(linear_cx(w_in, classes))
    return (1, 1, *add(*parts))


def head_module(w_in, w_head, classes, act, dropout):
    """[conv, conv_bn, conv_af] -> avg_pool -> [dropout] -> fc (pycls: head.fc; EfficientNet: head.conv too)."""
    from . import layers as L

    return L.Head(w_in, w_head, classes, ACTS[act], dropout)


register(Block("stem", "3x3 conv stride 2 + BN + act", (), False, stem_cx, stem_module), PARTS)
register(Block("head", "[1x1 conv + BN + act] + pool + [dropout] + FC", (), False, head_cx, head_module), PARTS)


# ---------------------------------------------------------------- X block (Radosavovic et al. 2020)

def x_cx(h, w, w_in, w_out, stride, b, g, se, act):
    """X block: 1x1 -> 3x3 group conv (stride) -> [SE] -> 1x1, BN after each, projection when shape changes."""
    wb, groups = x_inner(w_out, b, g)
    parts = [conv_bn_cx(h, w, w_in, w_out, 1, stride)] if stride != 1 or w_in != w_out else []
    c1 = conv_bn_cx(h, w, w_in, wb, 1)
    c2 = conv_bn_cx(h, w, wb, wb, 3, stride, groups)
    h2, w2 = c2[0], c2[1]
    parts += [c1, c2]
    if se:
        parts.append(se_cx(wb, se_width(w_in, se)))
    parts.append(conv_bn_cx(h2, w2, wb, w_out, 1))
    return (h2, w2, *add(*parts))


def x_module(w_in, w_out, stride, b, g, se, act):
    """af(bn(proj(x)) or x, + f(x)) with f = a, a_bn, a_af, b, b_bn, b_af, [se], c, c_bn (c_bn starts at zero)."""
    from . import layers as L

    af = ACTS[act]  # the torch activation's class name

    wb, groups = x_inner(w_out, b, g)
    proj = (L.conv(w_in, w_out, 1, stride), L.bn(w_out)) if stride != 1 or w_in != w_out else None
    f = [("a", L.conv(w_in, wb, 1)), ("a_bn", L.bn(wb)), ("a_af", L.act(af)),
         ("b", L.conv(wb, wb, 3, stride, groups)), ("b_bn", L.bn(wb)), ("b_af", L.act(af))]
    if se:
        f.append(("se", L.SE(wb, se_width(w_in, se), af)))
    f += [("c", L.conv(wb, w_out, 1)), ("c_bn", L.bn(w_out, zero=True))]
    return L.ResBlock(proj, L.seq(f), L.act(af))


register(Block("x", "residual bottleneck with a 3x3 group conv (w/b inner width, g group width)", ("b", "g"), True,
               x_cx, x_module))


# ---------------------------------------------------------------- MBConv (Sandler et al. 2018; Tan & Le 2019)

def mb_cx(h, w, w_in, w_out, stride, e, k, se, act):
    """MBConv: [1x1 expand] -> kxk depthwise (stride) -> [SE] -> 1x1 project, BN after each conv."""
    w_exp = int(w_in * e)
    parts = [conv_bn_cx(h, w, w_in, w_exp, 1)] if w_exp != w_in else []
    c2 = conv_bn_cx(h, w, w_exp, w_exp, k, stride, w_exp)
    h2, w2 = c2[0], c2[1]
    parts.append(c2)
    if se:
        parts.append(se_cx(w_exp, se_width(w_in, se, trunc=True)))
    parts.append(conv_bn_cx(h2, w2, w_exp, w_out, 1))
    return (h2, w2, *add(*parts))


def mb_module(w_in, w_out, stride, e, k, se, act):
    """[exp, exp_bn, exp_af], dwise, dwise_bn, dwise_af, [se], lin_proj, lin_proj_bn; + x when shapes match."""
    from . import layers as L

    af = ACTS[act]  # the torch activation's class name

    w_exp = int(w_in * e)
    f = [("exp", L.conv(w_in, w_exp, 1)), ("exp_bn", L.bn(w_exp)), ("exp_af", L.act(af))] if w_exp != w_in else []
    f += [("dwise", L.conv(w_exp, w_exp, k, stride, w_exp)), ("dwise_bn", L.bn(w_exp)), ("dwise_af", L.act(af))]
    if se:
        f.append(("se", L.SE(w_exp, se_width(w_in, se, trunc=True), af)))
    f += [("lin_proj", L.conv(w_exp, w_out, 1)), ("lin_proj_bn", L.bn(w_out))]
    return L.Residual(f, skip=stride == 1 and w_in == w_out)


register(Block("mb", "MBConv: 1x1 expand by e, kxk depthwise, SE, 1x1 project", ("e", "k"), True, mb_cx, mb_module))


# ---------------------------------------------------------------- Fused-MBConv (Tan & Le 2021)

def fmb_cx(h, w, w_in, w_out, stride, e, k, se, act):
    """Fused-MBConv: kxk conv (stride) to w_in*e, [SE], 1x1 project; with e == 1 a single kxk conv to w_out."""
    w_exp = int(w_in * e)
    if w_exp == w_in:
        return conv_bn_cx(h, w, w_in, w_out, k, stride)
    c1 = conv_bn_cx(h, w, w_in, w_exp, k, stride)
    h2, w2 = c1[0], c1[1]
    parts = [c1]
    if se:
        parts.append(se_cx(w_exp, se_width(w_in, se, trunc=True)))
    parts.append(conv_bn_cx(h2, w2, w_exp, w_out, 1))
    return (h2, w2, *add(*parts))


def fmb_module(w_in, w_out, stride, e, k, se, act):
    """conv, conv_bn, conv_af when e == 1; else exp, exp_bn, exp_af, [se], lin_proj, lin_proj_bn; + x when shapes
    match."""
    from . import layers as L

    af = ACTS[act]  # the torch activation's class name

    w_exp = int(w_in * e)
    if w_exp == w_in:
        f = [("conv", L.conv(w_in, w_out, k, stride)), ("conv_bn", L.bn(w_out)), ("conv_af", L.act(af))]
    else:
        f = [("exp", L.conv(w_in, w_exp, k, stride)), ("exp_bn", L.bn(w_exp)), ("exp_af", L.act(af))]
        if se:
            f.append(("se", L.SE(w_exp, se_width(w_in, se, trunc=True), af)))
        f += [("lin_proj", L.conv(w_exp, w_out, 1)), ("lin_proj_bn", L.bn(w_out))]
    return L.Residual(f, skip=stride == 1 and w_in == w_out)


register(Block("fmb", "Fused-MBConv: kxk conv expanding by e, 1x1 project (a space's SE is not applied)", ("e", "k"),
               False, fmb_cx, fmb_module))
