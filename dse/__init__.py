"""dse: design-space exploration for convolutional networks (AnyNet, RegNet, EfficientNet)."""
from .api import describe
from .complexity import Cx, complexity, count
from .config import Config, Net, Stage
from .errors import DseError
from .space import Sample, Samples, Space, load, sample
from .spec import list_spaces
from .models.zoo import list_models
from . import experiment, plan, status  # modules: dse.experiment.load, dse.plan.plan, dse.status.status
from .results import load_results
from .curves import load_curves
from .sweep import sweep
from .pipeline import run
from . import search  # the module: dse.search.search(exp, out) (imports Ray and Optuna only when called)

__version__ = "0.3.0"


def build(net, **override):
    """A torch.nn.Module for a Config, a Net or a model name such as 'regnetx_400mf' (imports torch on first use)."""
    from .models.builder import build as _build
    from .models.zoo import config

    return _build(config(net) if isinstance(net, str) else net, **override)


def create_model(name: str, num_classes: int = 1000, checkpoint=None, pretrained: bool = False, **kw):
    """A torch module for a model name (dse.list_models()) or a sweep sample 'RUN:ID', with `num_classes` outputs;
    `checkpoint` loads weights strictly (a pycls model-zoo file, a dse file or a plain state dict). dse ships no
    weights: pretrained=True is an error that says how to load a pycls checkpoint."""
    from .models.zoo import create_model as _create

    return _create(name, num_classes, checkpoint, pretrained=pretrained, **kw)


def load_model(path, **override):
    """The torch module of an exported model (`dse export`) or a sweep's weights/<id>.pt, with its weights."""
    from .models.export import load_model as _load

    return _load(path, **override)


__all__ = ["Config", "Cx", "DseError", "Net", "Sample", "Samples", "Space", "Stage", "build", "complexity",
           "count", "create_model", "describe", "list_models", "list_spaces", "load", "load_curves", "load_model",
           "load_results", "run", "sample", "sweep", "experiment", "plan", "search", "status"]
