"""The walk over a Net that both the model builder and the analytic counter follow, so they cannot drift."""
from __future__ import annotations

from typing import Iterator

from .config import Net


def block_args(kind: str, w_in: int, w_out: int, stride: int, s, act: str) -> tuple:
    """The arguments of one block as (name, value) pairs, identical for its builder and its *_cx twin."""
    if kind == "x":
        return ("w_in", w_in), ("w_out", w_out), ("stride", stride), ("b", s.b), ("g", s.g), ("se", s.se), ("act", act)
    return ("w_in", w_in), ("w_out", w_out), ("stride", stride), ("e", s.e), ("k", s.k), ("se", s.se), ("act", act)


def layout(net: Net) -> Iterator[tuple[int, str, tuple]]:
    """Steps (repeat, kind, args): the stem, per stage a first block and d-1 repeats, then the head."""
    yield 1, "stem", (("w_in", net.in_ch), ("w_out", net.stem_w), ("act", net.act))
    w_in = net.stem_w
    for s in net.stages:
        yield 1, s.block, block_args(s.block, w_in, s.w, s.stride, s, net.act)
        if s.d > 1:
            yield s.d - 1, s.block, block_args(s.block, s.w, s.w, 1, s, net.act)
        w_in = s.w
    yield 1, "head", (("w_in", w_in), ("w_head", net.head_w), ("classes", net.classes), ("act", net.act),
                      ("dropout", net.dropout))
