"""Read and validate space files: safe YAML, a schema with file/key/reason errors, and `extends` resolution."""
from __future__ import annotations

import copy
import difflib
import math
import os
from importlib import resources
from pathlib import Path

from ..errors import DseError
from ..io import load_yaml
from .params import KINDS

FAMILIES = ("anynet", "regnet", "effnet")
TOP = {
    "name": str, "extends": str, "doc": str, "family": str, "res": int, "classes": int, "stem_w": int,
    "head_w": int, "act": str, "dropout": (int, float), "block": str, "stages": int, "stride": (int, list),
    "se": (int, float), "q": int, "params": dict, "constraints": list, "presets": dict, "base": list,
    "scale": dict,
}
PARAM_KEYS = {"kind", "low", "high", "log", "q", "values", "per_stage", "value"}
# Sane limits: a space beyond them would exhaust memory or time long before it said anything useful.
LIMITS = {"stages": (1, 16), "res": (1, 4096), "classes": (1, 100_000), "stem_w": (1, 8192), "head_w": (0, 65_536),
          "q": (1, 1024)}
MAX_VALUE = 1e6  # any sampled parameter (depth, width, w0, wa, ...); widths of 1e6 channels are already absurd
MAX_SUPPORT = 1_000_000  # grid points of one quantized parameter
CONSTRAINTS = ("shared", "nondecreasing", "nonincreasing", "named", "expr")


def space_dirs(extra=()) -> list[Path]:
    """Where spaces are looked up: given dirs, $DSE_SPACES, the checkout's spaces/, the installed package."""
    dirs = [Path(d) for d in extra]
    dirs += [Path(d) for d in os.environ.get("DSE_SPACES", "").split(os.pathsep) if d]
    checkout = Path(__file__).resolve().parents[2] / "spaces"
    if checkout.is_dir():
        dirs.append(checkout)
    try:
        pkg = resources.files("dse.spaces")
        if pkg.is_dir():
            dirs.append(Path(str(pkg)))
    except (ModuleNotFoundError, TypeError):
        pass
    seen, out = set(), []
    for d in dirs:
        if d.resolve() not in seen:
            seen.add(d.resolve())
            out.append(d)
    return out


