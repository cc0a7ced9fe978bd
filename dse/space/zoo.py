"""Named models, timm-style: every preset of the zoo spaces as <space>_<preset> (regnetx_400mf, efficientnet_b3,
efficientnetv2_m; pycls's RegNetX-400MF also works), and any sample of a sweep as RUN:ID (a sweep folder or
results file, a colon, a unique id prefix)."""
from __future__ import annotations

import difflib
import fnmatch
from pathlib import Path

from ..models.config import Config, check_prefix, checked_id
from ..errors import DseError

ZOO = ("regnetx", "regnety", "efficientnet", "efficientnetv2")  # the spaces whose presets are named models


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def zoo() -> dict[str, tuple[str, str]]:
    """Model name -> (space, preset), in the zoo's order."""
    from .sampler import load

    return {_key(f"{sp}_{p}"): (sp, p) for sp in ZOO for p in load(sp).presets}


def list_models(pattern: str | None = None) -> list[str]:
    """The model names, or those matching a pattern (case-insensitive): a part of the name such as 'regnety' or
    '400mf', or a shell pattern such as 'regnety_*' or '*b[0-3]'."""
    names = list(zoo())
    if not pattern:
        return names
    key = _key(pattern)
    if any(c in key for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n, key)]
    return [n for n in names if key in n]


def config(name: str) -> Config:
    """The Config of a model name or of a sweep sample RUN:ID."""
    if not isinstance(name, str):
        raise DseError(f"a model name must be a string, got {type(name).__name__}")
    if ":" in name:
        return run_config(name)
    from .sampler import load

    models = zoo()
    key = _key(name)
    if key not in models:
        close = difflib.get_close_matches(key, models, n=3, cutoff=0.6)
        raise DseError(f"unknown model {name!r}" + (f"; closest: {', '.join(close)}" if close else "")
                       + " (dse.list_models() names them; a sweep's sample is RUN:ID)")
    space, preset = models[key]
    return load(space).preset(preset)


def run_config(ref: str) -> Config:
    """The Config of sample ID in a sweep folder (its plan.jsonl holds full sample records) or results file."""
    from ..results import load_results, read_rows

    path, _, sid = ref.rpartition(":")
    p = Path(path)
    if not sid:
        raise DseError(f"{ref}: expected RUN:ID (a sweep folder or results file, a colon, a sample id)")
    check_prefix(sid, ref)
    if not p.exists():
        raise DseError(f"{p}: no such sweep folder or results file")
    if p.is_dir() and (p / "plan.jsonl").is_file():
        recs = read_rows(p / "plan.jsonl")
    else:
        df = load_results(p)
        recs = [r for r in df.to_dict("records")]
    hit = {str(r["id"]): r for r in recs if str(r["id"]).startswith(sid)}
    if len(hit) != 1:
        what = "no sample" if not hit else f"{len(hit)} samples ({', '.join(sorted(hit)[:4])})"
        raise DseError(f"{p}: {what} with id {sid!r}")
    (i, rec), = hit.items()
    checked_id(rec, p)
    try:
        cfg = Config.from_dict({"space": rec["space"], "stages": rec["stages"],
                                **{k: rec[k] for k in ("config", "net") if isinstance(rec.get(k), dict)}})
    except (KeyError, TypeError, ValueError) as e:
        raise DseError(f"{p}: the row of {i} is not a sample record ({type(e).__name__}: {e})") from None
    if cfg.id != i:  # an old results row without the `net` head fields cannot rebuild the network exactly
        raise DseError(f"{p}: the row of {i} lacks the network's head fields (net); use the sweep folder, whose "
                       "plan.jsonl has them")
    return cfg


def load_checkpoint(model, path: str | Path, what: str = "the model"):
    """Load a pycls checkpoint (its model_state), a dse model/weights file or a plain state dict, strictly."""
    import torch

    from ..models.export import load_state

    p = Path(path)
    if not p.is_file():
        raise DseError(f"{p}: no such checkpoint")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DseError(f"{p}: not a weights-only torch checkpoint ({type(e).__name__})") from None
    state = blob
    if isinstance(blob, dict) and isinstance(blob.get("model_state"), dict):  # pycls
        state = blob["model_state"]
    elif isinstance(blob, dict) and isinstance(blob.get("model"), dict):  # dse
        state = blob["model"]
    if not isinstance(state, dict):
        raise DseError(f"{p}: no state dict in this checkpoint")
    return load_state(model, state, f"{p}: the weights do not fit {what}")


def create_model(name: str, num_classes: int = 1000, checkpoint: str | Path | None = None, pretrained: bool = False,
                 **kw):
    """A torch module for a model name (dse.list_models) or a sweep sample RUN:ID, with `num_classes` outputs;
    `checkpoint` loads weights strictly (a pycls model-zoo file, a dse file or a state dict); `kw` replaces Net
    fields (res, dropout, in_ch, ...). dse ships no weights: pretrained=True is an error that says how to load a
    pycls checkpoint."""
    if pretrained:
        raise DseError(f"create_model({name!r}, pretrained=True): dse ships no pretrained weights and downloads "
                       "nothing; download a pycls model-zoo checkpoint (e.g. RegNetX-400MF_dds_8gpu.pyth) and load it "
                       f"with dse.create_model({name!r}, checkpoint='RegNetX-400MF_dds_8gpu.pyth') (num_classes=1000)")
    from ..models.builder import build

    model = build(config(name), classes=num_classes, **kw)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, name)
    return model
