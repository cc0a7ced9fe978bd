"""The torch layers that the block registry's module builders compose (named children, so state-dict keys read
like pycls's: stem.conv.weight, s1.b1.f.a_bn.running_mean, head.fc.bias)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


def conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """kxk conv with 'same' padding (k odd)."""
    return nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=bias)


def bn(c: int, zero: bool = False) -> nn.BatchNorm2d:
    """BatchNorm; zero=True starts its scale at 0 (the last BN of a residual branch)."""
    m = nn.BatchNorm2d(c)
    if zero:
        nn.init.zeros_(m.weight)
    return m


def act(cls: str) -> nn.Module:
    """An activation by its torch.nn class name (the registry's ACTS map a space's names to these)."""
    return getattr(nn, cls)(inplace=True)


def seq(pairs) -> nn.Sequential:
    """A Sequential whose children have the given names."""
    return nn.Sequential(OrderedDict(pairs))


class SE(nn.Module):
    """Squeeze-and-Excitation: avg_pool, f_ex = (1x1 conv to c_se, act, 1x1 conv back, sigmoid), then x * gate."""

    def __init__(self, c: int, c_se: int, af: str):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.f_ex = nn.Sequential(conv(c, c_se, 1, bias=True), act(af), conv(c_se, c, 1, bias=True),
                                  nn.Sigmoid())

    def forward(self, x):
        return x * self.f_ex(self.avg_pool(x))


class ResBlock(nn.Module):
    """af(shortcut(x) + f(x)); the shortcut is x, or bn(proj(x)) when a (proj, bn) pair is given."""

    def __init__(self, proj, f: nn.Module, af: nn.Module):
        super().__init__()
        self.proj, self.bn = proj if proj is not None else (None, None)
        self.f = f
        self.af = af

    def forward(self, x):
        return self.af((x if self.proj is None else self.bn(self.proj(x))) + self.f(x))


class Residual(nn.Sequential):
    """Named layers applied in order, plus the input when `skip` (stride 1 and same width)."""

    def __init__(self, pairs, skip: bool):
        super().__init__(OrderedDict(pairs))
        self.skip = skip

    def forward(self, x):
        y = super().forward(x)
        return x + y if self.skip else y


class Head(nn.Module):
    """[conv, conv_bn, conv_af] -> avg_pool -> [dropout] -> fc."""

    def __init__(self, w_in: int, w_head: int, classes: int, af: str, dropout: float):
        super().__init__()
        self.conv = self.conv_bn = self.conv_af = self.dropout = None
        if w_head:
            self.conv, self.conv_bn, self.conv_af = conv(w_in, w_head, 1), bn(w_head), act(af)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        if dropout:
            self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(w_head or w_in, classes)

    def forward(self, x):
        if self.conv is not None:
            x = self.conv_af(self.conv_bn(self.conv(x)))
        x = self.avg_pool(x).flatten(1)
        return self.fc(x if self.dropout is None else self.dropout(x))


class Network(nn.Sequential):
    """A built Net: stem, s1..sK (each b1..bd), head; `net` is the Net it was built from."""

    def __init__(self, net, parts):
        super().__init__(OrderedDict(parts))
        self.net = net
