"""Experiment files (experiments/*.yaml) as typed sections: what to sample, which data, how to train, how to run
trials, how to measure the noise floor. Parsing imports no torch; trials receive these dataclasses as they are."""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import DseError
from .units import check_band, parse_band

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")
MAX_RES = 1024
MAX_N = 1_000_000
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
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


def _asdict(obj) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


@dataclass(frozen=True)
class DataSpec:
    """The data set: name, local path (CIFAR, ImageFolder), training resolution (or `net`), validation fraction."""

    name: str = "digits"
    path: str | None = None
    res: int | str = 32
    val_frac: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "val_frac", _coerce(self.val_frac))
        name = str(self.name).lower()
        object.__setattr__(self, "name", name)
        if name not in DATASETS:
            raise DseError(f"data.name: unknown data set {self.name!r}; known: {', '.join(DATASETS)}")
        _check("data", [
            ("path", self.path, self.path is None or isinstance(self.path, str), "a folder"),
            ("res", self.res, self.res == "net" or (_int(self.res) and 1 <= self.res <= MAX_RES),
             f"an integer in 1..{MAX_RES}, or 'net' for each sample's own resolution"),
            ("val_frac", self.val_frac, _num(self.val_frac) and 0 < self.val_frac < 1, "a number in (0, 1)"),
        ])

    def args(self, res: int | None = None) -> dict:
        """Keyword arguments of dse.data.load_data (at `res` when the spec says `net`)."""
        return {"name": self.name, "path": self.path, "res": int(res if res is not None else self.res),
                "val_frac": float(self.val_frac)}


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

    def __post_init__(self):
        for k in ("lr", "momentum", "wd", "warmup", "label_smoothing"):
            object.__setattr__(self, k, _coerce(getattr(self, k)))
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
class Trial:
    """How one trial runs: CPUs (also its torch threads unless `threads`), GPUs, retries, device, kept weights."""

    cpus: float = 1
    gpus: float = 0
    retries: int = 0
    keep_weights: bool = False
    keep_best: int | None = 5
    device: str = "cpu"
    threads: int | None = None
    test_sizes: tuple | None = None

    def __post_init__(self):
        sizes = self.test_sizes
        if isinstance(sizes, (list, tuple)):
            object.__setattr__(self, "test_sizes", tuple(sizes))
        _check("trial", [
            ("cpus", self.cpus, _num(self.cpus) and 0 < self.cpus <= 1024, "a number in (0, 1024]"),
            ("gpus", self.gpus, _num(self.gpus) and 0 <= self.gpus <= 64, "a number in [0, 64]"),
            ("retries", self.retries, _int(self.retries) and 0 <= self.retries <= 100, "an integer in 0..100"),
            ("keep_weights", self.keep_weights, isinstance(self.keep_weights, bool), "true or false"),
            ("keep_best", self.keep_best, self.keep_best is None or (_int(self.keep_best) and self.keep_best >= 1),
             "a positive integer, or null to keep every model's weights"),
            ("device", self.device, isinstance(self.device, str) and bool(self.device), "e.g. cpu or cuda"),
            ("threads", self.threads, self.threads is None or (_int(self.threads) and 1 <= self.threads <= 1024),
             "an integer in 1..1024"),
            ("test_sizes", sizes, sizes is None or (isinstance(sizes, (list, tuple)) and len(sizes) > 0 and all(
                _int(s) and 1 <= s <= MAX_RES for s in sizes)), f"a list of integers in 1..{MAX_RES}"),
        ])

    @property
    def torch_threads(self) -> int:
        return max(1, int(self.threads or self.cpus))


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


@dataclass(frozen=True)
class Noise:
    """The noise floor: retrain `models` of the samples (spread over the error range) with `seeds` seeds in all."""

    models: int = 0
    seeds: int = 3

    def __post_init__(self):
        _check("noise", [
            ("models", self.models, _int(self.models) and 0 <= self.models <= 10_000, "an integer >= 0"),
            ("seeds", self.seeds, _int(self.seeds) and 2 <= self.seeds <= 100,
             "an integer in 2..100 (the sweep's own seed counts as one)"),
        ])

    @property
    def repeats(self) -> int:
        """Extra trainings per chosen model."""
        return self.seeds - 1 if self.models else 0


@dataclass(frozen=True)
class Reward:
    """EfficientNetV2's training-aware reward A * S^w * P^v (S step time over s_ref, P params over p_ref)."""

    w: float = -0.07
    v: float = -0.05
    s_ref: float = 1.0
    p_ref: float = 1e6

    def __post_init__(self):
        _check("reward", [(k, getattr(self, k), _num(getattr(self, k)), "a number") for k in ("w", "v")]
               + [(k, getattr(self, k), _num(getattr(self, k)) and getattr(self, k) > 0, "a positive number")
                  for k in ("s_ref", "p_ref")])


