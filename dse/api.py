"""Small API helpers that the CLI and notebooks share."""
from __future__ import annotations

from .complexity import complexity
from .space import Sample, load


def describe(space: str, preset: str | None = None, at_res: int | None = None, **params) -> Sample:
    """One configuration of a space from given parameters (or a preset), with its complexity (at `at_res` if given)."""
    sp = load(space)
    cfg = sp.preset(preset, **params) if preset else sp.make(params)
    if at_res:
        from .config import Config

        cfg = Config(space=cfg.space, params=cfg.params, net=cfg.net.replace(res=at_res))
    return Sample(cfg, complexity(cfg.net))
