"""The IDX format of MNIST, Fashion-MNIST and KMNIST: four files (train/t10k images and labels), gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in C order. Only unsigned bytes (type 0x08) are used by these data sets."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DseError

UBYTE = 0x08
FILES = {  # split -> (images, labels), the names the data sets' authors publish
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find(folder: Path, name: str) -> Path | None:
    """`name` or `name.gz` inside folder, whichever exists (plain first)."""
    for p in (folder / name, folder / f"{name}.gz"):
        if p.is_file():
            return p
    return None


def has_files(folder: Path) -> bool:
    """Whether folder holds all four files."""
    return all(find(folder, n) is not None for pair in FILES.values() for n in pair)


def missing(folder: Path) -> list[str]:
    return [n for pair in FILES.values() for n in pair if find(folder, n) is None]


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in .gz; a one-line error for unreadable or corrupt files."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except OSError as e:  # gzip.BadGzipFile is an OSError
        raise DseError(f"{path}: cannot read ({e.strerror or e})") from None
    except (EOFError, zlib.error) as e:
        raise DseError(f"{path}: corrupt gzip data ({e})") from None


def parse(data: bytes, ndim: int, where: str) -> np.ndarray:
    """An IDX byte string of unsigned bytes with `ndim` dimensions as a uint8 array (a read-only view)."""
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DseError(f"{where}: not an IDX file (only {len(data)} bytes)")
    magic = struct.unpack(">I", data[:4])[0]
    want = (UBYTE << 8) | ndim
    if magic != want:
        raise DseError(f"{where}: wrong magic number 0x{magic:08x} (an IDX file of unsigned bytes with {ndim} "
                       f"dimension{'s' if ndim > 1 else ''} starts with 0x{want:08x})")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    size = int(np.prod(dims, dtype=np.int64))
    body = len(data) - head
    if body != size:
        what = "truncated" if body < size else "too long"
        raise DseError(f"{where}: {what}: the header says {'x'.join(map(str, dims))} = {size} bytes, the body has "
                       f"{body}")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(dims)


def read_split(folder: Path, split: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N×1×H×W images, int64 labels) of one split, with the counts and label range checked."""
    names = FILES[split]
    paths = [find(folder, n) for n in names]
    for n, p in zip(names, paths):
        if p is None:
            raise DseError(f"{folder}: missing {n} (or {n}.gz)")
    x = parse(read_bytes(paths[0]), 3, str(paths[0]))
    y = parse(read_bytes(paths[1]), 1, str(paths[1])).astype(np.int64)
    if len(x) != len(y):
        raise DseError(f"{folder}: {paths[0].name} has {len(x)} images but {paths[1].name} has {len(y)} labels")
    if len(y) and y.max() >= classes:
        raise DseError(f"{paths[1]}: label {int(y.max())} is out of range 0..{classes - 1}")
    return x[:, None], y


def read(folder: Path, classes: int = 10):
    """(x_train, y_train, x_test, y_test) from an IDX folder."""
    return (*read_split(folder, "train", classes), *read_split(folder, "test", classes))
