"""Config -> torch.nn.Module: the block registry (torch-free), the builder, named models, export."""


def __getattr__(name):  # torch is imported on first use of the builder, not by `import dse.models.blocks`
    if name == "build":
        from .builder import build

        return build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build"]
