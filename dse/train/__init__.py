"""Training one network: the recipe sections (recipe, torch-free), the loop (loop: SGD, warm-up + cosine, mixed
precision, evaluation), progressive learning (progressive) and FixRes (fixres). No Ray in here.

Layer: above dse.models, dse.space and dse.data, below dse.run. `from dse.train import train, Recipe, ...` keeps
working as when dse.train was one module: the loop's names are looked up on first use (importing torch then)."""
from .recipe import V2S, Augment, Eval, Progressive, Recipe


def __getattr__(name):  # the loop (torch) on first use: `import dse.train.recipe` stays torch-free
    if not name.startswith("__") and name not in ("loop", "recipe", "progressive", "fixres"):
        from importlib import import_module

        loop = import_module(f"{__name__}.loop")
        if hasattr(loop, name):
            return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Augment", "Eval", "Progressive", "Recipe", "V2S", "evaluate", "lr_at", "place", "steps_per_epoch", "sync",
           "train"]