@dataclass(frozen=True)
class Grid:
    """EfficientNet's step 1: (alpha, beta, gamma) >= 1 on a `step` grid up to `max` with alpha*beta^2*gamma^2 within
    2 * (1 +- tol), each scaling the base (width, depth multipliers, base_res) at compound coefficient phi."""

    step: float = 0.05
    tol: float = 0.05
    max: float = 2.0
    base_res: int = 224
    phi: float = 1
    width: float = 1.0
    depth: float = 1.0

    def __post_init__(self):
        _check("grid", [
            ("step", self.step, _num(self.step) and 0 < self.step <= 1, "a number in (0, 1]"),
            ("tol", self.tol, _num(self.tol) and 0 <= self.tol < 1, "a number in [0, 1)"),
            ("max", self.max, _num(self.max) and 1 <= self.max <= 10, "a number in [1, 10]"),
            ("base_res", self.base_res, _int(self.base_res) and 1 <= self.base_res <= MAX_RES,
             f"an integer in 1..{MAX_RES}"),
            ("phi", self.phi, _num(self.phi) and 0 <= self.phi <= 20, "a number in [0, 20]"),
            ("width", self.width, _num(self.width) and self.width > 0, "a positive number"),
            ("depth", self.depth, _num(self.depth) and self.depth > 0, "a positive number"),
        ])


