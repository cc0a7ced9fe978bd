"""How each family turns sampled parameters into a Net (pure functions)."""
from __future__ import annotations

import math

from .config import Net, Stage
from .errors import DseError
from .regnet import adjust_compat, quantized_widths_many, regnet_stages

REQUIRED = {"anynet": ("d", "w", "b", "g"), "regnet": ("d", "w0", "wa", "wm", "b", "g"), "effnet": ()}
EFF_STAGE = ("block", "e", "k", "stride", "w", "d")  # the fields of one `base` stage of an effnet space
BLOCKS = ("mb", "fmb")  # MBConv, Fused-MBConv


def _per_stage(v, n: int, name: str) -> list:
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise DseError(f"{name}: expected {n} per-stage values, got {len(v)}")
        return list(v)
    return [v] * n


def _head(spec: dict) -> dict:
    return dict(stem_w=spec.get("stem_w", 32), head_w=spec.get("head_w", 0), res=spec.get("res", 224),
                classes=spec.get("classes", 1000), act=spec.get("act", "relu"), dropout=spec.get("dropout", 0.0))


def anynet(spec: dict, p: dict) -> Net:
    """AnyNet: per-stage d, w, b, g; the group width is made compatible with the inner width w/b."""
    n = spec.get("stages", 4)
    v = {k: _per_stage(p[k], n, k) for k in REQUIRED["anynet"]}
    strides = _per_stage(spec.get("stride", 2), n, "stride")
    se = spec.get("se", 0.0)
    stages = []
    for d, w, b, g, s in zip(v["d"], v["w"], v["b"], v["g"], strides):
        _check(d >= 1 and w >= 1 and b > 0 and g >= 1, f"invalid stage d={d} w={w} b={b} g={g}")
        w, g = adjust_compat(int(w), b, int(g))
        stages.append(Stage(d=int(d), w=w, stride=int(s), b=b, g=g, se=se))
    return Net(stages=tuple(stages), **_head(spec))


def regnet(spec: dict, p: dict, ws=None) -> Net:
    """RegNet: the quantized linear rule (d, w0, wa, wm) into stages, then the compatibility adjustment."""
    d, w0, wa, wm, b, g = (p[k] for k in REQUIRED["regnet"])
    _check(d >= 1 and w0 > 0 and wa >= 0 and wm > 1 and b > 0 and g >= 1,
           f"invalid RegNet parameters d={d} w0={w0} wa={wa} wm={wm} b={b} g={g}")
    ds, ws, gs = regnet_stages(int(d), w0, wa, wm, b, int(g), spec.get("q", 8), ws=ws)
    se = spec.get("se", 0.0)
    stages = tuple(Stage(d=di, w=wi, stride=2, b=b, g=gi, se=se) for di, wi, gi in zip(ds, ws, gs))
    return Net(stages=stages, **_head(spec))


def _check(ok: bool, msg: str) -> None:
    if not ok or (isinstance(ok, float) and math.isnan(ok)):
        raise DseError(msg)


def effnet(spec: dict, p: dict) -> Net:
    """EfficientNet: a base stage list (MBConv / Fused-MBConv), per-stage overrides (block, k, e, d), then
    compound scaling: widths by round_filters(w, width), depths by ceil(d * depth), and the resolution."""
    from .scaling import round_filters, round_repeats

    base = spec["base"]
    n = len(base)
    wm, dm = float(p.get("width", 1.0)), float(p.get("depth", 1.0))
    if p.get("phi") is not None:  # a compound-scaled family: multipliers from alpha, beta, gamma and phi
        from .scaling import compound
        da, wb, r = compound(p["alpha"], p["beta"], p["gamma"], p["phi"], int(p.get("res", spec.get("res", 224))))
        dm, wm = dm * da, wm * wb  # width/depth/res act as the base the family is scaled from
        p = {**p, "res": r}
    _check(wm > 0 and dm > 0, f"width and depth multipliers must be positive, got {wm}, {dm}")
    over = {k: _per_stage(p[k], n, k) for k in ("block", "k", "e", "d") if p.get(k) is not None}
    se = spec.get("se", 0.25)
    stages = []
    for i, b in enumerate(base):
        blk = over.get("block", [b["block"]] * n)[i]
        _check(blk in BLOCKS, f"unknown block type '{blk}' (known: {', '.join(BLOCKS)})")
        d = over.get("d", [b["d"]] * n)[i]
        stages.append(Stage(d=round_repeats(int(d), dm), w=round_filters(b["w"], wm), stride=int(b["stride"]),
                            block=blk, k=int(over.get("k", [b["k"]] * n)[i]), e=float(over.get("e", [b["e"]] * n)[i]),
                            se=float(b.get("se", se)) if blk == "mb" else 0.0))
    head = dict(_head(spec), stem_w=round_filters(spec.get("stem_w", 32), wm),
                head_w=round_filters(spec.get("head_w", 1280), wm))
    head["res"] = int(p.get("res", head["res"]))
    head["dropout"] = float(p.get("dropout", head["dropout"]))
    head["act"] = spec.get("act", "silu")
    return Net(stages=tuple(stages), **head)


def nets(family: str, spec: dict, ps: list[dict]) -> list[Net | None]:
    """Nets for many parameter dicts (None where invalid); RegNet widths are computed in one batch."""
    ws = [None] * len(ps)
    if family == "regnet" and ps:
        ok = all(p["d"] >= 1 and p["w0"] > 0 and p["wm"] > 1 and p["wa"] >= 0 for p in ps)
        if ok:
            ws = quantized_widths_many(*([p[k] for p in ps] for k in ("d", "w0", "wa", "wm")), spec.get("q", 8))
    out = []
    for p, w in zip(ps, ws):
        try:
            out.append(regnet(spec, p, w) if w is not None else FAMILY[family](spec, p))
        except DseError:
            out.append(None)
    return out


FAMILY = {"anynet": anynet, "regnet": regnet, "effnet": effnet}
