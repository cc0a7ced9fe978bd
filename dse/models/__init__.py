"""Networks: the value types (config: Net, Stage, Config), the block registry (blocks: counter and module side by
side), the counting convention (cx), the layer walk (arch) that the builder and the analytic counter (complexity)
both follow, torch layers (layers), the builder (builder) and model files (export).

Layer: the lowest above dse.errors and dse.io; importing it does not import torch (build and load_model import it
on first use). The counter is dse.models.complexity.complexity (also dse.complexity)."""
from .complexity import Cx, count
from .config import Config, Net, Stage

_LAZY = {"build": "builder", "load_model": "export"}  # torch is imported on first use, not by `import dse.models`


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Config", "Cx", "Net", "Stage", "build", "count", "load_model"]
