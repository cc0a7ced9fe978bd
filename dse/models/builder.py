"""Build a torch module from a Net by walking the same layout as the analytic counter."""
from __future__ import annotations

import math

from torch import nn

from .arch import layout
from .config import Config, Net
from .blocks import part
from .layers import Network, seq


def init_weights(m: nn.Module) -> None:
    """He-normal (fan-out) convs, small-normal FC; BN keeps its own init (unit, or zero where a block asks)."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)


def build(net: Net | Config, **override) -> Network:
    """The module of a network: stem, s1..sK with blocks b1..bd, head (`override`, e.g. classes=10, replaces Net
    fields)."""
    net = net.net if isinstance(net, Config) else net
    net = net.replace(**override) if override else net
    parts, blocks = [], {}
    for where, n, kind, args in layout(net):
        if where in ("stem", "head"):
            parts.append((where, part(kind).module(*args)))
        else:
            stage = blocks.setdefault(where, [])
            if not stage:
                parts.append((where, stage))
            stage += [part(kind).module(*args) for _ in range(n)]
    model = Network(net, [(k, seq((f"b{j}", b) for j, b in enumerate(v, 1)) if isinstance(v, list) else v)
                          for k, v in parts])
    for m in model.modules():
        init_weights(m)
    return model
