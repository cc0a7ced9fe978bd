"""The data sets dse knows: one entry each (its classes, channels, default flip, test split, where its files may be
and how to read them), so that adding a data set is one entry here. Readers return uint8 N×C×H×W images."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DseError
from . import cache, cifar, idx, imagefolder

ENV = "DSE_DATA"


@dataclass(frozen=True)
class DataSet:
    """One data set: what it is, where its files may be and how to read them."""

    name: str
    doc: str
    classes: int | None  # None: from the files (an image folder's class folders)
    channels: int
    flip: bool  # horizontal flips in training by default (not for digits and characters)
    test: bool  # an official test split exists (an image folder has one when it holds train/ and val/)
    read: Callable  # (folder or None, size) -> (x_train, y_train, x_test or None, y_test or None[, class names])
    has_files: Callable[[Path], bool] | None = None  # None: embedded, no files
    folders: tuple[str, ...] = ()  # system folders searched after data.path and $DSE_DATA/<name>
    get: str = ""  # how to get the files (the not-found message)
    needs_path: bool = False  # only a given path can hold it (no default location)
    mapped: bool = False  # read as memory maps: each trial opens the files itself (never shipped to a trial)

    @property
    def embedded(self) -> bool:
        return self.has_files is None


def _digits(folder, size):
    """scikit-learn's 8×8 digits (values 0..16) as uint8 grey images."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255 / 16)).astype(np.uint8)[:, None]
    return x, d.target.astype(np.int64), None, None


def _idx(name: str, get: str, folders: tuple[str, ...] = (), doc: str = "") -> DataSet:
    return DataSet(name, doc, 10, 1, name == "fashion_mnist", True, lambda f, size: idx.read(f),
                   idx.has_files, folders, get)


def _cifar(name: str) -> DataSet:
    return DataSet(name, f"{name.upper()}: 32×32 colour images, the python-pickle folder", cifar.FOLDERS[name][4], 3,
                   True, True, lambda f, size: cifar.read(f, name), lambda f: cifar.has_files(f, name),
                   get=f"download and unpack {cifar.FOLDERS[name][0]} (the python version) from "
                       "https://www.cs.toronto.edu/~kriz/cifar.html")


_IDX_FILES = ", ".join(f"{n}.gz" for pair in idx.FILES.values() for n in pair)
DATASETS: dict[str, DataSet] = {d.name: d for d in (
    DataSet("digits", "scikit-learn's 8×8 handwritten digits (embedded, 1797 images)", 10, 1, False, False, _digits),
    _idx("fashion_mnist", "`apt-get install dataset-fashion-mnist` (Debian; files in /usr/share/datasets/fashion-mnist), "
         f"or Zalando's four files ({_IDX_FILES}) from github.com/zalandoresearch/fashion-mnist",
         ("/usr/share/datasets/fashion-mnist",), "Zalando's Fashion-MNIST: 28×28 grey clothes, 60000 + 10000"),
    _idx("mnist", f"the four MNIST files ({_IDX_FILES})", (), "MNIST: 28×28 grey digits, 60000 + 10000"),
    _idx("kmnist", f"the four Kuzushiji-MNIST files ({_IDX_FILES}) from github.com/rois-codh/kmnist", (),
         "Kuzushiji-MNIST: 28×28 grey cursive Japanese characters, 60000 + 10000"),
    _cifar("cifar10"),
    _cifar("cifar100"),
    DataSet("imagefolder", "an ImageNet-style tree DIR/<class>/<image> (or DIR/train and DIR/val)", None, 3, True,
            True, lambda f, size: imagefolder.read(f, size), lambda f: f.is_dir(), needs_path=True,
            get="point data.path (--data-path) at the tree"),
    DataSet("cache", "a prepared cache (dse data prepare): uint8 images memory-mapped, read batch by batch", None,
            cache.CHANNELS, True, True, cache.read, lambda f: cache.is_cache(f) or (f / cache.STATE).is_file(),
            needs_path=True, mapped=True,
            get="dse data prepare imagefolder DIR --res 64 -o CACHE, then point data.path (--data-path) at CACHE"),
)}
NAMES = tuple(DATASETS)


def entry(name: str) -> DataSet:
    """A data set's entry; an unknown name is a one-line error listing the known ones."""
    try:
        return DATASETS[str(name).lower()]
    except KeyError:
        raise DseError(f"unknown dataset {name!r}; known: {', '.join(NAMES)}") from None


def locate(ds: DataSet, path: str | None) -> Path | None:
    """The folder that holds the data set's files: `path` when given, else $DSE_DATA/<name>, else the system
    folders; None for an embedded data set. Not found is one line naming every place looked in and how to get it."""
    if ds.embedded:
        return None
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise DseError(f"dataset {ds.name}: path {p} does not exist or is not a folder")
        if not ds.has_files(p):
            raise DseError(f"dataset {ds.name}: no {ds.name} files in {p}; get them with: {ds.get}")
        return p
    if ds.needs_path:
        raise DseError(f"data set {ds.name} needs a path: pass --data-path DIR (or data.path in the experiment file)")
    looked = []
    if os.environ.get(ENV):
        looked.append(Path(os.environ[ENV]).expanduser() / ds.name)
    looked += [Path(f) for f in ds.folders]
    for p in looked:
        if p.is_dir() and ds.has_files(p):
            return p
    places = ([] if os.environ.get(ENV) else [f"${ENV}/{ds.name} (${ENV} is not set)"]) + [str(p) for p in looked]
    raise DseError(f"data set {ds.name} not found: looked in {', '.join(places)}; get it with {ds.get}, then pass "
                   f"--data-path DIR (or data.path, or put it in ${ENV}/{ds.name})")
