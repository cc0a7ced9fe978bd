"""A prepared cache of an image folder: every image decoded once (its short side resized to `res`, then the centre
res×res crop, as the `imagefolder` entry decodes) into uint8 memory-mapped arrays plus labels, so that a data set of
any size trains with bounded RAM: a batch reads only its own images from the map.

    CACHE/meta.json           written last, atomically: the format, res, channels, class names, the images per
                              split, the training images' mean and std, and each array file's sha256 (its presence
                              means the cache is complete)
    CACHE/state.json          an unfinished cache's plan: res, chunk size, the source listing's digest, counts
    CACHE/train_images.npy    uint8 N×3×res×res, NumPy's .npy format (np.load(f, mmap_mode="r") reads it too)
    CACHE/train_labels.npy    int64 N
    CACHE/train_done.npy      uint8, one flag per chunk of CHUNK images, set once the chunk is on disk (resume)
    CACHE/val_*.npy           the same for PATH/val, when PATH holds train/ and val/

The file names are fixed: nothing read from a cache names another file, so no path leaves the folder the user
named; every file is opened with O_NOFOLLOW and must be a regular file (never a symbolic link)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import time
from pathlib import Path

import numpy as np

from ..errors import DseError
from ..io import FolderLock, make_folder, open_nofollow, os_error, write_atomic
from . import imagefolder
from .stats import stats

FORMAT, VERSION = "dse-cache", 1
META, STATE = "meta.json", "state.json"
CHUNK = 256  # images per unit of work (and per resume flag)
SPLITS = ("train", "val")
CHANNELS = 3
FLUSH_EVERY = 2.0  # seconds between syncs of finished chunks to disk (what an interrupt can cost)
HASH_BLOCK = 4 << 20


class Interrupted(Exception):
    """A prepare stopped by Ctrl-C or SIGTERM; the chunks on disk stay, and --resume continues."""

    def __init__(self, out: Path, done: int, total: int):
        super().__init__(f"interrupted: {done}/{total} images")
        self.out, self.done, self.total = out, done, total


def files(split: str) -> tuple[str, str, str]:
    """The fixed file names of a split: images, labels, done flags."""
    return f"{split}_images.npy", f"{split}_labels.npy", f"{split}_done.npy"


# ---------------------------------------------------------------- .npy files opened without following links

def _open(path: Path, flags: int) -> int:
    """io.open_nofollow (a symbolic link is a one-line error) of a file that must be a regular file."""
    try:
        fd = open_nofollow(path, flags, 0o644)
    except FileExistsError:
        raise DseError(f"{path}: already exists") from None
    except OSError as e:
        raise DseError(f"{path}: cannot open ({e.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DseError(f"{path}: is not a regular file")
    return fd


def create(path: Path, dtype, shape: tuple) -> None:
    """A new .npy file of zeros (sparse) for an array of dtype and shape; never over an existing file or a link."""
    dtype = np.dtype(dtype)
    fd = _open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "w+b") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
            f.truncate(f.tell() + int(np.prod(shape)) * dtype.itemsize)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise os_error(path, e) from None


def mapped(path: Path, dtype, shape: tuple | None = None, write: bool = False) -> np.memmap:
    """A .npy file as a memory map (read-only unless `write`), opened without following links; its header must say
    `dtype`, C order and `shape` (when given), and the file must hold exactly that many bytes."""
    fd = _open(path, os.O_RDWR if write else os.O_RDONLY)
    with os.fdopen(fd, "r+b" if write else "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            have, fortran, dt = read(f)
        except (ValueError, OSError) as e:
            raise DseError(f"{path}: not a .npy array file ({e})") from None
        want = f"{np.dtype(dtype).name} {'x'.join(map(str, shape)) if shape else ''}".strip()
        if dt != np.dtype(dtype) or fortran or (shape is not None and tuple(have) != tuple(shape)):
            raise DseError(f"{path}: holds {dt.name} {'x'.join(map(str, have))}{' (Fortran order)' * fortran}, "
                           f"expected {want}")
        offset, size = f.tell(), os.fstat(f.fileno()).st_size
        need = offset + int(np.prod(have)) * dt.itemsize
        if size != need:
            raise DseError(f"{path}: {'truncated' if size < need else 'too long'}: {size} bytes, the header says "
                           f"{need}")
        if int(np.prod(have)) == 0:
            raise DseError(f"{path}: holds no images")
        return np.memmap(f, dtype=dt, mode="r+" if write else "r", offset=offset, shape=tuple(have))


def sha256(path: Path) -> str:
    """The file's sha256 (what `sha256sum` prints), read without following a link."""
    h = hashlib.sha256()
    fd = _open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path) -> dict:
    fd = _open(path, os.O_RDONLY)
    if os.fstat(fd).st_size > 1 << 26:
        os.close(fd)
        raise DseError(f"{path}: larger than 64 MB; not a cache's metadata")
    try:
        with os.fdopen(fd, "rb") as f:
            d = json.loads(f.read().decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise DseError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise DseError(f"{path}: expected a JSON object")
    return d


# ---------------------------------------------------------------- the source listing

def listing(src: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """(class names, per split the (file, label) pairs in order): the `imagefolder` entry's order, sorted class
    folders then sorted files; PATH/train and PATH/val when both exist, else PATH as the training split."""
    if not src.is_dir():
        raise DseError(f"{src}: not a folder (an image folder is DIR/<class>/<image>, or DIR/train and DIR/val)")
    tv = imagefolder.split_dirs(src)
    roots = {"train": tv[0], "val": tv[1]} if tv else {"train": src}
    classes = [d.name for d in imagefolder.class_dirs(roots["train"])]
    if not classes:
        raise DseError(f"no class folders in {roots['train']}")
    out = {}
    for split, root in roots.items():
        items = []
        for d in imagefolder.class_dirs(root):
            if d.name not in classes:
                raise DseError(f"class folder {d} is not among the training classes")
            items += [(f, classes.index(d.name)) for f in imagefolder.image_files(d)]
        if not items:
            raise DseError(f"no images ({'/'.join(imagefolder.IMAGE_EXTS)}) in class folders under {root}")
        out[split] = items
    return classes, out


def digest(src: Path, items: dict) -> str:
    """A fingerprint of the listing (split, label and relative path of every image, in order)."""
    h = hashlib.sha256()
    for split, pairs in items.items():
        for f, y in pairs:
            h.update(f"{split}\t{y}\t{f.relative_to(src)}\n".encode())
    return h.hexdigest()


def _decode(paths: list[str], res: int) -> np.ndarray:
    """One chunk of images, decoded as the `imagefolder` entry decodes them (a worker process's job)."""
    return np.stack([imagefolder.read_image(Path(p), res) for p in paths])


def _quiet_worker() -> None:
    """Workers leave Ctrl-C and SIGTERM to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# ---------------------------------------------------------------- prepare

def _check_out(out: Path, resume: bool) -> None:
    if out.is_symlink():
        raise DseError(f"{out}: is a symbolic link; give the cache a real folder (dse does not follow links)")
    if out.exists() and not out.is_dir():
        raise DseError(f"{out}: exists and is not a folder; pick a new -o")
    if not resume and out.exists() and any(out.iterdir()):
        hint = "continue it with --resume" if (out / STATE).exists() and not (out / META).exists() else \
            "pick a new -o"
        raise DseError(f"{out}: already exists and is not empty; {hint}")
    if resume and not (out / STATE).is_file() and not (out / META).is_file():
        raise DseError(f"{out}: nothing to resume (no {STATE}); start it without --resume")


def prepare(src: str | Path, out: str | Path, res: int, *, workers: int | None = None, resume: bool = False,
            progress: bool = True, _stop_after: int | None = None) -> dict:
    """Decode the image folder `src` once into the cache folder `out` at `res` (short side, centre crop); returns
    the cache's meta (see the module doc) plus `decoded`, the images decoded by this call.

    `workers` processes decode chunks of CHUNK images in parallel (default: the CPUs, at most 16); a progress bar
    shows the images done. Ctrl-C (or SIGTERM) raises Interrupted once the finished chunks are on disk, and
    `resume=True` continues an unfinished cache (the same folder listing and res), decoding only the rest.
    `_stop_after` is a test hook: stop as Ctrl-C would once that many images are done."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not isinstance(res, int) or isinstance(res, bool) or not 1 <= res <= 4096:
        raise DseError(f"--res must be an integer in 1..4096, got {res!r}")
    workers = max(1, min(16, os.cpu_count() or 1) if workers is None else int(workers))
    _check_out(out, resume)
    classes, items = listing(src)
    fp = digest(src, items)
    counts = {s: len(v) for s, v in items.items()}
    plan = {"format": FORMAT + "-unfinished", "version": VERSION, "source": str(src.resolve()), "res": res,
            "chunk": CHUNK, "listing": fp, "counts": counts, "classes": classes}
    if resume:
        done_meta = out / META
        state = _read_json(out / STATE) if (out / STATE).is_file() else None
        old = state or _read_json(done_meta)
        for k, what in (("res", "res"), ("listing", "list of images")):
            if old.get(k) != plan[k]:
                raise DseError(f"{out}: was started with a different {what} ({k} {old.get(k)!r}); resume it with "
                               f"the same folder and --res, or pick a new -o")
        if state is None:  # finished already
            return {**read_meta(out), "decoded": 0}
    else:
        make_folder(out)
    lock = FolderLock(out, "dse data prepare")
    try:
        if not resume:
            if any(p.name != FolderLock.NAME for p in out.iterdir()):
                raise DseError(f"{out}: another prepare started here meanwhile; pick a new -o")
            for split, n in counts.items():
                im, lab, done = files(split)
                create(out / im, np.uint8, (n, CHANNELS, res, res))
                create(out / lab, np.int64, (n,))
                create(out / done, np.uint8, (-(-n // CHUNK),))
            write_atomic(out / STATE, json.dumps(plan, indent=1))
        decoded = _fill(out, items, res, workers, progress, _stop_after)
        return {**_finish(out, plan), "decoded": decoded}
    finally:
        lock.release()


def _fill(out: Path, items: dict, res: int, workers: int, progress: bool, stop_after: int | None) -> int:
    """Decode every chunk not yet flagged done, in `workers` processes; returns the images decoded."""
    from ..progress import Progress

    maps, todo = {}, []
    for split, pairs in items.items():
        im, lab, done = files(split)
        n = len(pairs)
        maps[split] = (mapped(out / im, np.uint8, (n, CHANNELS, res, res), write=True),
                       mapped(out / lab, np.int64, (n,), write=True),
                       mapped(out / done, np.uint8, (-(-n // CHUNK),), write=True))
        todo += [(split, c) for c in range(len(maps[split][2])) if not maps[split][2][c]]
    total = sum(len(p) for p in items.values())
    left = sum(min(CHUNK, len(items[s]) - c * CHUNK) for s, c in todo)
    bar = Progress(total, f"prepare {out.name}", every=10.0, enabled=progress, initial=total - left, delay=0.5)
    state = {"done": total - left, "decoded": 0, "pending": [], "synced": time.monotonic()}

    def sync() -> None:  # images and labels on disk first, then their chunks' flags
        for split in maps:
            maps[split][0].flush()
            maps[split][1].flush()
        for split, c in state["pending"]:
            maps[split][2][c] = 1
        for split in maps:
            maps[split][2].flush()
        state["pending"], state["synced"] = [], time.monotonic()

    def store(split: str, c: int, x: np.ndarray) -> None:
        lo = c * CHUNK
        imgs, labs, _ = maps[split]
        imgs[lo:lo + len(x)] = x
        labs[lo:lo + len(x)] = [y for _, y in items[split][lo:lo + len(x)]]
        state["pending"].append((split, c))
        state["done"] += len(x)
        state["decoded"] += len(x)
        bar.update(state["done"])
        if time.monotonic() - state["synced"] >= FLUSH_EVERY:
            sync()
        if stop_after is not None and state["decoded"] >= stop_after:
            raise KeyboardInterrupt

    def paths(split: str, c: int) -> list[str]:
        return [str(f) for f, _ in items[split][c * CHUNK:(c + 1) * CHUNK]]

    previous = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    pool = None
    try:
        if workers == 1 or len(todo) <= 1:
            for split, c in todo:
                store(split, c, _decode(paths(split, c), res))
        else:
            import multiprocessing
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_quiet_worker)
            queue, running = list(todo), {}
            while queue or running:
                while queue and len(running) < 2 * workers:  # a bounded window: memory stays flat
                    split, c = queue.pop(0)
                    running[pool.submit(_decode, paths(split, c), res)] = (split, c)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: running[f]):
                    split, c = running.pop(fut)
                    store(split, c, fut.result())
    except KeyboardInterrupt:
        sync()
        bar.close()
        raise Interrupted(out, state["done"], total) from None
    except BaseException:
        sync()  # the chunks finished before a bad image stay done
        bar.close()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sync()
    bar.close()
    return state["decoded"]


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _finish(out: Path, plan: dict) -> dict:
    """Every chunk is done: the training images' mean and std, each file's sha256, meta.json (atomically), then the
    resume files go."""
    res, counts = plan["res"], plan["counts"]
    x = mapped(out / files("train")[0], np.uint8, (counts["train"], CHANNELS, res, res))
    mean, std = stats(x)  # a part at a time (dse.data.stats)
    meta = {"format": FORMAT, "version": VERSION, "source": plan["source"], "res": res, "channels": CHANNELS,
            "classes": plan["classes"], "counts": counts, "mean": [float(v) for v in mean],
            "std": [float(v) for v in std], "listing": plan["listing"],
            "sha256": {f: sha256(out / f) for s in counts for f in files(s)[:2]}}
    write_atomic(out / META, json.dumps(meta, indent=1))
    for s in counts:
        (out / files(s)[2]).unlink(missing_ok=True)
    (out / STATE).unlink(missing_ok=True)
    return meta


# ---------------------------------------------------------------- read

def is_cache(path: Path) -> bool:
    """Whether path is a finished cache (has meta.json)."""
    return (Path(path) / META).is_file()


def read_meta(path: str | Path) -> dict:
    """A finished cache's meta.json, checked: its format, res, channels, classes, counts, mean and std."""
    path = Path(path)
    if path.is_symlink():
        raise DseError(f"{path}: is a symbolic link; point data.path at the cache folder itself")
    if not (path / META).is_file() and (path / STATE).is_file():
        raise DseError(f"{path}: an unfinished cache; finish it with dse data prepare ... -o {path} --resume")
    m = _read_json(path / META)
    where = path / META
    def nums(v) -> bool:
        return isinstance(v, list) and len(v) == CHANNELS and all(isinstance(x, (int, float)) for x in v)

    counts = m.get("counts")
    ok = (m.get("format") == FORMAT and m.get("version") == VERSION and isinstance(m.get("res"), int)
          and m["res"] >= 1 and m.get("channels") == CHANNELS and isinstance(m.get("classes"), list)
          and all(isinstance(c, str) for c in m["classes"]) and len(m["classes"]) >= 1
          and isinstance(counts, dict) and set(counts) <= set(SPLITS) and "train" in counts
          and all(isinstance(v, int) and v >= 1 for v in counts.values()) and nums(m.get("mean"))
          and nums(m.get("std")))
    if not ok:
        raise DseError(f"{where}: not a dse cache of format {FORMAT} version {VERSION} (prepare it again with dse "
                       "data prepare)")
    return m


def read(path: Path, size: int | None = None):
    """(x_train, y_train, x_val or None, y_val or None, class names, (mean, std)) of a finished cache, the arrays as
    read-only memory maps (`size` is ignored: the images are stored at the cache's res)."""
    import torch

    m = read_meta(path)
    res, classes, counts = m["res"], len(m["classes"]), m["counts"]
    out = []
    for split in SPLITS:
        if split not in counts:
            out += [None, None]
            continue
        im, lab, _ = files(split)
        x = mapped(path / im, np.uint8, (counts[split], CHANNELS, res, res))
        y = mapped(path / lab, np.int64, (counts[split],))
        if y.min() < 0 or y.max() >= classes:
            raise DseError(f"{path / lab}: labels must be in 0..{classes - 1}")
        out += [x, y]
    mean_std = (torch.tensor(m["mean"], dtype=torch.float32), torch.tensor(m["std"], dtype=torch.float32))
    return (*out, list(m["classes"]), mean_std)


def verify(path: str | Path) -> list[str]:
    """The cache's array files whose sha256 differs from the one meta.json recorded (empty: all match)."""
    path = Path(path)
    m = read_meta(path)
    return sorted(f for f, h in (m.get("sha256") or {}).items()
                  if f in {n for s in m["counts"] for n in files(s)[:2]} and sha256(path / f) != h)
