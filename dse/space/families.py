"""How each family turns sampled parameters into a Net (pure functions)."""
from __future__ import annotations

import math

from ..models.config import Net, Stage
from ..errors import DseError
from ..models.blocks import ACTS, BLOCKS, DEFAULT, block
from .regnet import adjust_compat, quantized_widths_many, regnet_stages
from .scaling import compound, round_filters, round_repeats

REQUIRED = {"anynet": ("d", "w", "b", "g"), "regnet": ("d", "w0", "wa", "wm", "b", "g"), "effnet": ()}
FIELDS = {"anynet": ("b", "g"), "regnet": ("b", "g"), "effnet": ("e", "k")}  # the block fields a family provides
CAST = {"b": float, "g": int, "e": float, "k": int}
COMPOUND = ("alpha", "beta", "gamma", "phi")  # an effnet space with these params is compound-scaled


def blocks_for(family: str) -> list[str]:
    """The registered block types a family can build: those that read only the fields it provides."""
    return [n for n, b in BLOCKS.items() if set(b.fields) <= set(FIELDS[family])]


def fit(family: str, name) -> str:
    """A block type the family can build, else a one-line error naming the ones it can."""
    known = ", ".join(blocks_for(family))
    if name not in BLOCKS:
        raise DseError(f"unknown block type {name!r} (known: {known})")
    if name not in blocks_for(family):
        raise DseError(f"block type {name!r} reads {', '.join(block(name).fields)}, which {family} stages do not "
                       f"give (known: {known})")
    return name


def _se(spec: dict, name: str, default: float = 0.0) -> float:
    """The space's SE ratio where the block takes it (the registry's rule), else 0."""
    return spec.get("se", default) if block(name).takes_se else 0.0


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
    blk = spec.get("block", DEFAULT)
    se = _se(spec, blk)
    stages = []
    for d, w, b, g, s in zip(v["d"], v["w"], v["b"], v["g"], strides):
        _check(d >= 1 and w >= 1 and b > 0 and g >= 1, f"invalid stage d={d} w={w} b={b} g={g}")
        w, g = adjust_compat(int(w), b, int(g))
        stages.append(Stage(d=int(d), w=w, stride=int(s), b=b, g=g, se=se, block=blk))
    return Net(stages=tuple(stages), **_head(spec))


def regnet(spec: dict, p: dict, ws=None) -> Net:
    """RegNet: the quantized linear rule (d, w0, wa, wm) into stages, then the compatibility adjustment."""
    d, w0, wa, wm, b, g = (p[k] for k in REQUIRED["regnet"])
    _check(d >= 1 and w0 > 0 and wa >= 0 and wm > 1 and b > 0 and g >= 1,
           f"invalid RegNet parameters d={d} w0={w0} wa={wa} wm={wm} b={b} g={g}")
    ds, ws, gs = regnet_stages(int(d), w0, wa, wm, b, int(g), spec.get("q", 8), ws=ws)
    blk = spec.get("block", DEFAULT)
    se = _se(spec, blk)
    stages = tuple(Stage(d=di, w=wi, stride=2, b=b, g=gi, se=se, block=blk) for di, wi, gi in zip(ds, ws, gs))
    return Net(stages=stages, **_head(spec))


def _check(ok: bool, msg: str) -> None:
    if not ok or (isinstance(ok, float) and math.isnan(ok)):
        raise DseError(msg)


def effnet(spec: dict, p: dict) -> Net:
    """EfficientNet: a base stage list (block types from the registry), per-stage overrides (block, d and the
    blocks' fields e, k), then compound scaling: widths by round_filters(w, width), depths by ceil(d * depth), and
    the resolution. A compound space (params alpha, beta, gamma, phi) takes them from dse.scaling.compound applied
    to its `scale:` base (width, depth) and its `res`, so its records hold no width, depth or res of their own."""
    base = spec["base"]
    n = len(base)
    if p.get("phi") is not None:
        sc = spec.get("scale", {})
        missing = [k for k in ("alpha", "beta", "gamma") if p.get(k) is None]
        _check(not missing, f"compound scaling needs {', '.join(missing)} with phi")
        dm, wm, res = compound(p["alpha"], p["beta"], p["gamma"], p["phi"], int(spec.get("res", 224)))
        dm, wm = dm * sc.get("depth", 1.0), wm * sc.get("width", 1.0)
    else:
        wm, dm, res = float(p.get("width", 1.0)), float(p.get("depth", 1.0)), p.get("res")
    _check(wm > 0 and dm > 0, f"width and depth multipliers must be positive, got {wm}, {dm}")
    over = {k: _per_stage(p[k], n, k) for k in ("block", "d", *FIELDS["effnet"]) if p.get(k) is not None}
    stages = []
    for i, b in enumerate(base):
        blk = fit("effnet", over.get("block", [b["block"]] * n)[i])
        d = over.get("d", [b["d"]] * n)[i]
        kw = {f: CAST[f](over.get(f, [b.get(f)] * n)[i]) for f in block(blk).fields}
        stages.append(Stage(d=round_repeats(int(d), dm), w=round_filters(b["w"], wm), stride=int(b["stride"]),
                            block=blk, se=float(b.get("se", spec.get("se", 0.25))) if block(blk).takes_se else 0.0,
                            **kw))
    head = dict(_head(spec), stem_w=round_filters(spec.get("stem_w", 32), wm),
                head_w=round_filters(spec.get("head_w", 1280), wm))
    head["res"] = int(res if res is not None else head["res"])
    head["dropout"] = float(p.get("dropout", head["dropout"]))
    head["act"] = spec.get("act", "silu")
    return Net(stages=tuple(stages), **head)


