"""Experiment files (experiments/*.yaml): what to sample, which data, how to train, how to run trials."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import DseError
from .units import check_band, parse_band

KEYS = {"name", "doc", "spaces", "n", "seed", "flops", "params", "acts", "samples", "data", "train", "trial",
        "reward", "progressive", "grid"}
GRID_KEYS = {"step", "tol", "max", "base_res", "phi", "width", "depth"}
REWARD_KEYS = {"w", "v", "s_ref", "p_ref"}
DATA_KEYS = {"name", "path", "res", "val_frac"}
TRIAL_KEYS = {"cpus", "gpus", "retries", "keep_weights", "device", "threads", "faults", "test_sizes"}


@dataclass(frozen=True)
class Experiment:
    """A sweep definition: spaces + band + n (or a samples file), data, training recipe, trial resources."""

    name: str
    spaces: tuple[str, ...] = ()
    n: int = 0
    seed: int = 0
    bands: dict = field(default_factory=dict)
    samples: str | None = None
    data: dict = field(default_factory=lambda: {"name": "digits", "res": 32})
    train: dict = field(default_factory=dict)
    trial: dict = field(default_factory=lambda: {"cpus": 1})
    doc: str = ""
    reward: dict = field(default_factory=dict)
    progressive: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The experiment in its file format (bands as [lo, hi]); parse(to_dict()) gives it back."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "bands"}
        d["spaces"] = list(self.spaces)
        d.update({k: list(v) for k, v in self.bands.items()})
        return d

    @property
    def cpus(self) -> float:
        return self.trial.get("cpus", 1)


def _band(v, what: str) -> tuple:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return check_band(tuple(v), what)
    return tuple(parse_band(str(v), what))


def _fail(path, key, why):
    raise DseError(f"{path}: {key}: {why}")


def parse(d: dict, path: str = "<experiment>", overrides: dict | None = None) -> Experiment:
    """Validate an experiment mapping (overrides such as {'data.path': ...} are applied first)."""
    from .train import Recipe

    if not isinstance(d, dict):
        raise DseError(f"{path}: an experiment file must be a mapping")
    d = {**d, "data": dict(d.get("data") or {}), "train": dict(d.get("train") or {}),
         "trial": dict(d.get("trial") or {})}
    for k, v in (overrides or {}).items():
        head, _, tail = k.partition(".")
        if tail:
            d.setdefault(head, {})[tail] = v
        else:
            d[head] = v
    for k in d:
        if k not in KEYS:
            close = difflib.get_close_matches(str(k), KEYS, n=1)
            _fail(path, k, "unknown key" + (f" (did you mean '{close[0]}'?)" if close else ""))
    name = d.get("name") or Path(path).stem
    spaces = d.get("spaces") or []
    if isinstance(spaces, str):
        spaces = [spaces]
    samples = d.get("samples")
    grid = dict(d.get("grid") or {})
    if set(grid) - GRID_KEYS:
        _fail(path, f"grid.{sorted(set(grid) - GRID_KEYS)[0]}", f"unknown key (known: {', '.join(sorted(GRID_KEYS))})")
    if not spaces and not samples and not grid:
        _fail(path, "spaces", "give a list of spaces (with n and a band), a samples file, or a grid")
    n = d.get("n", 0)
    if spaces and not samples and not grid and (not isinstance(n, int) or isinstance(n, bool) or n <= 0):
        _fail(path, "n", f"must be a positive integer, got {n!r}")
    bands = {m: _band(d[m], f"{path}: {m}") for m in ("flops", "params", "acts") if d.get(m) is not None}
    for sub, keys in (("data", DATA_KEYS), ("trial", TRIAL_KEYS)):
        bad = set(d[sub]) - keys
        if bad:
            _fail(path, f"{sub}.{sorted(bad)[0]}", f"unknown key (known: {', '.join(sorted(keys))})")
    data = {"name": "digits", "res": 32, **d["data"]}
    if not (data["res"] == "net" or (isinstance(data["res"], int) and data["res"] > 0)):
        _fail(path, "data.res", f"must be a positive integer or 'net' (each sample's own resolution), got {data['res']!r}")
    try:
        Recipe.from_dict(d["train"])
    except DseError as e:
        _fail(path, "train", str(e))
    trial = {"cpus": 1, "retries": 0, **d["trial"]}
    prog = dict(d.get("progressive") or {})
    if prog:
        from .progressive import Progressive
        try:
            Progressive.from_dict(prog)
        except DseError as e:
            _fail(path, "progressive", str(e))
    if trial.get("test_sizes") is not None:
        from .fixres import check_sizes
        try:
            trial["test_sizes"] = check_sizes(trial["test_sizes"])
        except DseError as e:
            _fail(path, "trial.test_sizes", str(e))
    reward = dict(d.get("reward") or {})
    if set(reward) - REWARD_KEYS or not all(isinstance(v, (int, float)) for v in reward.values()):
        _fail(path, "reward", f"numbers for {', '.join(sorted(REWARD_KEYS))} only, got {reward}")
    if not isinstance(trial["cpus"], (int, float)) or trial["cpus"] <= 0:
        _fail(path, "trial.cpus", f"must be positive, got {trial['cpus']!r}")
    if samples:
        sp = Path(samples)
        if not sp.is_absolute():
            sp = (Path(path).parent / sp) if (Path(path).parent / sp).exists() else sp
        samples = str(sp)
    return Experiment(name=str(name), spaces=tuple(spaces), n=int(n or 0), seed=int(d.get("seed", 0)), bands=bands,
                      samples=samples, data=data, train=dict(d["train"]), trial=trial, doc=str(d.get("doc", "")),
                      reward=reward, progressive=prog, grid=grid)


def load(path: str | Path, overrides: dict | None = None) -> Experiment:
    """Read and validate an experiment file with a safe YAML loader."""
    p = Path(path)
    if not p.is_file():
        raise DseError(f"experiment file not found: {p}")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise DseError(f"{p}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    return parse(d, str(p), overrides)
