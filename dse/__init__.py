"""dse: design-space exploration for convolutional networks (AnyNet, RegNet, EfficientNet)."""
from .errors import DseError
from .models.complexity import Cx, complexity, count
from .models.config import Config, Net, Stage
from .space.sampler import Sample, Samples, Space, describe, load, sample
from .space.spec import list_spaces
from .space.zoo import list_models
from .results import load_results
from .run import experiment, plan, search, status  # modules: dse.experiment.load, dse.plan.plan, dse.search.search
from .run.curves import load_curves
from .run.sweep import sweep
from . import run  # the package, callable: dse.run(exp, out) is dse.run.pipeline.run

__version__ = "0.3.0"


def build(net, **override):
    """A torch.nn.Module for a Config, a Net or a model name such as 'regnetx_400mf' (imports torch on first use)."""
    from .models.builder import build as _build
    from .space.zoo import config

    return _build(config(net) if isinstance(net, str) else net, **override)


def create_model(name: str, num_classes: int = 1000, checkpoint=None, pretrained: bool = False, **kw):
    """A torch module for a model name (dse.list_models()) or a sweep sample 'RUN:ID', with `num_classes` outputs;
    `checkpoint` loads weights strictly (a pycls model-zoo file, a dse file or a plain state dict). dse ships no
    weights: pretrained=True is an error that says how to load a pycls checkpoint."""
    from .space.zoo import create_model as _create

    return _create(name, num_classes, checkpoint, pretrained=pretrained, **kw)


def load_model(path, **override):
    """The torch module of an exported model (`dse export`) or a sweep's weights/<id>.pt, with its weights."""
    from .models.export import load_model as _load

    return _load(path, **override)


__all__ = ["Config", "Cx", "DseError", "Net", "Sample", "Samples", "Space", "Stage", "build", "complexity",
           "count", "create_model", "describe", "list_models", "list_spaces", "load", "load_curves", "load_model",
           "load_results", "run", "sample", "sweep", "experiment", "plan", "search", "status"]
