"""The results table: an append-only, fsynced JSON Lines file per sweep, finalised atomically to Parquet."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .errors import DseError
from .io import write_atomic

log = logging.getLogger(__name__)
JSONL, PARQUET = "results.jsonl", "results.parquet"


class ResultsLog:
    """Append one row per finished sample; a row for an id already present is never written again."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.ids = {r["id"] for r in read_rows(self.path)} if self.path.exists() else set()
        _heal_tail(self.path)

    def __contains__(self, sid: str) -> bool:
        return sid in self.ids

    def append(self, row: dict) -> bool:
        """Durably append a row (flush + fsync); False if the id was already recorded."""
        if row["id"] in self.ids:
            return False
        line = json.dumps(row, sort_keys=True, allow_nan=False, default=_plain) + "\n"
        with open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.ids.add(row["id"])
        return True


def _plain(x):
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _heal_tail(path: Path) -> None:
    """A crash mid-write can leave a last line without its newline: cut it so appends stay well-formed."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping an incomplete last line (%d bytes)", path, len(data) - keep)
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a JSON Lines file; an incomplete last line is ignored, any other bad line is an error."""
    path = Path(path)
    try:
        data = path.read_text()
    except OSError as e:
        raise DseError(f"{path}: cannot read ({e.strerror})") from None
    lines = data.split("\n")
    complete = data.endswith("\n") or data == ""
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1 and not complete:
                continue  # a write cut short by a crash
            raise DseError(f"{path}:{i + 1}: corrupt line (not JSON)") from None
        if not isinstance(row, dict) or "id" not in row:
            raise DseError(f"{path}:{i + 1}: corrupt line (a row needs an 'id')")
        rows.append(row)
    return rows


def finalize(out: str | Path, csv: bool = False) -> Path:
    """Write results.parquet (and results.csv) atomically from the JSON Lines log."""
    out = Path(out)
    df = rows_frame(read_rows(out / JSONL))
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_atomic(out / PARQUET, buf.getvalue(), force=True)
    if csv:
        flat = df.copy()
        for c in flat.columns:
            if flat[c].map(lambda v: isinstance(v, (list, dict))).any():
                flat[c] = flat[c].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
        write_atomic(out / "results.csv", flat.to_csv(index=False), force=True)
    return out / PARQUET


def rows_frame(rows: list[dict]):
    """A DataFrame with one row per sample, columns in a stable order."""
    import pandas as pd

    df = pd.DataFrame(rows)
    first = [c for c in ("id", "space", "status", "reason", "error", "best_error", "flops", "params", "acts")
             if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def _decode_cells(df, path: Path):
    """The list and dict cells that finalize(csv=True) wrote as JSON text, decoded (so CSV loads like JSON Lines)."""
    import pandas as pd

    for c in df.columns:
        if not (df[c].dtype == object or pd.api.types.is_string_dtype(df[c])):
            continue
        txt = df[c].map(lambda v: isinstance(v, str) and v[:1] in "[{")
        if not txt.any():
            continue
        try:
            df[c] = [json.loads(v) if t else v for v, t in zip(df[c], txt)]
        except json.JSONDecodeError:
            raise DseError(f"{path}: corrupt cell in column {c!r} (not JSON)") from None
    return df


def load_results(path: str | Path):
    """The results table of a sweep folder (or a .parquet / .jsonl / .csv file) as a pandas DataFrame."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        if (p / JSONL).exists():
            p = p / JSONL
        elif (p / PARQUET).exists():
            p = p / PARQUET
        else:
            raise DseError(f"{p}: no results table here (expected {JSONL} or {PARQUET})")
    if not p.exists():
        raise DseError(f"{p}: no such results file or sweep folder")
    try:
        if p.suffix == ".parquet":
            df = pd.read_parquet(p)
        elif p.suffix == ".csv":
            df = _decode_cells(pd.read_csv(p), p)
        else:
            df = rows_frame(read_rows(p))
    except DseError:
        raise
    except Exception as e:  # pyarrow / pandas parse errors: one line, no traceback
        raise DseError(f"{p}: corrupt results file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if len(df) == 0:
        raise DseError(f"{p}: the results table is empty")
    if "id" not in df.columns:
        raise DseError(f"{p}: not a results table (no 'id' column)")
    return df
