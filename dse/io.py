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
    if p.is_dir():
        raise DseError(f"{p}: is a folder, not a file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise os_error(p, e) from None
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
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise os_error(p, e) from None
        raise
    return p


class FolderLock:
    """An exclusive lock on a folder for as long as this object lives (fcntl.flock on <folder>/.lock, holding the
    owner's PID). The kernel drops it when the owner dies, so a killed driver leaves no stale lock behind."""

    NAME = ".lock"

    def __init__(self, folder: str | Path, what: str = "dse sweep"):
        import fcntl

        self.path = Path(folder) / self.NAME
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DseError(f"{folder}: cannot lock ({e.strerror})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise DseError(f"{folder}: in use by another {what} (pid {pid}); wait for it to finish, or stop it "
                           "first") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def os_error(path, e: OSError) -> DseError:
    """An OSError on output as a one-line DseError naming the path."""
    return DseError(f"{path}: cannot write ({e.strerror or type(e).__name__})")
