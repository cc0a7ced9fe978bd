"""A design space: parameters, constraints and a family; exact constrained draws and the band sampler."""
from __future__ import annotations

import math
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import families
from ..models.complexity import Cx, complexity
from ..models.config import Config, canonical
from ..errors import DseError
from .params import Param
from .spec import resolve
from .units import check_band, fmt, fmt_band

METRICS = ("flops", "params", "acts")
SPEC_OVERRIDES = ("base", "stem_w", "head_w", "act", "se")
CHUNK = 1024


@dataclass(frozen=True)
class Space:
    """A loaded space: the resolved declaration plus its parsed parameters and constraints."""

    name: str
    family: str
    params: tuple[Param, ...]
    constraints: tuple[tuple[str, str], ...]
    spec: dict = field(compare=False, repr=False)
    path: Path | None = field(default=None, compare=False, repr=False)

    @property
    def stages(self) -> int:
        return _stages(self.spec)

    @property
    def presets(self) -> dict:
        return self.spec.get("presets", {})

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise DseError(f"space {self.name} has no parameter '{name}' (it has {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def exprs(self) -> tuple:
        """The expression constraints (dse.space.expr.Expr: text only, so the Space still pickles to workers)."""
        from .expr import Expr

        return tuple(Expr(text, frozenset(self.names)) for kind, text in self.constraints if kind == "expr")

    def draw(self, rng: np.random.Generator, n: int) -> list[dict]:
        """n parameter dicts drawn from the space, honouring shared and monotone constraints exactly."""
        rule = {}
        for kind, pname in self.constraints:
            if kind not in ("named", "expr"):
                rule.setdefault(pname, set()).add(kind)
        cols, fixed = {}, {}
        for p in self.params:
            r = rule.get(p.name, set())
            if p.kind == "fixed":
                fixed[p.name] = p.fixed
            elif not p.per_stage:
                cols[p.name] = p.draw(rng, n)
            elif "shared" in r:
                cols[p.name] = np.repeat(p.draw(rng, (n, 1)), self.stages, axis=1)
            elif r & {"nondecreasing", "nonincreasing"}:
                cols[p.name] = p.draw_monotone(rng, n, self.stages, decreasing="nonincreasing" in r)
            else:
                cols[p.name] = p.draw(rng, (n, self.stages))
        lists = {p.name: p.cast_all(cols[p.name]) if p.name in cols else [fixed[p.name]] * n for p in self.params}
        return [dict(zip(lists, vals)) for vals in zip(*lists.values())]

    def net(self, p: dict):
        """The Net of a complete parameter dict (no name checks: the sampler's fast path)."""
        return families.FAMILY[self.family](self.spec, p)

    def outside(self, p: dict) -> list[str]:
        """Why parameter values lie outside the space (empty: inside), one reason per value: its declared range, its
        integer grid (e.g. RegNet's w0 in multiples of 8, as pycls requires), powers of two, choices, the number of
        per-stage values. Fixed parameters may be overridden (e.g. alpha of efficientnet_compound) by finite numbers.
        Names the space does not have are make's to refuse."""
        return _outside(self.params, self.stages, p)

    def make(self, p: dict, check: bool = True) -> Config:
        """The Config for given parameter values (unknown or missing names are errors); with `check`, every value must
        lie inside the space (Space.outside), as a sampled one does. Presets skip it: the published models need not."""
        unknown = sorted(set(p) - set(self.names))
        if unknown:
            raise DseError(f"space {self.name}: unknown parameter(s) {', '.join(unknown)}; "
                           f"it has {', '.join(self.names)}")
        why = self.outside(p) if check else []
        if why:
            raise DseError(f"space {self.name}: {'; '.join(why)}")
        fixed = {q.name: q.fixed for q in self.params if q.kind == "fixed"}
        full = {**fixed, **p}
        missing = [q for q in self.names if q not in full and self.family != "effnet"]  # effnet: base fills in
        if missing:
            raise DseError(f"space {self.name}: missing value(s) for {', '.join(missing)}")
        net = families.FAMILY[self.family](self.spec, full)
        return Config(space=self.name, params=tuple(full.items()), net=net)

    def preset(self, name: str, **params) -> Config:
        """A named preset (e.g. a zoo model) of this space, with `params` overriding its values."""
        key = name.lower()
        table = {k.lower(): v for k, v in self.presets.items()}
        if key not in table:
            raise DseError(f"space {self.name} has no preset '{name}'; presets: {', '.join(self.presets) or 'none'}")
        why = _outside(self.params, _stages({**self.spec, **table[key]}), params)  # values given on top of it
        if why:
            raise DseError(f"space {self.name}: {'; '.join(why)}")
        entry = dict(table[key])
        spec_keys = {k: entry.pop(k) for k in list(entry) if k in SPEC_OVERRIDES}
        sp = self
        if spec_keys:  # a preset may bring its own backbone (e.g. EfficientNetV2-M/L have 7 stages)
            import dataclasses
            sp = dataclasses.replace(self, spec={**self.spec, **spec_keys})
            per = {p.name for p in self.params if p.per_stage}
            entry = {k: v for k, v in entry.items() if k not in per or isinstance(v, list)}
        return sp.make({**entry, **params}, check=False)


    def presets_outside(self) -> dict[str, list[str]]:
        """Per preset, why it lies outside the sampled space (an empty list: inside). Presets are the published
        models (the pycls zoo, EfficientNet's B0-B7), and some lie outside the ranges the space samples."""
        return {k: _preset_outside(self.params, self.spec, v) for k, v in self.presets.items()}


def _stages(spec: dict) -> int:
    return len(spec["base"]) if "base" in spec else spec.get("stages", 4)


def _preset_outside(params: tuple[Param, ...], spec: dict, entry: dict) -> list[str]:
    """Why a preset lies outside the space (its backbone keys, if any, count as the space's)."""
    values = {k: v for k, v in entry.items() if k not in SPEC_OVERRIDES}
    return _outside(params, _stages({**spec, **entry}), values)


def _outside(params: tuple[Param, ...], stages: int, p: dict) -> list[str]:
    """Space.outside on the parsed parameters."""
    why = []
    for q in params:
        v = p.get(q.name)
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            if not q.per_stage:
                why.append(f"{q.name} takes one value, got {len(v)}")
                continue
            if len(v) != stages:
                why.append(f"{q.name} needs {stages} values (one per stage), got {len(v)}")
                continue
            bad: dict = {}  # (value, reason) -> its stages, so six equal values make one reason
            for i, x in enumerate(v):
                if (r := q.outside(x)) is not None:
                    bad.setdefault((str(x), r), []).append(str(i + 1))
            why += [f"{q.name}={x} (stage{'s' * (len(st) > 1)} {', '.join(st)}) {r}" for (x, r), st in bad.items()]
        elif (r := q.outside(v)) is not None:
            why.append(f"{q.name}={v} {r}")
    return why


def _param(name: str, raw) -> Param:
    if not isinstance(raw, dict):
        raw = {"kind": "fixed", "value": raw}
    if raw["kind"] == "fixed":
        v = raw["value"]
        return Param(name, "fixed", values=(tuple(v) if isinstance(v, list) else v,), per_stage=isinstance(v, list))
    return Param(name, raw["kind"], low=raw.get("low"), high=raw.get("high"), log=bool(raw.get("log", False)),
                 q=raw.get("q"), values=tuple(raw.get("values", ())), per_stage=bool(raw.get("per_stage", False)))


def load(name: str, extra_dirs=()) -> Space:
    """Load a space by name (or path), resolving `extends` and validating it as a whole."""
    spec, path = resolve(name, extra_dirs)
    fam = spec.get("family")
    if fam not in families.FAMILY:
        raise DseError(f"{path}: family: must be one of {', '.join(families.FAMILY)}, got {fam!r}")
    params = tuple(_param(k, v) for k, v in spec.get("params", {}).items())
    names = {p.name for p in params}
    _check_base(path, fam, spec, params)
    missing = [k for k in families.REQUIRED[fam] if k not in names]
    if missing:
        raise DseError(f"{path}: params: family {fam} needs {', '.join(missing)}")
    cons = []
    for i, c in enumerate(spec.get("constraints", [])):
        (kind, pname), = c.items()
        if kind == "expr":
            from .expr import parse

            pname = parse(pname, names, f"{path}: constraints[{i}]: expr").text
        elif kind != "named":
            if pname not in names:
                raise DseError(f"{path}: constraints: {kind}: unknown parameter '{pname}'")
            par = next(p for p in params if p.name == pname)
            if not par.per_stage:
                raise DseError(f"{path}: constraints: {kind}: '{pname}' is not a per-stage parameter")
            if kind != "shared" and par.categorical:
                raise DseError(f"{path}: constraints: {kind}: '{pname}' is a choice of names, it has no order")
        cons.append((kind, pname))
    clash = {p for k, p in cons if k == "nondecreasing"} & {p for k, p in cons if k == "nonincreasing"}
    if clash:
        raise DseError(f"{path}: constraints: '{clash.pop()}' cannot be both nondecreasing and nonincreasing")
    inherited = spec.pop("inherited_presets", [])
    drop = [k for k in inherited if _preset_outside(params, spec, spec["presets"][k])]
    if drop:  # a space that extends another lists the parent's presets that lie inside its own ranges only
        spec["presets"] = {k: v for k, v in spec["presets"].items() if k not in drop}
    return Space(name=spec["name"], family=fam, params=params, constraints=tuple(cons), spec=spec, path=path)


def _check_base(path, family: str, spec: dict, params: tuple[Param, ...]) -> None:
    """What the space names can be built: act, block types and their fields, `scale`, presets' backbones."""
    families.check(path, family, spec, params)


@dataclass(frozen=True)
class Sample:
    """One accepted configuration with its complexity."""

    config: Config
    cx: Cx

    @property
    def id(self) -> str:
        return self.config.id

    def to_dict(self) -> dict:
        return {**self.config.to_dict(), "flops": self.cx.flops, "params": self.cx.params, "acts": self.cx.acts}

    def to_json(self) -> str:
        return canonical(self.to_dict())


@dataclass(frozen=True)
class Samples:
    """The result of a band sampling run: samples in draw order plus the sampler's statistics."""

    space: str
    samples: tuple[Sample, ...]
    tried: int
    seconds: float
    bands: dict

    def __len__(self):
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __getitem__(self, i):
        return self.samples[i]

    @property
    def rate(self) -> float:
        return len(self.samples) / self.tried if self.tried else 0.0

    def to_frame(self):
        """One row per sample: id, space, the sampled parameters (per-stage ones as p1..pk), flops/params/acts."""
        import pandas as pd

        from ..results import flat_row

        return pd.DataFrame([flat_row(s.to_dict()) for s in self.samples])

    def to_jsonl(self) -> str:
        return "".join(s.to_json() + "\n" for s in self.samples)

    def summary(self) -> str:
        """Accepted/tried, the acceptance rate, and complexity quantiles."""
        lines = [f"{self.space}: accepted {len(self)}/{self.tried} tried ({100 * self.rate:.2f}%) "
                 f"in {self.seconds:.2f}s" + "".join(f", {k} in {fmt_band(b)}" for k, b in self.bands.items())]
        if len(self):
            qs = (0, 0.25, 0.5, 0.75, 1)
            for m in METRICS:
                v = np.quantile([getattr(s.cx, m) for s in self.samples], qs)
                lines.append(f"  {m:6s} min {fmt(v[0])}  q25 {fmt(v[1])}  median {fmt(v[2])}  "
                             f"q75 {fmt(v[3])}  max {fmt(v[4])}")
        return "\n".join(lines)


def describe(space: str, preset: str | None = None, at_res: int | None = None, **params) -> Sample:
    """One configuration of a space from given parameters (or a preset), with its complexity (at `at_res` if given)."""
    sp = load(space)
    cfg = sp.preset(preset, **params) if preset else sp.make(params)
    if at_res:
        cfg = Config(space=cfg.space, params=cfg.params, net=cfg.net.replace(res=at_res))
    return Sample(cfg, complexity(cfg.net))


def distance(cx: Cx, bands: dict) -> float:
    """How far outside the bands a complexity is (max log-ratio; 0 inside)."""
    worst = 0.0
    for m, (lo, hi) in bands.items():
        x = max(getattr(cx, m), 1)
        if lo is not None and x < lo:
            worst = max(worst, math.log(lo / x))
        if hi is not None and x > hi:
            worst = max(worst, math.log(x / hi))
    return worst


def inside(cx: Cx, bands: dict) -> bool:
    return all((lo is None or getattr(cx, m) >= lo) and (hi is None or getattr(cx, m) <= hi)
               for m, (lo, hi) in bands.items())


def _chunk(space: Space, seed: int, i: int, size: int, bands: dict):
    """Draw chunk i of the seed's stream: per candidate, (Sample or None); the closest miss; and per expression
    constraint, how many draws it held for (checked before any network is built, in the worker)."""
    rng = np.random.default_rng([seed, i])
    out, best = [], (math.inf, None)
    ps = space.draw(rng, size)
    exprs = space.exprs
    held = [0] * len(exprs)
    if exprs:
        keep = []
        for p in ps:
            ok = [e(p) for e in exprs]
            held = [h + k for h, k in zip(held, ok)]
            keep.append(all(ok))
    nets = families.nets(space.family, space.spec, [p for p, k in zip(ps, keep) if k] if exprs else ps)
    if exprs:
        it = iter(nets)
        nets = [next(it) if k else None for k in keep]
    for p, net in zip(ps, nets):
        if net is None:
            out.append(None)
            continue
        cx = complexity(net)
        if inside(cx, bands):
            cfg = Config(space=space.name, params=tuple(p.items()), net=net)
            out.append(Sample(cfg, cx))
        else:
            out.append(None)
            dist = distance(cx, bands)
            if dist < best[0]:
                best = (dist, cx)
    return out, best, held


def _named(space: Space, constraints: dict | None) -> dict:
    wanted = [n for k, n in space.constraints if k == "named"]
    given = constraints or {}
    missing = [n for n in wanted if n not in given]
    if missing:
        raise DseError(f"space {space.name}: named constraint '{missing[0]}' is not registered; pass "
                       f"constraints={{'{missing[0]}': fn}} to dse.sample (fn(params) -> bool, params the mapping "
                       "of parameter names to values, e.g. params['w'][3])")
    return {n: given[n] for n in wanted}


def _passes(s: Sample, checks: dict, held: dict) -> bool:
    """Whether a sample passes every named constraint (each called with the mapping of parameter names to values,
    per-stage ones as lists); counts the passes per constraint."""
    p = s.config.p
    ok = {name: bool(fn(p)) for name, fn in checks.items()}
    for name, v in ok.items():
        held[name] += v
    return all(ok.values())


def _die_with_parent(parent: int) -> None:
    """In a sampler worker: ask Linux to send SIGTERM when the parent dies (SIGTERM or SIGKILL to `dse sample`), and
    leave at once if it died before this worker could ask."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: workers end when their pipe to the parent closes
    if os.getppid() != parent:
        os._exit(0)


def sample(space: str | Space, n: int = 500, *, flops=None, params=None, acts=None, seed: int = 0,
           max_tries: int | None = None, workers: int = 1, constraints: dict[str, Callable] | None = None,
           progress: Callable[[int, int], None] | None = None, max_seconds: float = 120.0) -> Samples:
    """Draw n distinct configurations whose complexity lies inside the given bands (inclusive).

    The draw stream is split into fixed chunks seeded by (seed, chunk index) and merged in order, so the
    result is identical for any worker count. The search gives up after max_tries draws or max_seconds of wall
    time, whichever comes first, naming the closest sample it saw.
    """
    sp = load(space) if isinstance(space, str) else space
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise DseError(f"n must be a positive integer, got {n}")
    bands = {m: check_band(b, m) for m, b in (("flops", flops), ("params", params), ("acts", acts))
             if b is not None}
    checks = _named(sp, constraints)
    budget = max_tries if max_tries is not None else max(200_000, 400 * n)
    if budget <= 0:
        raise DseError(f"max_tries must be positive, got {budget}")
    t0 = time.perf_counter()
    seen: set[str] = set()
    got: list[Sample] = []
    tried, closest = 0, (math.inf, None)
    held, drawn = {e.text: 0 for e in sp.exprs}, 0  # draws each expression constraint held for, of `drawn`
    named_held = dict.fromkeys(checks, 0)  # in-band samples each named constraint held for
    pool = ProcessPoolExecutor(workers, initializer=_die_with_parent, initargs=(os.getpid(),)) if workers > 1 else None
    try:
        i = 0
        pending = []
        while len(got) < n and tried < budget and time.perf_counter() - t0 < max_seconds:
            while pool and len(pending) < 2 * workers:
                pending.append(pool.submit(_chunk, sp, seed, i + len(pending), CHUNK, bands))
            res = pending.pop(0).result() if pool else _chunk(sp, seed, i, CHUNK, bands)
            i += 1
            cands, best, h = res
            if best[0] < closest[0]:
                closest = best
            drawn += len(cands)
            for k, v in zip(held, h):
                held[k] += v
            for s in cands:
                tried += 1
                # named checks run here, in the parent: user functions (lambdas) need not pickle to workers
                if s is not None and s.id not in seen and _passes(s, checks, named_held):
                    seen.add(s.id)
                    got.append(s)
                    if len(got) == n:
                        break
                if tried >= budget:
                    break
            if progress:
                progress(len(got), tried)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if len(got) < n:
        where = ", ".join(f"{m} {fmt_band(b)}" for m, b in bands.items()) or "no band"
        near = ""
        if closest[1] is not None:
            near = "; closest seen: " + ", ".join(f"{m} {fmt(getattr(closest[1], m))}" for m in bands)
        what = "no sample reached the band" if not got else f"only {len(got)} of {n} distinct samples found"
        spent = f"{time.perf_counter() - t0:.0f}s and " if time.perf_counter() - t0 >= max_seconds else ""
        cons = [f"constraint '{k}' held for {v} of {drawn} draws" for k, v in held.items()]
        cons += [f"named constraint '{k}' held for {v} of the in-band samples" for k, v in named_held.items()]
        raise DseError(f"{sp.name}: {what} ({where}) after {spent}{tried} tries{near}"
                       + "".join(f"; {c}" for c in cons)
                       + ("; widen the band, relax the constraint or raise --max-tries" if cons else
                          "; widen the band or raise --max-tries"))
    return Samples(space=sp.name, samples=tuple(got), tried=tried, seconds=time.perf_counter() - t0, bands=bands)
