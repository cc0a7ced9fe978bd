"""What every command group shares: the argument parser with one-line errors, argument types, `--set` pairs, the
subcommand maker, the interrupt line and the figure writer."""
from __future__ import annotations

import argparse
import sys

from ..errors import DseError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message):
        raise DseError(f"{message} (see '{self.prog} --help')")


def ranged(kind, lo, hi):
    """An argparse type: a number of `kind` in [lo, hi] (a one-line error otherwise)."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got '{text}'") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {text}")
        return v
    return parse


BANDS = ("--flops", "--params", "--acts")


def band_args(argv: list[str]) -> list[str]:
    """`--flops -400M` as `--flops=-400M`: argparse would read a value starting with '-' as an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in BANDS and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise DseError(f"--set: '{text}' is not a number") from None


def parse_sets(items) -> dict:
    """`k=v` pairs; v may be a comma list for per-stage values."""
    out = {}
    for item in items or []:
        for part in item.split():
            if "=" not in part:
                raise DseError(f"--set: expected NAME=VALUE, got '{part}'")
            k, v = part.split("=", 1)
            vals = [_number(x) for x in v.split(",") if x.strip()]
            if not vals:
                raise DseError(f"--set: no value for '{k}'")
            out[k.strip()] = vals if len(vals) > 1 else vals[0]
    return out


def command(sub, name: str, help: str, examples: str, description: str | None = None):
    """A subcommand with a description and an epilog of examples (shown by --help as written)."""
    return sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                          epilog="examples:\n" + "\n".join(f"  {x}" for x in examples.strip().splitlines()),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def ignore_signals() -> None:
    """After an interrupt, while dse exits: a second Ctrl-C (or SIGTERM) is ignored, never a traceback."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def interrupted(a, e, again: str) -> int:
    ignore_signals()
    print(f"dse: interrupted ({e.signame}): {e.done}/{e.total} done; rows are kept in {e.out}; continue with: "
          f"{again}", file=sys.stderr)
    return 143 if e.signame == "SIGTERM" else 130


def save_figure(fig, path, force) -> None:
    from ..analysis.plots import save

    save(fig, path, force=force)
    print(f"wrote {path}")
