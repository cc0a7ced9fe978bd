"""dse: design-space exploration for convolutional networks (AnyNet, RegNet, EfficientNet)."""
from .api import describe
from .complexity import Cx, complexity, count
from .config import Config, Net, Stage
from .errors import DseError
from .space import Sample, Samples, Space, load, sample
from .spec import list_spaces
from . import experiment, status  # noqa: E402  (modules used as dse.experiment.load, dse.status.status)
from .results import load_results
from .sweep import sweep
from .pipeline import run

__version__ = "0.1.0"


def build(net, **override):
    """A torch.nn.Module for a Config or Net (imports torch on first use)."""
    from .models import build as _build

    return _build(net, **override)


__all__ = ["Config", "Cx", "DseError", "Net", "Sample", "Samples", "Space", "Stage", "build", "complexity",
           "count", "describe", "list_spaces", "load", "load_results", "run", "sample", "sweep"]
