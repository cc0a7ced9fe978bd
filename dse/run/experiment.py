"""Experiment files (experiments/*.yaml) as typed sections: what to sample, which data, how to train, how to run
trials, how to measure the noise floor. Parsing imports no torch; trials receive these dataclasses as they are."""
from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DseError
from ..space.units import check_band, parse_band
from ..train.recipe import MAX_RES, Eval, Progressive, Recipe, _asdict, _check, _coerce, _from_dict, _int, _num
from .resources import device_for, gpus_problem

DATASETS = ("digits", "fashion_mnist", "mnist", "kmnist", "cifar10", "cifar100", "imagefolder",
            "cache")  # dse.data.NAMES
WITH_TEST = ("fashion_mnist", "mnist", "kmnist", "cifar10", "cifar100", "imagefolder",
             "cache")  # an official test split
BACKENDS = ("inductor", "aot_eager", "eager", "cudagraphs")  # torch.compile backends trial.compile may name
MAX_N = 1_000_000
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DataSpec:
    """The data set: its name, a local folder (else $DSE_DATA/<name>, else its usual place), the training resolution
    (or `net`), which images validate (`val`: test, the official test split, the default where one exists; or
    split, a stratified `val_frac` of the training set), and stratified subsets of `n_train` training and `n_val`
    validation images."""

    name: str = "digits"
    path: str | None = None
    res: int | str = 32
    val: str | None = None
    val_frac: float = 0.2
    n_train: int | None = None
    n_val: int | None = None

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
            ("val", self.val, self.val in (None, "test", "split"), "test or split"),
            ("val_frac", self.val_frac, _num(self.val_frac) and 0 < self.val_frac < 1, "a number in (0, 1)"),
            ("n_train", self.n_train, self.n_train is None or (_int(self.n_train) and 1 <= self.n_train <= 10 ** 9),
             "a positive integer (a stratified subset of the training images)"),
            ("n_val", self.n_val, self.n_val is None or (_int(self.n_val) and 1 <= self.n_val <= 10 ** 9),
             "a positive integer (a stratified subset of the validation images)"),
        ])
        if self.val == "test" and name not in WITH_TEST:
            raise DseError(f"data.val: test: {name} has no test split; use val: split (with val_frac)")

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        """From the file's mapping: a val_frac given without val means val: split."""
        if isinstance(d, dict) and "val_frac" in d and "val" not in d:
            d = {**d, "val": "split"}
        return _from_dict(cls, d, "data")

    def args(self, res: int | None = None) -> dict:
        """Keyword arguments of dse.data.load_data (at `res` when the spec says `net`)."""
        return {"name": self.name, "path": self.path, "res": int(res if res is not None else self.res),
                "val": self.val, "val_frac": float(self.val_frac), "n_train": self.n_train, "n_val": self.n_val}


