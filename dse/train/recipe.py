"""The training sections of an experiment file as typed, validated values: the recipe (train:), its training
view (train.augment:), the test view (eval:) and progressive learning (progressive:), with the checks that every
section of dse.run.experiment shares. Parsing imports no torch; the loop (dse.train.loop) reads these dataclasses."""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, fields

from ..errors import DseError

CROPS, EVAL_CROPS = ("pad", "rrc", "none"), ("center", "none")  # dse.data.CROPS, dse.data.EVAL_CROPS
MAX_RES = 1024
AMP = ("none", "bf16", "fp16")
# EfficientNetV2-S (Table 6 of the paper): image size 128 -> 300, RandAugment 5 -> 15, mixup 0, dropout 0.1 -> 0.3
V2S = {"res": (128, 300), "randaug": (5.0, 15.0), "mixup": (0.0, 0.0), "dropout": (0.1, 0.3)}


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _coerce(v):
    """A number written as text that YAML leaves a string (`1e-4`, `1e30`) becomes a float; anything else as is."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _check(section: str, checks) -> None:
    """Raise one DseError naming every field whose check failed: `section.k: must be ..., got v`."""
    bad = [f"{section}.{k}: must be {why}, got {v!r}" for k, v, ok, why in checks if not ok]
    if bad:
        raise DseError("; ".join(bad))


def _from_dict(cls, d, section: str):
    """A section dataclass from a mapping, refusing unknown keys with a suggestion."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise DseError(f"{section}: must be a mapping, got {type(d).__name__}")
    known = [f.name for f in fields(cls)]
    for k in d:
        if k not in known:
            close = difflib.get_close_matches(str(k), known, n=1)
            raise DseError(f"{section}.{k}: unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
                           + f"; known: {', '.join(known)}")
    return cls(**d)


