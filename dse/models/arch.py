"""The walk over a Net that both the model builder and the analytic counter follow, so they cannot drift."""
from __future__ import annotations

from typing import Iterator

from .config import Net
from .blocks import ACTS, BLOCKS, block, check_act


def block_args(kind: str, w_in: int, w_out: int, stride: int, s, act: str) -> tuple:
    """The positional arguments of one block, identical for its counter and its module: w_in, w_out, stride, the
    Stage fields its registry entry reads (in its order), the SE ratio and the activation."""
    b = BLOCKS.get(kind) or block(kind)  # block() names the known types
    return (w_in, w_out, stride, *[getattr(s, f) for f in b.fields], s.se, act)


def layout(net: Net) -> Iterator[tuple[str, int, str, tuple]]:
    """Steps (where, repeat, kind, args): the stem, per stage s1..sK a first block and d-1 repeats, then the head.
    Stem args are (w_in, w_out, act), head args (w_in, w_head, classes, act, dropout)."""
    act = net.act if net.act in ACTS else check_act(net.act)
    yield "stem", 1, "stem", (net.in_ch, net.stem_w, act)
    w_in = net.stem_w
    for i, s in enumerate(net.stages, 1):
        where = f"s{i}"
        yield where, 1, s.block, block_args(s.block, w_in, s.w, s.stride, s, act)
        if s.d > 1:
            yield where, s.d - 1, s.block, block_args(s.block, s.w, s.w, 1, s, act)
        w_in = s.w
    yield "head", 1, "head", (w_in, net.head_w, net.classes, act, net.dropout)