def parse_budget(v) -> tuple[str, float]:
    """A search budget: N trials (an integer) or wall time ('90s', '10m', '1.5h') -> ('trials', N) / ('seconds', s)."""
    if _int(v) and v >= 1:
        return "trials", v
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(s|m|min|h)\s*", str(v)) if not isinstance(v, bool) else None
    if m:
        secs = float(m.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
        if secs > 0:
            return "seconds", secs
    if isinstance(v, str) and v.strip().isdigit() and int(v) >= 1:
        return "trials", int(v)
    raise DseError(f"search.budget: must be a number of trials (e.g. 32) or a time (e.g. 90s, 10m, 2h), got {v!r}")


@dataclass(frozen=True)
class Search:
    """`dse search`: the budget (trials or wall time), the scheduler (ASHA or none), the searcher (random draws from
    the band sampler, or Optuna's TPE), ASHA's grace period (epochs; null: from the recipe, see dse.search) and
    reduction factor, and caps on trials (for time budgets) and on band refusals per suggestion."""

    budget: int | str = 32
    scheduler: str = "asha"
    searcher: str = "random"
    grace: int | None = None
    reduction: float = 2
    max_trials: int = 1000
    max_refused: int = 2000

    def __post_init__(self):
        parse_budget(self.budget)
        _check("search", [
            ("scheduler", self.scheduler, self.scheduler in ("asha", "none"), "asha or none"),
            ("searcher", self.searcher, self.searcher in ("random", "tpe"), "random or tpe"),
            ("grace", self.grace, self.grace is None or (_int(self.grace) and self.grace >= 1),
             "a positive number of epochs, or null"),
            ("reduction", self.reduction, _num(self.reduction) and 1 < self.reduction <= 100, "a number in (1, 100]"),
            ("max_trials", self.max_trials, _int(self.max_trials) and 1 <= self.max_trials <= 100_000,
             "an integer in 1..100000"),
            ("max_refused", self.max_refused, _int(self.max_refused) and self.max_refused >= 1, "a positive integer"),
        ])

    @property
    def trials(self) -> int:
        """The number of trials to run: the budget, or max_trials under a time budget."""
        kind, v = parse_budget(self.budget)
        return int(v) if kind == "trials" else self.max_trials

    @property
    def seconds(self) -> float | None:
        kind, v = parse_budget(self.budget)
        return v if kind == "seconds" else None


SECTIONS = {"data": DataSpec, "train": Recipe, "trial": Trial, "progressive": Progressive, "noise": Noise,
            "reward": Reward, "grid": Grid, "search": Search}
KEYS = ("name", "doc", "spaces", "n", "seed", "flops", "params", "acts", "samples", *SECTIONS)


@dataclass(frozen=True)
class Experiment:
    """A sweep definition: spaces + band + n (or a samples file, or a grid), data, recipe, trials, noise floor."""

    name: str
    spaces: tuple[str, ...] = ()
    n: int = 0
    seed: int = 0
    bands: dict = field(default_factory=dict)
    samples: str | None = None
    data: DataSpec = DataSpec()
    train: Recipe = Recipe()
    trial: Trial = Trial()
    progressive: Progressive | None = None
    noise: Noise = Noise()
    reward: Reward = Reward()
    grid: Grid | None = None
    search: Search | None = None
    doc: str = ""

    @property
    def cpus(self) -> float:
        return self.trial.cpus

    def to_dict(self) -> dict:
        """The experiment in its file format (bands as [lo, hi]); parse(to_dict()) gives it back."""
        d = {"name": self.name, "doc": self.doc, "spaces": list(self.spaces), "n": self.n, "seed": self.seed}
        d.update({k: list(v) for k, v in self.bands.items()})
        if self.samples:
            d["samples"] = self.samples
        for k in SECTIONS:
            v = getattr(self, k)
            if v is not None and not (k == "noise" and not v.models):
                d[k] = _asdict(v)
        return d

    def replace(self, **kw) -> "Experiment":
        return dataclasses.replace(self, **kw)


def _band(v, what: str) -> tuple:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        if not all(x is None or _num(x) for x in v):
            raise DseError(f"{what}: bounds must be finite numbers, got {list(v)}")
        return check_band(tuple(v), what)
    return tuple(parse_band(str(v), what))


def parse(d: dict, path: str = "<experiment>", overrides: dict | None = None) -> Experiment:
    """Validate an experiment mapping (overrides such as {'data.path': ...} are applied first)."""
    if not isinstance(d, dict):
        raise DseError(f"{path}: an experiment file must be a mapping")
    d = dict(d)
    for k, v in (overrides or {}).items():
        head, _, tail = k.partition(".")
        if tail:
            d[head] = {**(d.get(head) or {}), tail: v}
        elif isinstance(v, dict) and isinstance(d.get(head), dict):
            d[head] = {**d[head], **v}  # a section given as a mapping adds to the file's
        else:
            d[head] = v
    for k in d:
        if k not in KEYS:
            close = difflib.get_close_matches(str(k), KEYS, n=1)
            raise DseError(f"{path}: {k}: unknown key" + (f" (did you mean '{close[0]}'?)" if close else ""))
    try:
        return _parse(d, path)
    except DseError as e:
        msg = str(e)
        raise DseError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from None


def _parse(d: dict, path: str) -> Experiment:
    name = d.get("name") or Path(path).stem
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise DseError(f"name: {name!r} must be letters, digits, '_', '-' or '.', not start with '.', and not "
                       "contain '..' (it names the folder runs/<name>)")
    spaces = d.get("spaces") or []
    spaces = [spaces] if isinstance(spaces, str) else spaces
    if not isinstance(spaces, list) or not all(isinstance(s, str) and s for s in spaces):
        raise DseError(f"spaces: must be a list of space names, got {spaces!r}")
    twice = sorted({s for s in spaces if spaces.count(s) > 1})
    if twice:
        raise DseError(f"spaces: {', '.join(twice)} listed twice; each space is sampled once (raise n for more "
                       "samples)")
    sec = {k: _from_dict(cls, d.get(k), k) if d.get(k) is not None else None for k, cls in SECTIONS.items()}
    samples, grid = d.get("samples"), sec["grid"]
    if not spaces and not samples and not grid:
        raise DseError("spaces: give a list of spaces (with n and a band), a samples file, or a grid")
    n = d.get("n", 0)
    if spaces and not samples and not grid and not sec["search"] and not (_int(n) and 1 <= n <= MAX_N):
        raise DseError(f"n: must be an integer in 1..{MAX_N}, got {n!r}")
    if n is not None and not (_int(n) and 0 <= n <= MAX_N):
        raise DseError(f"n: must be an integer in 0..{MAX_N}, got {n!r}")
    seed = d.get("seed", 0)
    if not (_int(seed) and 0 <= seed < 2 ** 32):
        raise DseError(f"seed: must be an integer in 0..2^32-1, got {seed!r}")
    bands = {m: _band(d[m], m) for m in ("flops", "params", "acts") if d.get(m) is not None}
    if samples is not None:
        if not isinstance(samples, str):
            raise DseError(f"samples: must be a file name, got {samples!r}")
        sp = Path(samples)
        if not sp.is_absolute() and (Path(path).parent / sp).exists():
            sp = Path(path).parent / sp
        samples = str(sp)
    doc = d.get("doc") or ""
    return Experiment(name=name, spaces=tuple(spaces), n=int(n or 0), seed=seed, bands=bands, samples=samples,
                      data=sec["data"] or DataSpec(), train=sec["train"] or Recipe(), trial=sec["trial"] or Trial(),
                      progressive=sec["progressive"], noise=sec["noise"] or Noise(), reward=sec["reward"] or Reward(),
                      grid=grid, search=sec["search"], doc=str(doc))


def read_yaml(path: str | Path) -> dict:
    """Safe-load a YAML file, with a one-line error naming the file (dse.io.load_yaml)."""
    from .io import load_yaml

    return load_yaml(path, "experiment file")


def load(path: str | Path, overrides: dict | None = None) -> Experiment:
    """Read and validate an experiment file."""
    return parse(read_yaml(path), str(path), overrides)


def saved(folder: str | Path) -> Experiment:
    """The experiment a sweep folder was made from (its experiment.yaml): the one loader for sweeps, runs, fixres."""
    f = Path(folder) / "experiment.yaml"
    if not f.is_file():
        raise DseError(f"{folder}: not a sweep folder, or it has lost its experiment.yaml")
    return load(f)


def diff(a: Experiment, b: Experiment) -> list[str]:
    """The dotted keys whose values differ between two experiments (file format)."""
    da, db = a.to_dict(), b.to_dict()
    out = []
    for k in sorted(set(da) | set(db)):
        x, y = da.get(k), db.get(k)
        if isinstance(x, dict) or isinstance(y, dict):
            x, y = x or {}, y or {}
            out += [f"{k}.{s}" for s in sorted(set(x) | set(y)) if x.get(s) != y.get(s)]
        elif x != y:
            out.append(k)
    return out
