"""Live training curves of a sweep or search, written as the trials run and readable while they do.

The driver appends one line per trial epoch to `curves.jsonl` in the sweep folder (append-only; the trial's key,
id, repeat and space, then epoch, val_error, train_error, train_loss, lr, time, the epoch's seconds, and `t`, the
wall-clock time it arrived). When tensorboardX (or tensorboard) is installed, the same scalars also go to
TensorBoard event files under `tb/<key>` (`tensorboard --logdir RUN/tb`). `load_curves(RUN)` reads the lines as a
DataFrame for a notebook; `dse status RUN --curves` prints the latest epoch of each trial with a sparkline.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from ..errors import DseError
from ..io import append_line
from ..results import trial_key

log = logging.getLogger(__name__)
CURVES, TB = "curves.jsonl", "tb"
METRICS = ("val_error", "train_error", "train_loss", "lr", "time")
COLUMNS = ["key", "id", "repeat", "space", "epoch", *METRICS, "t"]
SPARK = "▁▂▃▄▅▆▇█"


def epoch_record(point: dict, result: dict) -> dict | None:
    """The curves line of one Ray Tune result (None when it reports no epoch: a failed trial's last word)."""
    if not isinstance(result.get("epoch"), int) or result.get("val_error") is None:
        return None
    sample, rep, arm = point["sample"], point.get("repeat", 0), point.get("arm")
    rec = {"key": trial_key(sample["id"], rep, arm), "id": sample["id"], "repeat": rep, "space": sample.get("space"),
           **({"arm": arm} if arm else {}), "epoch": result["epoch"]}
    for m in METRICS:
        v = result.get(m)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            rec[m] = float(v)
    rec["t"] = round(time.time(), 3)
    return rec


def _summary_writer():
    """TensorBoard's SummaryWriter class from tensorboardX, else torch's (needs the tensorboard package); None."""
    try:
        from tensorboardX import SummaryWriter
        return SummaryWriter
    except ImportError:
        pass
    try:
        from importlib.util import find_spec

        if find_spec("tensorboard") is None:  # torch's writer needs the tensorboard package
            return None
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter
    except ImportError:
        return None


class Live:
    """The driver's writer of curves.jsonl and of the TensorBoard event files (one writer per running trial).

    Curves are a convenience: a failure to write them (a full disk, a symlink in the way) is logged once and stops
    them; the results table stays the truth."""

    def __init__(self, out: Path, tensorboard: bool = True):
        from ..results import _heal_tail

        self.out, self.path = Path(out), Path(out) / CURVES
        if self.path.is_file() and not self.path.is_symlink():
            _heal_tail(self.path)  # a line cut by a crash: cut it, so the appends stay well-formed
        self.writer_cls = _summary_writer() if tensorboard else None
        self.writers: dict = {}
        self.ok = True

    def epoch(self, point: dict, result: dict) -> None:
        rec = epoch_record(point, result)
        if rec is None or not self.ok:
            return
        try:
            append_line(self.path, json.dumps(rec, sort_keys=True) + "\n")
            if self.writer_cls is not None:
                self._tb(rec)
        except (OSError, DseError) as e:  # a link in its place, a full disk: the curves stop, the sweep does not
            self.ok = False
            log.warning("%s: live curves stopped (%s); the results table is not affected", self.path,
                        getattr(e, "strerror", None) or e)

    def _tb(self, rec: dict) -> None:
        w = self.writers.get(rec["key"])
        if w is None:
            tb = self.out / TB
            if tb.is_symlink():
                raise OSError(40, f"{tb} is a symlink")
            w = self.writers[rec["key"]] = self.writer_cls(str(tb / rec["key"]), flush_secs=5)
        for m in METRICS:
            if m in rec:
                w.add_scalar("epoch_time" if m == "time" else m, rec[m], rec["epoch"])
        w.flush()

    def __getstate__(self) -> dict:
        """Ray Tune pickles its callbacks (and so this writer) when a sweep starts a second Tuner in the same driver
        (the noise floor's repeats): open event-file writers hold a multiprocessing queue and do not travel."""
        return {**self.__dict__, "writers": {}}

    def close(self, key: str) -> None:
        w = self.writers.pop(key, None)
        if w is not None:
            w.close()

    def close_all(self) -> None:
        for k in list(self.writers):
            self.close(k)


def load_curves(run):
    """The live curves of a sweep or search folder (or a curves.jsonl file) as a DataFrame, one row per trial
    epoch (COLUMNS), in arrival order; an epoch recorded twice (a retried trial) keeps its last line."""
    import pandas as pd

    from ..results import read_rows

    p = Path(run)
    f = p / CURVES if p.is_dir() else p
    if not f.is_file():
        raise DseError(f"{p}: no live curves ({CURVES}); a sweep or search writes them as its trials train")
    rows = read_rows(f, need="key")
    df = pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)
    df = df.drop_duplicates(["key", "epoch"], keep="last").reset_index(drop=True)
    return df.astype({"epoch": int, "repeat": int}) if len(df) else df


def spark(values, lo: float = 0.0, hi: float = 100.0) -> str:
    """A sparkline of values on the scale lo..hi (errors: 0-100%)."""
    out = []
    for v in values:
        x = 0.0 if not math.isfinite(v) else (min(max(v, lo), hi) - lo) / (hi - lo)
        out.append(SPARK[min(len(SPARK) - 1, int(x * len(SPARK)))])
    return "".join(out)


def curves_table(df):
    """Per trial (latest first): space, epochs seen, last and best val error, last train loss and lr, and a
    sparkline of the val error per epoch on a 0-100% scale."""
    import pandas as pd

    rows = []
    for key, g in df.groupby("key", sort=False):
        g = g.sort_values("epoch")
        v = pd.to_numeric(g["val_error"], errors="coerce").to_numpy(dtype=float)
        last = g.iloc[-1]
        rows.append({"key": key, "space": last["space"], "epoch": int(last["epoch"]), "val_error": v[-1],
                     "best": float(pd.Series(v).min()), "train_loss": last.get("train_loss"), "lr": last.get("lr"),
                     "curve": spark(v), "t": last["t"]})
    out = pd.DataFrame(rows, columns=["key", "space", "epoch", "val_error", "best", "train_loss", "lr", "curve", "t"])
    return out.sort_values("t", ascending=False, kind="stable").drop(columns="t").reset_index(drop=True)