def check(path, family: str, spec: dict, params=()) -> None:
    """Load-time checks that a space only names what can be built: its act, its block types (top-level `block`,
    `params.block`, `base[i].block`) against the registry and the family, odd kernels, positive expansions, the
    `scale:` base, and each preset's own backbone and act. `params` are the space's dse.space.params.Param."""
    def err(key, why):
        return DseError(f"{path}: {key}: {why}")

    def values(name):
        return [x for p in params if p.name == name for v in p.values for x in (v if isinstance(v, tuple) else (v,))]

    if "act" in spec and spec["act"] not in ACTS:
        raise err("act", f"unknown activation {spec['act']!r} (known: {', '.join(ACTS)})")
    if "block" in spec:
        if family == "effnet":
            raise err("block", "an effnet space names its blocks in base[i].block (or params.block)")
        try:
            fit(family, spec["block"])
        except DseError as e:
            raise err("block", e) from None
    if family != "effnet":
        if "scale" in spec:
            raise err("scale", "only a compound-scaled effnet space (params alpha, beta, gamma, phi) has a scale base")
        return
    for name in ("block", *FIELDS["effnet"]):
        for v in values(name):
            _check_value(err, f"params.{name}", name, v)
    _check_base(err, spec.get("base"))
    names = {p.name for p in params}
    if "phi" in names and names & {"width", "depth", "res"}:
        raise err("params", "a compound-scaled space derives width, depth and res from alpha, beta, gamma, phi: "
                  "give the base as scale: {width, depth} and res")
    if "scale" in spec:
        sc = spec["scale"]
        if not set(COMPOUND) <= names:
            raise err("scale", f"a scale base needs the compound parameters {', '.join(COMPOUND)}")
        if set(sc) - {"width", "depth"} or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                                                  for v in sc.values()):
            raise err("scale", f"expected positive width and depth multipliers, got {sc!r}")
    for pname, pr in spec.get("presets", {}).items():
        if isinstance(pr, dict) and "act" in pr and pr["act"] not in ACTS:
            raise err(f"presets.{pname}.act", f"unknown activation {pr['act']!r} (known: {', '.join(ACTS)})")
        if isinstance(pr, dict) and "base" in pr:
            _check_base(lambda key, why: err(f"presets.{pname}: {key}", why), pr["base"])


def _check_value(err, key: str, name: str, v) -> None:
    if name == "block":
        try:
            fit("effnet", v)
        except DseError as e:
            raise err(key, e) from None
    elif name == "k" and not (isinstance(v, (int, float)) and float(v).is_integer() and v >= 1 and int(v) % 2 == 1):
        raise err(key, f"kernels must be odd positive integers ('same' padding), got {v!r}")
    elif name == "e" and not (isinstance(v, (int, float)) and v > 0):
        raise err(key, f"expansion ratios must be positive, got {v!r}")


def _check_base(err, base) -> None:
    """An effnet `base`: a non-empty list of stages, each with block, stride, w, d and its block's fields."""
    if not isinstance(base, list) or not base:
        raise err("base", "an effnet space needs a non-empty list of stages")
    for i, b in enumerate(base):
        if not isinstance(b, dict) or "block" not in b:
            raise err(f"base[{i}]", "needs block, stride, w, d and the block's fields")
        _check_value(err, f"base[{i}].block", "block", b["block"])
        need = ("block", *block(b["block"]).fields, "stride", "w", "d")
        if set(need) - set(b):
            raise err(f"base[{i}]", f"needs {', '.join(need)}")
        for f in block(b["block"]).fields:
            _check_value(err, f"base[{i}].{f}", f, b[f])


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