@dataclass(frozen=True)
class Trial:
    """How one trial runs: CPUs (also its torch threads unless `threads`), GPUs (a fraction packs several trials on one
    GPU), retries, device (null: cuda when the trial asks for GPUs, else cpu), kept weights."""

    cpus: float = 1
    gpus: float = 0
    retries: int = 0
    keep_weights: bool = False
    keep_best: int | None = 5
    device: str | None = None
    threads: int | None = None
    test_sizes: tuple | None = None
    finetune: int = 0
    compile: bool | str = False

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
            ("device", self.device, self.device is None or (isinstance(self.device, str) and bool(self.device)),
             "e.g. cpu or cuda (null: cuda when trial.gpus > 0, else cpu)"),
            ("threads", self.threads, self.threads is None or (_int(self.threads) and 1 <= self.threads <= 1024),
             "an integer in 1..1024"),
            ("test_sizes", sizes, sizes is None or (isinstance(sizes, (list, tuple)) and len(sizes) > 0 and all(
                _int(s) and 1 <= s <= MAX_RES for s in sizes)), f"a list of integers in 1..{MAX_RES}"),
            ("finetune", self.finetune, _int(self.finetune) and 0 <= self.finetune <= 100 and (
                not self.finetune or sizes is not None), "epochs in 0..100 of FixRes fine-tuning at each test size "
             "(needs test_sizes)"),
            ("compile", self.compile, isinstance(self.compile, bool) or self.compile in BACKENDS,
             "true (torch.compile with inductor), false, or a backend: " + ", ".join(BACKENDS)),
        ])
        why = gpus_problem(self.gpus)
        if why:
            raise DseError(f"trial.gpus: {why}, got {self.gpus!r}")
        if self.device == device_for(None, self.gpus):
            object.__setattr__(self, "device", None)  # the default, written as null (old folders said cpu)
        if self.device_name.startswith("cuda") and not self.gpus:
            raise DseError(f"trial.device: {self.device} needs trial.gpus > 0 (Ray hides the GPUs from a trial "
                           "that asks for none); e.g. gpus: 1, or 0.25 to pack 4 trials on a GPU")

    @property
    def torch_threads(self) -> int:
        return max(1, int(self.threads or self.cpus))

    @property
    def device_name(self) -> str:
        """The device the trial trains on (dse.run.resources.device_for)."""
        return device_for(self.device, self.gpus)


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
    2 * (1 +- tol), each scaling the base (width, depth multipliers, base_res) of a compound space (`space`, by
    default efficientnet_compound: B0) at compound coefficient phi."""

    step: float = 0.05
    tol: float = 0.05
    max: float = 2.0
    base_res: int = 224
    phi: float = 1
    width: float = 1.0
    depth: float = 1.0
    space: str = "efficientnet_compound"

    def __post_init__(self):
        _check("grid", [
            ("space", self.space, isinstance(self.space, str) and bool(self.space), "a compound space's name"),
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
    the band sampler, or Optuna's TPE), ASHA's grace period (epochs; null: from the recipe, see dse.run.search) and
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


ARM_SECTIONS = ("data", "train", "eval", "trial", "progressive")  # what an arm may override
ARM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")


@dataclass(frozen=True)
class Arm:
    """One arm of a controlled experiment: a training variant (overrides of the data, train, eval, trial and
    progressive sections; `progressive: null` turns it off) of the experiment's sampled models, or one fixed network
    (`space` with `set` parameters or a `preset`) trained on its own. Arms named `x@g` are compared within group g."""

    name: str
    space: str | None = None
    set: dict | None = None
    preset: str | None = None
    overrides: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.name.split("@", 1)[1] if "@" in self.name else ""

    @property
    def fixed(self) -> bool:
        return self.space is not None

    def to_dict(self) -> dict:
        d = {"name": self.name}
        d.update({k: v for k, v in (("space", self.space), ("set", self.set), ("preset", self.preset))
                  if v is not None})
        return {**d, **self.overrides}

    @classmethod
    def from_dict(cls, d, where: str) -> "Arm":
        if not isinstance(d, dict):
            raise DseError(f"{where}: must be a mapping with a name, got {d!r}")
        known = ("name", "space", "set", "preset", *ARM_SECTIONS)
        for k in d:
            if k not in known:
                close = difflib.get_close_matches(str(k), known, n=1)
                raise DseError(f"{where}.{k}: unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
                               + f"; known: {', '.join(known)}")
        name = d.get("name")
        if not isinstance(name, str) or not ARM_NAME.match(name):
            raise DseError(f"{where}.name: must be letters, digits and _ . @ + -, got {name!r}")
        space, sets, preset = d.get("space"), d.get("set"), d.get("preset")
        if space is None and (sets is not None or preset is not None):
            raise DseError(f"{where}: set and preset need a space")
        if space is not None and not isinstance(space, str):
            raise DseError(f"{where}.space: must be a space name, got {space!r}")
        if sets is not None and not isinstance(sets, dict):
            raise DseError(f"{where}.set: must be a mapping of parameter values, got {sets!r}")
        for k in ARM_SECTIONS:
            if k in d and d[k] is not None and not isinstance(d[k], dict):
                raise DseError(f"{where}.{k}: must be a mapping, got {d[k]!r}")
        return cls(name, space, dict(sets) if sets is not None else None, preset,
                   {k: d[k] for k in ARM_SECTIONS if k in d})


SECTIONS = {"data": DataSpec, "train": Recipe, "eval": Eval, "trial": Trial, "progressive": Progressive,
            "noise": Noise, "reward": Reward, "grid": Grid, "search": Search}
KEYS = ("name", "doc", "spaces", "n", "seed", "flops", "params", "acts", "samples", *SECTIONS, "arms", "seeds")


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
    eval: Eval = Eval()
    trial: Trial = Trial()
    progressive: Progressive | None = None
    noise: Noise = Noise()
    reward: Reward = Reward()
    grid: Grid | None = None
    search: Search | None = None
    arms: tuple = ()
    seeds: int = 1
    doc: str = ""

    @property
    def cpus(self) -> float:
        return self.trial.cpus

    def arm(self, name: str | None) -> "Experiment":
        """The experiment as one arm trains: its sections with the arm's overrides (None: the experiment itself)."""
        if not name:
            return self
        a = next((x for x in self.arms if x.name == name), None)
        if a is None:
            raise DseError(f"no arm {name!r} (the experiment has {', '.join(x.name for x in self.arms) or 'none'})")
        return _arm_experiment(self, a)

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
        if self.arms:
            d["arms"] = [a.to_dict() for a in self.arms]
        if self.seeds != 1:
            d["seeds"] = self.seeds
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
    sec = {k: (cls.from_dict(d[k]) if hasattr(cls, "from_dict") else _from_dict(cls, d[k], k))
           if d.get(k) is not None else None for k, cls in SECTIONS.items()}
    samples, grid = d.get("samples"), sec["grid"]
    fixed_arms = bool(d.get("arms")) and all(isinstance(a, dict) and a.get("space") for a in d["arms"])
    if not spaces and not samples and not grid and not fixed_arms:
        raise DseError("spaces: give a list of spaces (with n and a band), a samples file, a grid, or arms that each "
                       "name a network")
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
    arms, seeds = _arms(d.get("arms")), d.get("seeds", 1)
    if not (_int(seeds) and 1 <= seeds <= 1000):
        raise DseError(f"seeds: must be an integer in 1..1000 (trainings of each model in each arm), got {seeds!r}")
    if seeds > 1 and sec["noise"] is not None and sec["noise"].models:
        raise DseError("seeds and noise: give one; with seeds > 1 every model's seeds measure the noise floor")
    if arms and (sec["search"] or grid):
        raise DseError("arms: a search or a grid cannot have arms")
    if arms and not spaces and not samples and not all(a.fixed for a in arms):
        raise DseError("arms: an arm without a space trains the experiment's sampled models; give spaces and n")
    exp = Experiment(name=name, spaces=tuple(spaces), n=int(n or 0), seed=seed, bands=bands, samples=samples,
                     data=sec["data"] or DataSpec(), train=sec["train"] or Recipe(), eval=sec["eval"] or Eval(),
                     trial=sec["trial"] or Trial(),
                     progressive=sec["progressive"], noise=sec["noise"] or Noise(), reward=sec["reward"] or Reward(),
                     grid=grid, search=sec["search"], arms=arms, seeds=seeds, doc=str(doc))
    for a in arms:  # every arm's sections are valid before anything runs
        _arm_experiment(exp, a)
    return exp


