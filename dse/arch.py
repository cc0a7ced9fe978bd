"""The walk over a Net that both the model builder and the analytic counter follow, so they cannot drift."""
from __future__ import annotations

from typing import Iterator

from .config import Net
from .models.blocks import block, check_act


def block_args(kind: str, w_in: int, w_out: int, stride: int, s, act: str) -> tuple:
    """The arguments of one block as (name, value) pairs, identical for its counter and its module: widths, stride,
    the Stage fields its registry entry reads, SE ratio and activation."""
    return (("w_in", w_in), ("w_out", w_out), ("stride", stride), *((f, getattr(s, f)) for f in block(kind).fields),
            ("se", s.se), ("act", act))


def layout(net: Net) -> Iterator[tuple[str, int, str, tuple]]:
    """Steps (where, repeat, kind, args): the stem, per stage s1..sK a first block and d-1 repeats, then the head."""
    act = check_act(net.act)
    yield "stem", 1, "stem", (("w_in", net.in_ch), ("w_out", net.stem_w), ("act", act))
    w_in = net.stem_w
    for i, s in enumerate(net.stages, 1):
        yield f"s{i}", 1, s.block, block_args(s.block, w_in, s.w, s.stride, s, act)
        if s.d > 1:
            yield f"s{i}", s.d - 1, s.block, block_args(s.block, s.w, s.w, 1, s, act)
        w_in = s.w
    yield "head", 1, "head", (("w_in", w_in), ("w_head", net.head_w), ("classes", net.classes), ("act", act),
                              ("dropout", net.dropout))
