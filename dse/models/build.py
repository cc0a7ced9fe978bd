"""Build a torch module from a Net by walking the same layout as the analytic counter."""
from __future__ import annotations

import math

from torch import nn

from ..arch import layout
from ..config import Config, Net
from .blocks import BLOCK


def init_weights(m: nn.Module) -> None:
    """He-normal (fan-out) convs, unit BN (zero last BN of X blocks is set by the block), small-normal FC."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)


def build(net: Net | Config, **override) -> nn.Module:
    """A torch.nn.Sequential for the network (`override`, e.g. classes=10, replaces Net fields)."""
    net = net.net if isinstance(net, Config) else net
    net = net.replace(**override) if override else net
    mods = []
    for n, kind, args in layout(net):
        mods += [BLOCK[kind](**dict(args)) for _ in range(n)]
    model = nn.Sequential(*mods)
    for m in model.modules():
        if not isinstance(m, nn.BatchNorm2d):
            init_weights(m)
    for m in model.modules():  # zero-init the last BN of each X block, after the generic init
        if m.__class__.__name__ == "XBlock":
            nn.init.zeros_(m.f[-1][1].weight)
    return model