def _arms(v) -> tuple:
    if v is None:
        return ()
    if not isinstance(v, list) or not v:
        raise DseError(f"arms: must be a non-empty list of arms, got {v!r}")
    arms = tuple(Arm.from_dict(a, f"arms[{i}]") for i, a in enumerate(v))
    names = [a.name for a in arms]
    twice = next((x for i, x in enumerate(names) if x in names[:i]), None)
    if twice:
        raise DseError(f"arms: the name {twice!r} is given twice")
    return arms


def _merge(base: dict, over: dict) -> dict:
    """base with over's keys, mappings merged key by key (train.augment, ...)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _arm_experiment(exp: Experiment, a: Arm) -> Experiment:
    """The experiment with an arm's section overrides; errors name the arm."""
    d = exp.to_dict()
    d.pop("arms", None)
    for k, v in a.overrides.items():
        if k == "progressive" or v is None:
            d[k] = v  # a progressive section is replaced whole; null removes a section
        else:
            d[k] = _merge(d.get(k) or {}, v)
    try:
        sec = {k: (SECTIONS[k].from_dict(d[k]) if hasattr(SECTIONS[k], "from_dict") else
                   _from_dict(SECTIONS[k], d[k], k)) if d.get(k) is not None else None for k in ARM_SECTIONS}
    except DseError as e:
        raise DseError(f"arms[{exp.arms.index(a)}] ({a.name}): {e}") from None
    return dataclasses.replace(exp, data=sec["data"] or DataSpec(), train=sec["train"] or Recipe(),
                               eval=sec["eval"] or Eval(), trial=sec["trial"] or Trial(),
                               progressive=sec["progressive"])


def read_yaml(path: str | Path) -> dict:
    """Safe-load a YAML file, with a one-line error naming the file (dse.io.load_yaml)."""
    from ..io import load_yaml

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
