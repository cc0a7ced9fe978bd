"""Safe file input and output: refuse to overwrite unless asked, publish atomically (no partial files), append
durably, never write through a symbolic link, refuse names the file system cannot hold, and read YAML strictly."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import yaml

from .errors import DseError

NAME_MAX, PATH_MAX = 255, 4096  # bytes of one path component, of a whole path (Linux)


def _short(text: str) -> str:
    """A path short enough for a one-line message."""
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]}"


def check_path(path: str | Path) -> Path:
    """A path the file system can hold (each name at most 255 bytes, the whole under 4096), checked before anything
    is made, so an over-long name leaves nothing behind."""
    p = Path(path)
    longest = max((len(os.fsencode(part)) for part in p.parts), default=0)
    total = len(os.fsencode(os.path.abspath(p)))
    if longest > NAME_MAX:
        raise DseError(f"{_short(str(p))}: file name too long (a name of {longest} bytes; at most {NAME_MAX})")
    if total >= PATH_MAX:
        raise DseError(f"{_short(str(p))}: file name too long (a path of {total} bytes; at most {PATH_MAX - 1})")
    return p


def link_error(path) -> DseError:
    return DseError(f"{path}: is a symbolic link; dse does not write through links (remove it, or pick another "
                    "name)")


def refuse_link(path: str | Path) -> Path:
    """The path, unless it is a symbolic link (dse never writes through one)."""
    p = Path(path)
    if p.is_symlink():
        raise link_error(p)
    return p


def refuse_links(folder: str | Path, inside: tuple[str, ...] = ("weights",)) -> None:
    """Refuse a folder dse writes into (a sweep folder) if any of its entries, or of its sub-folders `inside`, is a
    symbolic link: one line naming it, before anything is written."""
    folder = Path(folder)
    for d in (folder, *(folder / s for s in inside)):
        if d != folder and not d.is_dir():
            continue
        try:
            entries = list(os.scandir(d))
        except OSError as e:
            raise DseError(f"{d}: cannot read ({e.strerror})") from None
        for e in entries:
            if e.is_symlink():
                raise DseError(f"{e.path}: is a symbolic link; a sweep folder holds none (dse never writes through "
                               "a link): remove it")


def check_new(path: str | Path, force: bool = False) -> Path:
    """Fail early if the output is a folder or a link, exists (unless force), or its folder is missing."""
    p = refuse_link(check_path(path))
    if p.is_dir():
        raise DseError(f"{p}: is a folder, not a file")
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
    """Write to a temporary file beside the target, fsync, then rename into place (never a partial file; never
    through or over a symbolic link)."""
    p = check_new(path, force)
    mode = "wb" if isinstance(data, bytes) else "w"
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
            refuse_link(p)  # a link made meanwhile: replace nothing
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


def open_nofollow(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """os.open that refuses a symbolic link as the last component (O_NOFOLLOW): one DseError naming it."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise link_error(path) from None
        raise


def append_line(path: str | Path, text: str) -> None:
    """Durably append text (one or more whole lines) to a file: O_APPEND, never through a symbolic link, flushed and
    fsynced before it returns. The writer of every JSON Lines log in a sweep folder (results, errors, curves...)."""
    data = text.encode()
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderLock:
    """An exclusive lock on a folder for as long as this object lives (fcntl.flock on <folder>/.lock, holding the
    owner's PID). The kernel drops it when the owner dies, so a killed driver leaves no stale lock behind."""

    NAME = ".lock"

    def __init__(self, folder: str | Path, what: str = "dse sweep"):
        import fcntl

        self.path = Path(folder) / self.NAME
        try:
            self.fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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


def make_folder(path: str | Path) -> Path:
    """mkdir -p that leaves nothing behind when it fails (the parents it made are removed again)."""
    p = check_path(path)
    made = []
    for d in reversed([p, *p.parents]):
        if d.is_dir():
            continue
        try:
            d.mkdir()
        except FileExistsError:
            if d.is_dir():
                continue
            err = OSError(errno.EEXIST, "exists and is not a folder")
        except OSError as e:
            err = e
        else:
            made.append(d)
            continue
        for m in reversed(made):
            try:
                m.rmdir()
            except OSError:
                pass
        raise os_error(d, err) from None
    return p


def os_error(path, e: OSError) -> DseError:
    """An OSError on output as a one-line DseError naming the path."""
    return DseError(f"{path}: cannot write ({e.strerror or type(e).__name__})")


# ---------------------------------------------------------------- YAML in

def load_yaml(path: str | Path, kind: str = "YAML file"):
    """Safe-load one YAML file (space or experiment file): a one-line DseError naming the file for a missing file, a
    folder, binary content, a syntax error, nesting too deep, or a key given twice in one mapping."""
    p = Path(path)
    a = "an" if kind[:1] in "aeiou" else "a"
    if p.is_dir():
        raise DseError(f"{p}: is a folder, not {a} {kind}")
    if not p.is_file():
        raise DseError(f"{kind} not found: {p}")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as e:
        raise DseError(f"{p}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise DseError(f"{p}: not a text file (byte {e.start} is not UTF-8); {a} {kind} is YAML text") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise DseError(f"{p}:{where} invalid YAML ({getattr(e, 'problem', None) or e})") from None
    except RecursionError:
        raise DseError(f"{p}: invalid YAML (nested too deeply to read)") from None


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader (libyaml's when installed: fast, and no recursion on deep nesting) refusing a key given twice in
    one mapping (a merge key `<<` may still be overridden)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for knode, _ in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(knode, deep=True)
                try:
                    again = key in seen
                except TypeError:
                    continue  # an unhashable key: SafeLoader refuses it itself
                if again:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}: a key may appear "
                                                            "once in a mapping", knode.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)
