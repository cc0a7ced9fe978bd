"""The counting convention (pycls's), as plain-int primitives that the block counters add up.

flops are multiply-adds of conv and linear layers *including* bias adds; params are all learnable parameters (BN
affine included); acts are the output elements of conv and linear layers. Pooling, BN, activations, the SE gate
multiply and residual adds are not counted in flops, as in pycls. Every function returns plain ints (the sampler
calls them tens of thousands of times per second): convs give (h_out, w_out, flops, params, acts).
"""
from __future__ import annotations


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


def add(*parts):
    """Add (flops, params, acts) triples (or the last three fields of conv results)."""
    return tuple(sum(x) for x in zip(*(p[-3:] for p in parts)))
