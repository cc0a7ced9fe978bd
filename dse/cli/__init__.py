"""The `dse` command: a thin layer that parses arguments, calls the Python API and formats the output. One module
per command group: space (spaces, show, describe, sample, models, scale apply), run (sweep, run, search, scale grid,
status, export, fixres), data (data prepare), analysis (plot, fit, refine, compare, noise, analyze, report); parser
holds every command's arguments, common what they share."""
from __future__ import annotations

import logging
import os
import sys

from ..errors import DseError
from .common import band_args, ignore_signals
from .parser import build_parser


class StdoutError(Exception):
    """Standard output could not be written (a full disk, /dev/full); not a closed pipe."""


class _Stdout:
    """sys.stdout whose write errors say so (StdoutError), so main can tell them from any other OSError."""

    def __init__(self, f):
        self._f = f

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutError(e.strerror or type(e).__name__) from None

    def write(self, text):
        return self._guard(self._f.write, text)

    def flush(self):
        return self._guard(self._f.flush)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _drop_stdout() -> None:
    """After stdout failed: point its descriptor at /dev/null, so the flush at exit cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass  # not a real descriptor (a test's capture): nothing is flushed at exit


def main(argv=None) -> int:
    if sys.stdout is None:  # `dse ... >&-`
        print("dse: error: standard output is closed; redirect it to a file or to /dev/null", file=sys.stderr)
        return 1
    out = sys.stdout
    sys.stdout = _Stdout(out)
    try:
        a = build_parser().parse_args(band_args(sys.argv[1:] if argv is None else [str(x) for x in argv]))
        logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(a.verbose, 2)],
                            format="%(levelname)s %(name)s: %(message)s")
        code = a.fn(a)
        sys.stdout.flush()  # a full device fails here, as one line, rather than at exit
        return code
    except DseError as e:
        print(f"dse: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        ignore_signals()
        print("dse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except StdoutError as e:
        _drop_stdout()
        print(f"dse: error: cannot write to standard output ({e})", file=sys.stderr)
        return 1
    finally:
        sys.stdout = out


__all__ = ["build_parser", "main"]
