"""Expression constraints of a space file (`constraints: [{expr: "w[3] >= 2 * w[0]"}]`): a small, safe language.

An expression is parsed with `ast` and checked against an allow-list: the space's parameter names (per-stage ones
are lists, indexed from 0), numbers and strings, list/tuple literals, indexing and slices, arithmetic (+ - * / // %
**), comparisons (== != < <= > >=, in, not in), and/or/not, and calls of min, max, sum, all, any, len with plain
positional arguments. Anything else (attribute access, other calls, lambdas, comprehensions, conditional
expressions, keyword arguments) is refused when the space is loaded, naming the file and the offending part.

Evaluation walks the checked tree itself: no `eval`, no `compile`. An Expr holds only its source text and the
names it may read, so it pickles to sampler processes and Ray workers, which parse it again (cached per process).
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from functools import lru_cache

from ..errors import DseError

FUNCS = {"min": min, "max": max, "sum": sum, "all": all, "any": any, "len": len}
BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_}
CMPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
        ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
MAX_LEN = 1000  # characters of one expression
MAX_POW = 64  # largest exponent of **: 2 ** 64 is plenty for widths, 10 ** 10 ** 10 would hang the sampler


class ExprError(DseError):
    """An expression the language does not allow (or that fails on a sample); the message names the part."""


def _part(node: ast.AST, text: str) -> str:
    return ast.get_source_segment(text, node) or type(node).__name__


def _check(tree: ast.AST, text: str, names: frozenset) -> None:
    """Raise ExprError naming the first node outside the allow-list."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, ast.BoolOp, ast.And, ast.Or, ast.Subscript, ast.Slice,
                             ast.List, ast.Tuple)) or type(node) in BINOPS or type(node) in UNARY or type(node) in CMPS:
            continue
        if isinstance(node, ast.Compare):
            if not all(type(op) in CMPS for op in node.ops):
                raise ExprError(f"operator not allowed: '{_part(node, text)}'")
            continue
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            if type(node.op) not in (BINOPS if isinstance(node, ast.BinOp) else UNARY):
                raise ExprError(f"operator not allowed: '{_part(node, text)}'")
            continue
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float, str)):
                raise ExprError(f"only numbers and strings are allowed as constants: '{_part(node, text)}'")
            continue
        if isinstance(node, ast.Call):
            f = node.func
            if not (isinstance(f, ast.Name) and f.id in FUNCS):
                raise ExprError(f"call not allowed: '{_part(node, text)}' (only {', '.join(FUNCS)})")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ExprError(f"only plain positional arguments are allowed: '{_part(node, text)}'")
            continue
        if isinstance(node, ast.Name):
            if node.id in names or node.id in FUNCS:
                continue
            raise ExprError(f"unknown name '{node.id}' (the space's parameters: {', '.join(sorted(names))})")
        what = {ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.IfExp: "a conditional expression",
                ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.SetComp: "a comprehension",
                ast.DictComp: "a comprehension", ast.NamedExpr: "an assignment"}.get(type(node), "syntax")
        raise ExprError(f"{what} not allowed: '{_part(node, text)}'")
    # a function name used as a value (x = min) is not a call of it
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Name) and child.id in FUNCS and child.id not in names and not (
                    isinstance(node, ast.Call) and node.func is child):
                raise ExprError(f"'{child.id}' must be called: '{_part(node, text)}'")


@lru_cache(maxsize=256)
def _parse(text: str, names: frozenset) -> ast.Expression:
    if not isinstance(text, str) or not text.strip():
        raise ExprError("an expression must be non-empty text")
    if len(text) > MAX_LEN:
        raise ExprError(f"longer than {MAX_LEN} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"invalid syntax ({e.msg})") from None
    _check(tree, text.strip(), names)
    return tree


def _pow(a, b):
    if isinstance(b, (int, float)) and abs(b) > MAX_POW:
        raise ExprError(f"exponent {b} is larger than {MAX_POW}")
    return a ** b


def _eval(node: ast.AST, env: dict):
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(x, env) for x in node.elts]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, env) for v in node.values)
        return any(_eval(v, env) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return UNARY[type(node.op)](_eval(node.operand, env))
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        return _pow(a, b) if isinstance(node.op, ast.Pow) else BINOPS[type(node.op)](a, b)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, right in zip(node.ops, node.comparators):
            r = _eval(right, env)
            if not CMPS[type(op)](left, r):
                return False
            left = r
        return True
    if isinstance(node, ast.Subscript):
        v = _eval(node.value, env)
        s = node.slice
        if isinstance(s, ast.Slice):
            return v[slice(*(None if x is None else _eval(x, env) for x in (s.lower, s.upper, s.step)))]
        return v[_eval(s, env)]
    if isinstance(node, ast.Call):
        return FUNCS[node.func.id](*(_eval(a, env) for a in node.args))
    raise ExprError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check


@dataclass(frozen=True)
class Expr:
    """A checked expression over a space's parameters; call it with a mapping of parameter values (per-stage values
    as lists) to get a bool. Holds only text, so it pickles; the tree is parsed again (cached) where it runs."""

    text: str
    names: frozenset

    def __call__(self, values) -> bool:
        env = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(values).items()}
        try:
            return bool(_eval(_parse(self.text, self.names), env))
        except ExprError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, OverflowError) as e:
            raise ExprError(f"expression '{self.text}' failed on {env}: {type(e).__name__}: {e}") from None

    def __str__(self) -> str:
        return self.text


def parse(text, names, where: str = "expr") -> Expr:
    """A checked Expr over the given parameter names; DseError '<where>: <what is wrong>' otherwise."""
    names = frozenset(names)
    try:
        _parse(text, names)
    except ExprError as e:
        shown = text if isinstance(text, str) else repr(text)
        raise DseError(f"{where}: {e} in '{shown}'") from None
    return Expr(text.strip(), names)