def list_spaces(extra=()) -> dict[str, Path]:
    """Space name -> file, the first directory winning."""
    found: dict[str, Path] = {}
    for d in space_dirs(extra):
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def find(name: str, extra=()) -> Path:
    """The file of a space given by name or path; unknown names list the closest ones."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        p = Path(name)
        if p.is_dir():
            raise DseError(f"{name}: is a folder, not a space file")
        if not p.is_file():
            raise DseError(f"space file not found: {name}")
        return p
    known = list_spaces(extra)
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) or sorted(known)[:5]
    raise DseError(f"unknown space '{name}'; closest: {', '.join(close)}")


def read(path: Path) -> dict:
    """Safe-load one YAML file into a mapping, with a one-line error naming the file (dse.io.load_yaml)."""
    data = load_yaml(path, "space file")
    if not isinstance(data, dict):
        raise DseError(f"{path}: a space file must be a mapping, got {type(data).__name__}")
    return data


def _err(path, key, why):
    return DseError(f"{path}: {key}: {why}")


def check_raw(d: dict, path) -> None:
    """Schema of one file before merging: known keys with the right types."""
    for k, v in d.items():
        if k not in TOP:
            close = difflib.get_close_matches(str(k), TOP, n=1)
            raise _err(path, k, "unknown key" + (f" (did you mean '{close[0]}'?)" if close else ""))
        if not isinstance(v, TOP[k]) or isinstance(v, bool):
            want = TOP[k].__name__ if isinstance(TOP[k], type) else " or ".join(t.__name__ for t in TOP[k])
            raise _err(path, k, f"must be {want}, got {type(v).__name__}")
    if "name" not in d:
        raise _err(path, "name", "missing")
    for k, (lo, hi) in LIMITS.items():
        if k in d and not lo <= d[k] <= hi:
            raise _err(path, k, f"must be in {lo}..{hi}, got {d[k]}")
    for k in ("dropout", "se"):
        if k in d and not (math.isfinite(d[k]) and 0 <= d[k] < 1):
            raise _err(path, k, f"must be a number in [0, 1), got {d[k]}")
    for pname, spec in d.get("params", {}).items():
        check_param(path, pname, spec)
    for i, c in enumerate(d.get("constraints", [])):
        if not (isinstance(c, dict) and len(c) == 1 and next(iter(c)) in CONSTRAINTS):
            raise _err(path, f"constraints[{i}]", f"must be one of {{{', '.join(CONSTRAINTS)}: name}}, got {c!r}")
        if not isinstance(next(iter(c.values())), str):
            raise _err(path, f"constraints[{i}]", "an expr constraint must be text, e.g. {expr: 'w[3] >= 2 * w[0]'}"
                       if "expr" in c else "the constraint must name one parameter")


def check_param(path, name, spec) -> None:
    key = f"params.{name}"
    if not isinstance(spec, dict):
        if isinstance(spec, (int, float, str, list)) and not isinstance(spec, bool):
            return  # shorthand: a fixed value (or per-stage list)
        raise _err(path, key, f"must be a mapping or a number, got {type(spec).__name__}")
    bad = set(spec) - PARAM_KEYS
    if bad:
        raise _err(path, key, f"unknown field(s) {', '.join(sorted(map(str, bad)))}")
    kind = spec.get("kind")
    for f in ("low", "high", "q", "value"):
        v = spec.get(f)
        if isinstance(v, str) and _float(v) is not None:
            raise _err(path, f"{key}.{f}", f"must be a number, got the text {v!r} (YAML reads an exponent without a "
                                           "sign as text: write 1.0e+11)")
        if _isnum(v) and not math.isfinite(v):
            raise _err(path, f"{key}.{f}", f"must be a finite number, got {v}")
        if _isnum(v) and abs(v) > MAX_VALUE:
            raise _err(path, f"{key}.{f}", f"must be at most {MAX_VALUE:g} in size, got {v:g}")
    for v in spec.get("values") or []:
        if _isnum(v) and (not math.isfinite(v) or abs(v) > MAX_VALUE):
            raise _err(path, f"{key}.values", f"must be finite numbers of at most {MAX_VALUE:g}, got {v}")
    if kind not in KINDS:
        raise _err(path, f"{key}.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "choice":
        vals = spec.get("values")
        if not isinstance(vals, list) or not vals or not (all(_isnum(v) for v in vals)
                                                          or all(isinstance(v, str) for v in vals)):
            raise _err(path, f"{key}.values", "choice needs a non-empty list of numbers (or of names)")
    elif kind == "fixed":
        v = spec.get("value")
        if not (_isnum(v) or isinstance(v, str) or (isinstance(v, list) and v)):
            raise _err(path, f"{key}.value", "fixed needs a number, a name or a per-stage list")
    else:
        lo, hi = spec.get("low"), spec.get("high")
        if not (_isnum(lo) and _isnum(hi)):
            raise _err(path, key, f"{kind} needs numeric low and high")
        if lo > hi:
            raise _err(path, key, f"low {lo} > high {hi}")
        q = spec.get("q")
        if q is not None and (not _isnum(q) or q <= 0):
            raise _err(path, f"{key}.q", f"must be a positive number, got {q!r}")
        if (spec.get("log") or kind == "pow2") and lo <= 0:
            raise _err(path, f"{key}.low", f"must be > 0 for a log-scale or pow2 parameter, got {lo}")
        if kind == "pow2" and any(_log2(x) is None for x in (lo, hi)):
            raise _err(path, key, "pow2 needs low and high that are powers of two")
        if kind == "int" and not all(isinstance(x, int) for x in (lo, hi)):
            raise _err(path, key, "int needs integer low and high")
        if q and kind in ("int", "float") and abs((hi - lo) / q - round((hi - lo) / q)) > 1e-9:
            raise _err(path, key, f"high - low must be a multiple of q={q}")
        if (q or kind == "int") and (hi - lo) / (q or 1) + 1 > MAX_SUPPORT:
            raise _err(path, key, f"{(hi - lo) / (q or 1) + 1:.3g} grid values; at most {MAX_SUPPORT:,} "
                                  "(raise q or narrow the range)")


def _isnum(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _float(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _log2(x):
    k = round(math.log2(x)) if x > 0 else None
    return k if k is not None and 2 ** k == x else None


def merge(parent: dict, child: dict) -> dict:
    """Child over parent: params and presets merge per key, constraints accumulate, other keys are replaced."""
    out = copy.deepcopy(parent)
    for k, v in child.items():
        if k in ("params", "presets"):
            out[k] = {**out.get(k, {}), **copy.deepcopy(v)}
        elif k == "constraints":
            out[k] = out.get(k, []) + copy.deepcopy(v)
        elif k != "extends":
            out[k] = copy.deepcopy(v)
    out.pop("doc", None) if "doc" not in child else None
    return out


def resolve(name: str, extra=()) -> tuple[dict, Path]:
    """The declaration of a space with its `extends` chain merged in (cycles are errors)."""
    chain: list[str] = []
    path = find(name, extra)
    raws = []
    while True:
        raw = read(path)
        check_raw(raw, path)
        if raw["name"] in chain:
            raise DseError(f"{path}: extends: cycle {' -> '.join(chain + [raw['name']])}")
        if path.stem != raw["name"] and not name.endswith((".yaml", ".yml")):
            raise _err(path, "name", f"'{raw['name']}' does not match the file name '{path.stem}'")
        chain.append(raw["name"])
        raws.append((raw, path))
        if "extends" not in raw:
            break
        parent = raw["extends"]
        local = path.parent / f"{parent}.yaml"
        path = local if local.is_file() else find(parent, extra)
    spec: dict = {}
    for raw, _ in reversed(raws):
        spec = merge(spec, raw)
    spec["name"] = raws[0][0]["name"]
    spec["extends_chain"] = chain[1:]
    own = raws[0][0].get("presets", {})
    spec["inherited_presets"] = [k for k in spec.get("presets", {}) if k not in own]  # kept if inside (space.load)
    return spec, raws[0][1]
