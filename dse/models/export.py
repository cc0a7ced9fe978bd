"""Model files: the weights a sweep keeps (weights/<id>.pt) and exported models (weights, config record, recipe,
data, result), read back as a torch module with no other argument. All are weights-only torch files."""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from .config import Config
from ..errors import DseError
from ..io import refuse_link, write_atomic

FORMAT = "dse-model/1"


def _save(path, blob: dict, force: bool) -> Path:
    buf = io.BytesIO()
    torch.save(blob, buf)
    return write_atomic(path, buf.getvalue(), force=force)


def weights_name(sid: str, arm: str | None = None) -> str:
    """The kept-weights file of a model (of an arm): <id>.pt, <id>@<arm>.pt."""
    return f"{sid}@{arm}.pt" if arm else f"{sid}.pt"


def save_weights(path: str | Path, rec: dict, state: dict, net: dict | None = None) -> Path:
    """A trial's final weights with the sample record that built them (replacing any earlier file); `net` holds the
    build overrides it was trained with (res, classes, dropout), so the file loads with no other argument."""
    blob = {"record": json.dumps(rec, sort_keys=True), "model": state}
    if net:
        blob["net"] = dict(net)
    refuse_link(Path(path).parent)  # the sweep's weights/ folder: never written through a link
    return _save(path, blob, force=True)


def read(path: str | Path) -> dict:
    """A weights or model file as {config, model (state dict), net (build overrides), recipe, data, result}."""
    p = Path(path)
    if not p.is_file():
        raise DseError(f"{p}: no such checkpoint")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
        cfg = Config.from_dict(json.loads(blob["record"]))
        out = {"config": cfg, "model": blob["model"], "net": dict(blob.get("net") or {})}
        for k in ("recipe", "data", "result"):
            out[k] = json.loads(blob[k]) if k in blob else None
    except DseError:
        raise
    except Exception as e:
        raise DseError(f"{p}: not a dse checkpoint (a model or weights file; {type(e).__name__})") from None
    if "classes" not in out["net"]:  # a sweep's weights file from before `net` was stored: the FC tells
        fc = out["model"].get("head.fc.weight")
        if fc is not None:
            out["net"]["classes"] = int(fc.shape[0])
    return out


def load_state(model: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    """Load a state dict strictly; a mismatch is a one-line error: `what` and torch's first reason."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        why = lines[1] if len(lines) > 1 else lines[0] if lines else "shape mismatch"
        raise DseError(f"{what} ({why[:200]})") from None
    return model


def load_model(path: str | Path, **override) -> torch.nn.Module:
    """The module of an exported model (dse export) or of a sweep's weights/<id>.pt, weights loaded strictly, in eval
    mode; `override` replaces Net fields (e.g. dropout). Its Config is `model.config`, the file's extras `model.meta`."""
    from .builder import build

    m = read(path)
    model = build(m["config"], **{**m["net"], **override})
    load_state(model, m["model"], f"{path}: checkpoint does not match its config {m['config'].id}")
    model.config = m["config"]
    model.meta = {k: m[k] for k in ("net", "recipe", "data", "result")}
    return model.eval()


def save_model(path: str | Path, weights: dict, net: dict, recipe: dict | None, data: dict | None, result: dict,
               force: bool = False) -> Path:
    """An exported model file: a kept-weights file's config and weights (`weights`, as read() gives them), the build
    overrides (`net`), the recipe and data it was trained with, and its result; loads back with load_model(path)."""
    result = {k: _plain(v) for k, v in result.items()}
    blob = {"format": FORMAT, "record": json.dumps(weights["config"].to_dict(), sort_keys=True),
            "model": weights["model"], "net": net, "recipe": json.dumps(recipe, default=_plain),
            "data": json.dumps(data, default=_plain), "result": json.dumps(result, default=_plain)}
    return _save(path, blob, force)


def _plain(x):
    """numpy scalars and NaN (pandas' missing) as plain JSON values."""
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and x != x:
        return None
    return x
