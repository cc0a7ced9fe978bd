"""Config -> torch.nn.Module builders."""
from .build import build

__all__ = ["build"]
