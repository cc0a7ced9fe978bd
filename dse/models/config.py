"""Value types of a sampled configuration: Stage, Net and Config (frozen, hashable, canonical JSON, stable id)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import DseError
from .blocks import DEFAULT, block


def num(x: Any) -> Any:
    """Canonical number: integral floats become ints, other floats are kept (tuples become lists)."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, (list, tuple)):
        return [num(v) for v in x]
    if hasattr(x, "item"):  # numpy scalar
        x = x.item()
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


ID_LEN = 12  # a sample's id: the first 12 hexadecimal digits of the sha256 of its canonical JSON
_ID = re.compile(f"[0-9a-f]{{{ID_LEN}}}")


def is_id(x: Any) -> bool:
    """True for a well-formed sample id (12 lowercase hexadecimal digits): what may become a file name."""
    return isinstance(x, str) and _ID.fullmatch(x) is not None


def check_prefix(sid, what: str = "--id") -> str:
    """A sample id or a prefix of one (1 to 12 lowercase hexadecimal digits)."""
    if not (isinstance(sid, str) and 0 < len(sid) <= ID_LEN and is_id(sid + "0" * (ID_LEN - len(sid)))):
        raise DseError(f"{what}: {sid!r} is not a sample id (12 hexadecimal digits; a unique prefix is enough)")
    return sid


def checked_id(r: dict, where) -> str:
    """A results row's id, refused unless well-formed (it becomes a file name): the row is named."""
    if not is_id(r.get("id")):
        raise DseError(f"{where}: the row of trial {r.get('key', r.get('id'))!r} ({r.get('space')}) has the id "
                       f"{r.get('id')!r}, not 12 hexadecimal digits; no file name is made from it")
    return r["id"]


def canonical(obj: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, integral floats as ints."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Stage:
    """One stage of d identical blocks; the first block has the stage's stride and adapts the width. Which of
    b, g, k, e a block reads is its registry entry's `fields` (dse.models.blocks)."""

    d: int
    w: int
    stride: int = 2
    b: float = 1.0  # bottleneck ratio: the inner width of an X block is w / b
    g: int = 1  # group width of the 3x3 conv of an X block
    se: float = 0.0  # SE squeeze width as a fraction of the block's input width (0: no SE)
    block: str = DEFAULT  # a registered block type: x (X block), mb (MBConv), fmb (Fused-MBConv), ...
    k: int = 3  # kernel of the spatial conv (MBConv / Fused-MBConv)
    e: float = 1.0  # expansion ratio (MBConv / Fused-MBConv)

    def to_dict(self) -> dict:
        """d, w, stride, se and the default block's fields (b, g) always; other blocks add `block` and their fields."""
        out = {"d": self.d, "w": self.w, "stride": self.stride, "se": num(self.se)}
        out.update((f, num(getattr(self, f))) for f in block(DEFAULT).fields)
        if self.block != DEFAULT:
            out["block"] = self.block
            out.update((f, num(getattr(self, f))) for f in block(self.block).fields)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Stage":
        return cls(**{k: d[k] for k in d if k in STAGE_FIELDS})


STAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Stage))


@dataclass(frozen=True)
class Net:
    """A whole network: stem, stages, head; complexity is taken at res x res with `classes` outputs."""

    stages: tuple[Stage, ...]
    stem_w: int = 32
    head_w: int = 0  # > 0: a 1x1 conv to head_w before pooling (EfficientNet); 0: pool straight after the stages
    res: int = 224
    classes: int = 1000
    act: str = "relu"
    dropout: float = 0.0
    in_ch: int = 3

    def replace(self, **kw) -> "Net":
        return dataclasses.replace(self, **kw)

    @property
    def depth(self) -> int:
        return sum(s.d for s in self.stages)

    @property
    def widths(self) -> list[int]:
        """Per-block widths w_j."""
        return [s.w for s in self.stages for _ in range(s.d)]

    def head_dict(self) -> dict:
        return {"stem_w": self.stem_w, "head_w": self.head_w, "res": self.res, "classes": self.classes,
                "act": self.act, "dropout": num(self.dropout), "in_ch": self.in_ch}

    def to_dict(self) -> dict:
        return {"stages": [s.to_dict() for s in self.stages], **self.head_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Net":
        kw = {k: d[k] for k in ("stem_w", "head_w", "res", "classes", "act", "dropout", "in_ch") if k in d}
        return cls(stages=tuple(Stage.from_dict(s) for s in d["stages"]), **kw)


def _freeze(v: Any) -> Any:
    return tuple(num(x) for x in v) if isinstance(v, (list, tuple)) else num(v)


@dataclass(frozen=True)
class Config:
    """A sampled configuration: its space, the sampled parameters and the network they define."""

    space: str
    params: tuple[tuple[str, Any], ...]
    net: Net
    id: str = field(init=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(sorted((k, _freeze(v)) for k, v in dict(self.params).items())))
        key = canonical({"space": self.space, "net": self.net.to_dict()})
        object.__setattr__(self, "id", hashlib.sha256(key.encode()).hexdigest()[:ID_LEN])

    @property
    def p(self) -> dict:
        """The sampled parameters as a dict (per-stage values as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.params}

    def to_dict(self) -> dict:
        return {"id": self.id, "space": self.space, "config": self.p,
                "stages": [s.to_dict() for s in self.net.stages], "net": self.net.head_dict()}

    def to_json(self) -> str:
        return canonical(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        net = Net.from_dict({"stages": d["stages"], **d.get("net", {})})
        return cls(space=d["space"], params=tuple(d.get("config", {}).items()), net=net)
