"""Parameter kinds of a space file and their exact sampling distributions.

Every quantized kind (int, choice, pow2, float with q) has a finite support with explicit probabilities, so
monotone constraints can be sampled exactly (no rejection) by a small dynamic programme. Log-uniform quantized
kinds are log-uniform on [low - q/2, high + q/2] and then rounded to the grid, so each grid value gets the
log-measure of its rounding cell. Continuous floats (no q) are sampled directly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KINDS = ("int", "float", "choice", "pow2", "fixed")


def decimals(q: float) -> int:
    """Decimal places of a quantum such as 0.01 (for clean float grids)."""
    return max(0, -int(math.floor(math.log10(q) + 1e-9))) if q < 1 else 0


@dataclass(frozen=True)
class Param:
    """One declared parameter: its kind, range or values, and whether it has one value per stage."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    q: float | None = None
    values: tuple = ()
    per_stage: bool = False

    @property
    def fixed(self):
        """The value of a fixed parameter (a list for per-stage values)."""
        v = self.values[0]
        return [self.cast(x) for x in v] if isinstance(v, tuple) else self.cast(v)

    @property
    def categorical(self) -> bool:
        """A choice among names (e.g. block types): unordered, so no monotone constraint applies."""
        return any(isinstance(v, str) for v in self.values)

    def support(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sorted values, probabilities) for discrete kinds, None for a continuous float."""
        if self.kind == "choice" or (self.kind == "fixed" and not isinstance(self.values[0], tuple)):
            if self.categorical:
                v = np.array(self.values, dtype=object)
            else:
                v = np.array(sorted(self.values), dtype=float)
            return v, np.full(len(v), 1.0 / len(v))
        if self.kind == "pow2":
            k = np.arange(int(round(math.log2(self.low))), int(round(math.log2(self.high))) + 1)
            v = 2.0 ** k
            return v, np.full(len(v), 1.0 / len(v))
        q = self.q or (1 if self.kind == "int" else None)
        if q is None:
            return None
        n = int(round((self.high - self.low) / q)) + 1
        v = np.round(self.low + q * np.arange(n), decimals(q))
        if not self.log:
            return v, np.full(n, 1.0 / n)
        edges = np.log(np.concatenate([v - q / 2, [v[-1] + q / 2]]))
        p = np.diff(edges)
        return v, p / p.sum()

    def draw(self, rng: np.random.Generator, shape) -> np.ndarray:
        """Independent draws of the given shape."""
        sup = self.support()
        if sup is not None:
            v, p = sup
            return v[rng.choice(len(v), size=shape, p=p)]
        if self.log:
            return np.exp(rng.uniform(math.log(self.low), math.log(self.high), size=shape))
        return rng.uniform(self.low, self.high, size=shape)

    def draw_monotone(self, rng: np.random.Generator, n: int, s: int, decreasing: bool = False) -> np.ndarray:
        """n sequences of length s drawn i.i.d. per stage *conditioned* on being monotone (exact, no rejection)."""
        sup = self.support()
        if sup is None:  # continuous: ties have probability 0, so sorting gives the exact conditional law
            x = np.sort(self.draw(rng, (n, s)), axis=1)
            return x[:, ::-1] if decreasing else x
        v, p = sup
        if decreasing:
            v, p = v[::-1], p[::-1]
        m = len(v)
        # W[k][i]: total weight of completing positions k..s-1 given position k-1 holds index i (suffix sums)
        W = [np.ones(m)]
        for _ in range(s - 1):
            W.append(np.cumsum((p * W[-1])[::-1])[::-1])
        W = W[::-1]  # W[k] for k = 0..s-1; W[s-1] = ones
        out = np.empty((n, s), dtype=int)
        lo = np.zeros(n, dtype=int)
        for k in range(s):
            c = np.cumsum(p * W[k])
            start = np.where(lo > 0, c[np.maximum(lo - 1, 0)], 0.0)
            u = start + rng.random(n) * (c[-1] - start)
            idx = np.minimum(np.searchsorted(c, u, side="right"), m - 1)
            out[:, k] = lo = np.maximum(idx, lo)
        return v[out]

    def outside(self, v) -> str | None:
        """Why one value is not one the space samples (None: it is): its range, integer grid, powers of two or
        choices. A fixed parameter is a default that may be overridden; only a finite number is asked of it."""
        if self.categorical or isinstance(v, str):
            if self.kind == "fixed" or (self.kind == "choice" and v in self.values):
                return None
            return f"is not one of {', '.join(map(str, self.values))}" if self.kind == "choice" else "is not a number"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "is not a number"
        if not math.isfinite(v):
            return "is not a finite number"
        if self.kind == "fixed":
            return None
        if self.kind == "choice":
            return None if v in self.values else f"is not one of {', '.join(map(str, self.values))}"
        lo, hi = self.low, self.high
        slack = 1e-9 * max(1.0, abs(lo), abs(hi))  # a float at the end of a q-rounded range
        if not lo - slack <= v <= hi + slack:
            return f"is outside its range {lo:g}..{hi:g}"
        if self.kind == "int" and v != int(v):
            return f"is not an integer (its range is {lo:g}..{hi:g})"
        if self.kind == "pow2" and 2.0 ** round(math.log2(v)) != v:
            return f"is not a power of two in {lo:g}..{hi:g}"
        if self.q and float(self.q).is_integer() and self.q > 1 and v % self.q:
            return f"is not a multiple of {self.q:g} (its quantum)"
        return None

    def cast_all(self, x: np.ndarray) -> list:
        """Drawn values as Python values (nested lists for per-stage draws), typed like `cast`."""
        if self.categorical:
            return np.asarray(x, dtype=object).tolist()
        if self.kind in ("int", "pow2") or (self.kind in ("choice", "fixed")
                                            and all(float(v).is_integer() for v in self.values)):
            return np.rint(x).astype(int).tolist()
        if self.q:
            return np.round(x, decimals(self.q)).tolist()
        return np.asarray(x, dtype=float).tolist()

    def cast(self, x):
        """A drawn value in its natural type (int for integral kinds, rounded float for quantized floats)."""
        if isinstance(x, str):
            return x
        if self.kind in ("int", "pow2") or (self.kind in ("choice", "fixed") and float(x).is_integer()):
            return int(round(float(x)))
        if self.q:
            return round(float(x), decimals(self.q))
        return float(x)
