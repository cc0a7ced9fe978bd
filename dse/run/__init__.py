"""Running experiments: experiment files as typed sections (experiment), what to train (plan), one Ray trial and its
row (trial), Ray start and addresses (cluster), the device rule and Ray's request (resources), the driver (sweep:
lock, progress, resume, interrupts), search (ASHA, TPE), status, live curves (curves), --dry-run (dryrun), the
whole protocol in one call (pipeline) and a sweep's kept weights (weights: export, fixres; it imports torch, so it is
not imported here).

Layer: the highest below the CLI; it may import every lower layer (space, models, data, train, analysis).
`dse.run(exp, out)` calls dse.run.pipeline.run: this package is callable, as dse.run was a function before it was a
package. The modules experiment, plan, search, status and sweep keep their names here (their functions of the same
name are dse.sweep, dse.plan.plan, ...)."""
import sys
import types

from . import experiment, plan, search, status, sweep
from .curves import load_curves
from .experiment import Experiment, load, parse
from .pipeline import run


class _Callable(types.ModuleType):
    def __call__(self, exp, out, **kw):
        """dse.run(exp, out, address=None, verbose=0, progress=True): dse.run.pipeline.run."""
        return run(exp, out, **kw)


sys.modules[__name__].__class__ = _Callable

__all__ = ["Experiment", "experiment", "load", "load_curves", "parse", "plan", "run", "search", "status", "sweep"]
