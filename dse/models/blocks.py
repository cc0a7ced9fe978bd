"""Network blocks; each takes the same arguments as its *_cx twin in dse.complexity."""
from __future__ import annotations

from torch import nn

from ..complexity import se_width, x_inner

ACT = {"relu": nn.ReLU, "silu": nn.SiLU}


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None) -> nn.Sequential:
    """kxk conv with 'same' padding and no bias, BN, then an optional activation."""
    layers = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act:
        layers.append(ACT[act](inplace=True))
    return nn.Sequential(*layers)


class SE(nn.Module):
    """Squeeze-and-Excitation: global pool, 1x1 conv to c_se, act, 1x1 conv back, sigmoid gate."""

    def __init__(self, c: int, c_se: int, act: str):
        super().__init__()
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c_se, 1), ACT[act](inplace=True),
                               nn.Conv2d(c_se, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)


class Stem(nn.Sequential):
    """3x3 conv, stride 2, BN, act."""

    def __init__(self, w_in, w_out, act):
        super().__init__(*conv_bn(w_in, w_out, 3, 2, act=act))


class XBlock(nn.Module):
    """Residual bottleneck with a group conv (the X block); the last BN starts at zero."""

    def __init__(self, w_in, w_out, stride, b, g, se, act):
        super().__init__()
        wb, groups = x_inner(w_out, b, g)
        f = [conv_bn(w_in, wb, 1, act=act), conv_bn(wb, wb, 3, stride, groups, act=act)]
        if se:
            f.append(SE(wb, se_width(w_in, se), act))
        f.append(conv_bn(wb, w_out, 1))
        self.f = nn.Sequential(*f)
        self.proj = conv_bn(w_in, w_out, 1, stride) if stride != 1 or w_in != w_out else None
        self.act = ACT[act](inplace=True)
        nn.init.zeros_(self.f[-1][1].weight)

    def forward(self, x):
        return self.act((x if self.proj is None else self.proj(x)) + self.f(x))


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise -> SE -> 1x1 project; skip when shapes match."""

    def __init__(self, w_in, w_out, stride, e, k, se, act):
        super().__init__()
        w_exp = int(w_in * e)
        f = [conv_bn(w_in, w_exp, 1, act=act)] if w_exp != w_in else []
        f.append(conv_bn(w_exp, w_exp, k, stride, w_exp, act=act))
        if se:
            f.append(SE(w_exp, se_width(w_in, se, trunc=True), act))
        f.append(conv_bn(w_exp, w_out, 1))
        self.f = nn.Sequential(*f)
        self.skip = stride == 1 and w_in == w_out

    def forward(self, x):
        return x + self.f(x) if self.skip else self.f(x)


class FusedMBConv(nn.Module):
    """Fused-MBConv: kxk conv to w_in*e -> [SE] -> 1x1 project; with e == 1 one kxk conv; skip when shapes match."""

    def __init__(self, w_in, w_out, stride, e, k, se, act):
        super().__init__()
        w_exp = int(w_in * e)
        if w_exp == w_in:
            f = [conv_bn(w_in, w_out, k, stride, act=act)]
        else:
            f = [conv_bn(w_in, w_exp, k, stride, act=act)]
            if se:
                f.append(SE(w_exp, se_width(w_in, se, trunc=True), act))
            f.append(conv_bn(w_exp, w_out, 1))
        self.f = nn.Sequential(*f)
        self.skip = stride == 1 and w_in == w_out

    def forward(self, x):
        return x + self.f(x) if self.skip else self.f(x)


class Head(nn.Module):
    """[1x1 conv to w_head, BN, act] -> global average pool -> [dropout] -> FC."""

    def __init__(self, w_in, w_head, classes, act, dropout):
        super().__init__()
        self.conv = conv_bn(w_in, w_head, 1, act=act) if w_head else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(w_head or w_in, classes)

    def forward(self, x):
        return self.fc(self.drop(self.pool(self.conv(x)).flatten(1)))


BLOCK = {"stem": Stem, "x": XBlock, "mb": MBConv, "fmb": FusedMBConv, "head": Head}