def _plain(v):
    """Tuples as lists, recursively (YAML's safe dumper and JSON see lists)."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _asdict(obj) -> dict:
    return _plain(dataclasses.asdict(obj))


@dataclass(frozen=True)
class Augment:
    """The training view (train.augment): crop `pad` (pad-and-crop, `pad` pixels, default res // 8), `rrc`
    (RandomResizedCrop: area fraction ~ U(scale), aspect ratio log-uniform in ratio, resized to the training
    resolution) or `none`; `flip` horizontal flips (null: the data set's default)."""

    crop: str = "pad"
    pad: int | None = None
    scale: tuple = (0.08, 1.0)
    ratio: tuple = (3 / 4, 4 / 3)
    flip: bool | None = None

    def __post_init__(self):
        for k in ("scale", "ratio"):
            v = getattr(self, k)
            if isinstance(v, list):
                object.__setattr__(self, k, tuple(_coerce(x) for x in v))
        pair = lambda v: isinstance(v, tuple) and len(v) == 2 and all(_num(x) for x in v)  # noqa: E731
        sc, ra = self.scale, self.ratio
        _check("train.augment", [
            ("crop", self.crop, self.crop in CROPS, " or ".join(CROPS)),
            ("pad", self.pad, self.pad is None or (_int(self.pad) and 0 <= self.pad <= MAX_RES),
             f"an integer in 0..{MAX_RES} (null: res // 8)"),
            ("scale", list(sc) if isinstance(sc, tuple) else sc, pair(sc) and 0 < sc[0] <= sc[1] <= 1,
             "[low, high] with 0 < low <= high <= 1 (area fractions)"),
            ("ratio", list(ra) if isinstance(ra, tuple) else ra, pair(ra) and 0 < ra[0] <= ra[1],
             "[low, high] with 0 < low <= high (aspect ratios)"),
            ("flip", self.flip, self.flip is None or isinstance(self.flip, bool),
             "true or false (null: the data set's default)"),
        ])
        object.__setattr__(self, "scale", tuple(float(x) for x in sc))
        object.__setattr__(self, "ratio", tuple(float(x) for x in ra))


@dataclass(frozen=True)
class Eval:
    """The test view (top-level `eval:`): crop `center` resizes the short side to res * resize (1.143: res / 0.875,
    the standard ImageNet protocol), then takes the centre res×res crop; `none` resizes to res (no crop). FixRes's
    test sizes use the same view at each size."""

    resize: float = 1.143
    crop: str = "none"

    def __post_init__(self):
        object.__setattr__(self, "resize", _coerce(self.resize))
        _check("eval", [
            ("resize", self.resize, _num(self.resize) and 1 <= self.resize <= 10,
             "a number in [1, 10] (the short side before the centre crop, as a multiple of the size)"),
            ("crop", self.crop, self.crop in EVAL_CROPS, " or ".join(EVAL_CROPS)),
        ])


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters; lr is the base lr for batch 128 and is scaled linearly: lr * batch_size / 128."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    wd: float = 5e-5
    warmup: float = 1.0
    label_smoothing: float = 0.0
    augment: Augment = Augment()
    amp: str = "none"

    def __post_init__(self):
        for k in ("lr", "momentum", "wd", "warmup", "label_smoothing"):
            object.__setattr__(self, k, _coerce(getattr(self, k)))
        if not isinstance(self.augment, Augment):
            object.__setattr__(self, "augment", _from_dict(Augment, self.augment, "train.augment"))
        _check("train", [
            ("epochs", self.epochs, _int(self.epochs) and 1 <= self.epochs <= 10_000, "an integer in 1..10000"),
            ("batch_size", self.batch_size, _int(self.batch_size) and self.batch_size >= 1, "a positive integer"),
            ("lr", self.lr, _num(self.lr) and self.lr > 0, "a positive number"),
            ("momentum", self.momentum, _num(self.momentum) and 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("nesterov", self.nesterov, isinstance(self.nesterov, bool), "true or false"),
            ("wd", self.wd, _num(self.wd) and self.wd >= 0, "a number >= 0"),
            ("warmup", self.warmup, _num(self.warmup) and 0 <= self.warmup
             and (not _int(self.epochs) or self.warmup <= self.epochs), "a number of epochs in [0, epochs]"),
            ("label_smoothing", self.label_smoothing, _num(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             "a number in [0, 1)"),
            ("amp", self.amp, self.amp in AMP, " or ".join(AMP) + " (mixed precision)"),
        ])

    @property
    def peak_lr(self) -> float:
        """The lr after warm-up: lr * batch_size / 128."""
        return self.lr * self.batch_size / 128

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return _from_dict(cls, d, "train")

    def to_dict(self) -> dict:
        return _asdict(self)


@dataclass(frozen=True)
class Progressive:
    """Progressive learning (EfficientNetV2, Sec. 4.2): min/max per setting over `stages` equal stages of training;
    res_min/res_max None means the V2-S ratio 128/300 of the data's resolution, up to it."""

    stages: int = 4
    res_min: int | None = None
    res_max: int | None = None
    randaug: tuple = V2S["randaug"]
    mixup: tuple = V2S["mixup"]
    dropout: tuple = V2S["dropout"]

    def __post_init__(self):
        if not _int(self.stages) or self.stages < 1:
            raise DseError(f"progressive: stages must be a positive integer, got {self.stages!r}")
        for k in ("res_min", "res_max"):
            v = getattr(self, k)
            if v is not None and not (_int(v) and 1 <= v <= MAX_RES):
                raise DseError(f"progressive: {k} must be an integer in 1..{MAX_RES}, got {v!r}")
        for k in ("randaug", "mixup", "dropout"):
            v = getattr(self, k)
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(x) for x in v)):
                raise DseError(f"progressive: {k} must be [min, max], got {v!r}")
            object.__setattr__(self, k, tuple(float(x) for x in v))
        if not 0 <= self.dropout[0] <= self.dropout[1] < 1:
            raise DseError(f"progressive: dropout must satisfy 0 <= min <= max < 1, got {self.dropout}")

    @classmethod
    def from_dict(cls, d: dict) -> "Progressive":
        return _from_dict(cls, d, "progressive")

    def to_dict(self) -> dict:
        return _asdict(self)
