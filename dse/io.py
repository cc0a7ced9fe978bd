"""Safe file output: refuse to overwrite unless asked, and publish atomically (no partial files)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import DseError


def check_new(path: str | Path, force: bool = False) -> Path:
    """Fail early if the output exists (unless force) or its folder is missing."""
    p = Path(path)
    if p.exists() and not force:
        raise DseError(f"{p}: already exists (use --force to replace it)")
    if not p.parent.is_dir():
        raise DseError(f"{p}: folder {p.parent} does not exist")
    return p


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    m = os.umask(0)
    os.umask(m)
    return m


def write_atomic(path: str | Path, data: str | bytes, force: bool = False) -> Path:
    """Write to a temporary file beside the target, fsync, then rename into place (never a partial file)."""
    p = check_new(path, force)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode) as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; published files get the usual mode
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # fails if the target appeared meanwhile: never overwrite
            except FileExistsError:
                raise DseError(f"{p}: already exists (use --force to replace it)") from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
