"""CIFAR-10 / CIFAR-100 from their python-pickle folders, read with an unpickler that resolves only numpy's array
globals (a CIFAR file is data; anything else in it is refused, never executed)."""
from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import DseError

FOLDERS = MappingProxyType({  # name -> (folder, train files, test file, label key, classes)
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "labels", 10),
    "cifar100": ("cifar-100-python", ("train",), "test", "fine_labels", 100),
})
# The only globals a CIFAR pickle (numpy arrays, lists, dicts) needs.
SAFE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals needed for array data; anything else is a DseError."""

    def __init__(self, f, where: str):
        super().__init__(f, encoding="bytes")
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):  # bytes written by Python 3 at protocol <= 2
            return latin1_encode
        raise DseError(f"refusing to unpickle global {module}.{name} in {self.where}")


def latin1_encode(s: str, enc: str = "latin1") -> bytes:
    """codecs.encode restricted to latin1, as used by protocol-2 pickles of bytes."""
    if enc not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {enc!r} not allowed")
    return codecs.encode(s, "latin1")


def read_pickle(path: Path):
    """Load a pickle file with the restricted unpickler; any failure is a DseError naming the file."""
    try:
        with open(path, "rb") as f:
            return SafeUnpickler(f, str(path)).load()
    except DseError:
        raise
    except OSError as e:
        raise DseError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise DseError(f"corrupt pickle {path}: {type(e).__name__}: {e}") from None


def folder(path: Path, name: str) -> Path:
    """The CIFAR batches folder: `path/<the data set's folder>` when it exists, else `path` itself."""
    sub = path / FOLDERS[name][0]
    return sub if sub.is_dir() else path


def has_files(path: Path, name: str) -> bool:
    _, train, test, _, _ = FOLDERS[name]
    root = folder(path, name)
    return all((root / f).is_file() for f in (*train, test))


def read_batch(path: Path, key: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle → (uint8 N×3×32×32 images, int64 labels), checking the layout."""
    if not path.is_file():
        raise DseError(f"missing CIFAR file {path}")
    d = read_pickle(path)
    if not isinstance(d, dict):
        raise DseError(f"wrong format in {path}: expected a dict, got {type(d).__name__}")
    d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}
    x, y = d.get("data"), d.get(key)
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != 3072 or x.dtype != np.uint8:
        raise DseError(f"wrong format in {path}: 'data' must be a uint8 N×3072 array")
    try:
        y = np.asarray(y, dtype=np.int64)
    except (TypeError, ValueError):
        raise DseError(f"wrong format in {path}: {key!r} must be a list of integers") from None
    if y.shape != (len(x),) or (len(y) and (y.min() < 0 or y.max() >= classes)):
        raise DseError(f"wrong format in {path}: {key!r} must hold {len(x)} labels in 0..{classes - 1}")
    return x.reshape(-1, 3, 32, 32), y


def read(path: Path, name: str):
    """(x_train, y_train, x_test, y_test) of CIFAR-10 or CIFAR-100; the official test batch is the test split."""
    _, train, test, key, classes = FOLDERS[name]
    root = folder(path, name)
    parts = [read_batch(root / f, key, classes) for f in train]
    xv, yv = read_batch(root / test, key, classes)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), xv, yv
