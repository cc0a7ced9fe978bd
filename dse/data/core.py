"""Image classification data held as uint8 images (N×C×H×W at the data set's own resolution) plus int64 labels, the
train/val split and training subset, and the batch iterators that normalise and view each batch on its device."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..errors import DseError
from . import augment as A
from .registry import entry, locate
from .stats import stats


@dataclass(frozen=True, repr=False, eq=False)
class Data:
    """A classification data set in memory: uint8 N×C×H×W images at their stored resolution, int64 labels, the
    per-channel mean and std of the training images (in [0, 1] units, applied per batch), and `res`, the resolution
    the network sees by default; `flip` is the data set's default for training flips."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: int
    res: int
    flip: bool
    mean: torch.Tensor
    std: torch.Tensor
    val: str = "split"  # "test": the official test split is the validation set; "split": held out of training

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return len(self.y_train)

    @property
    def n_val(self) -> int:
        """Number of validation images."""
        return len(self.y_val)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def size(self) -> int:
        """The stored images' resolution (their height)."""
        return int(self.x_train.shape[-2])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.x_train, self.y_train, self.x_val, self.y_val))

    def at(self, res: int) -> "Data":
        """The same images, seen by the network at `res` (nothing is copied)."""
        return self if res == self.res else dataclasses.replace(self, res=int(res))

    def to(self, device) -> "Data":
        """The same data on `device` (images stay uint8)."""
        device = torch.device(device)
        if self.device == device:
            return self
        move = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val", "mean", "std")}
        return dataclasses.replace(self, **move)

    def info(self) -> dict:
        """What a results row records about the data."""
        return {"name": self.name, "res": self.res, "size": self.size, "channels": self.channels,
                "classes": self.classes, "n_train": self.n_train, "n_val": self.n_val, "val": self.val,
                "flip": self.flip}

    def __repr__(self) -> str:
        return (f"Data(name={self.name!r}, n_train={self.n_train}, n_val={self.n_val}, classes={self.classes}, "
                f"channels={self.channels}, size={self.size}, res={self.res}, flip={self.flip}, val={self.val!r})")


def split(y: np.ndarray, val_frac: float, seed: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices 0..N-1 into (train, val)."""
    from sklearn.model_selection import train_test_split
    try:
        return train_test_split(np.arange(len(y)), test_size=val_frac, stratify=y, random_state=seed)
    except ValueError as e:
        raise DseError(f"cannot split {where} into train/val (val_frac={val_frac}): {e}") from None


def subset(y: np.ndarray, n: int, seed: int, where: str, classes: int, key: str = "n_train",
           what: str = "training") -> np.ndarray:
    """A seeded stratified subset of n of the indices 0..N-1 (all of them, in order, when n = N)."""
    if n > len(y):
        raise DseError(f"data.{key}: {n} is larger than the {what} set of {where} ({len(y)} images)")
    if n < classes:
        raise DseError(f"data.{key}: {n} is smaller than the number of classes of {where} ({classes})")
    if n == len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split
    return np.sort(train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)[0])


def load_data(name: str = "digits", path: str | None = None, res: int = 32, seed: int = 0,
              val_frac: float = 0.2, val: str | None = None, n_train: int | None = None,
              n_val: int | None = None) -> Data:
    """A data set by name (see dse.data.NAMES) as uint8 images, at default network resolution `res`.

    `val`: "test" uses the official test split as the validation set (the default where one exists: Fashion-MNIST,
    MNIST, KMNIST, CIFAR, an image folder with train/ and val/); "split" holds out a stratified `val_frac` of the
    training set (seeded by `seed`). `n_train` and `n_val` keep stratified, seeded subsets of the training and the
    validation images. Files are
    looked for in `path`, then $DSE_DATA/<name>, then the data set's usual places (Debian's for Fashion-MNIST).
    A prepared cache (`cache`) stays memory-mapped: its tensors lie over the map and nothing is copied, unless
    val: split or n_train pick images out of it (those are copied into memory)."""
    ds = entry(name)
    if not isinstance(res, int) or isinstance(res, bool) or res < 1:
        raise DseError(f"dataset {ds.name}: res must be a positive integer, got {res!r}")
    if val not in (None, "test", "split"):
        raise DseError(f"dataset {ds.name}: val must be 'test' or 'split', got {val!r}")
    if (val or ("test" if ds.test else "split")) == "split" and not 0 < val_frac < 1:
        raise DseError(f"dataset {ds.name}: val_frac must be in (0, 1), got {val_frac!r}")
    folder = locate(ds, path)
    out = ds.read(folder, res)
    xt, yt, xv, yv = out[:4]
    classes = ds.classes or len(out[4])
    mode = val or ("test" if xv is not None else "split")
    if mode == "test" and xv is None:
        why = "has no val/ folder beside train/" if ds.name == "imagefolder" else "has no test split"
        raise DseError(f"data.val: test: {ds.name} {why}; use val: split (with val_frac)")
    if mode == "split":
        tr, va = split(yt, val_frac, seed, ds.name)
        xt, yt, xv, yv = xt[tr], yt[tr], xt[va], yt[va]
    if n_train is not None:
        keep = subset(yt, int(n_train), seed, ds.name, classes)
        xt, yt = xt[keep], yt[keep]
    if n_val is not None:
        keep = subset(yv, int(n_val), seed, ds.name, classes, "n_val", "validation")
        xv, yv = xv[keep], yv[keep]
    chosen = mode == "split" or n_train is not None  # training images picked out of the stored ones
    mean, std = out[5] if len(out) > 5 and not chosen else stats(xt)  # a cache stores its training set's

    def as_t(a, dt):
        if isinstance(a, np.memmap):  # a cache's map: a tensor over it, nothing copied (nothing writes to it)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
                return torch.from_numpy(a).to(dt)
        return torch.from_numpy(np.require(a, requirements=["C", "W"])).to(dt)

    return Data(ds.name, as_t(xt, torch.uint8), as_t(yt, torch.int64), as_t(xv, torch.uint8), as_t(yv, torch.int64),
                int(classes), int(res), ds.flip, mean, std, mode)


def generator(seed: int, device="cpu") -> torch.Generator:
    """A seeded generator on `device` (batches draw their order and augmentation from it, on the batch's device)."""
    return torch.Generator(device=device).manual_seed(seed)


def train_batches(data: Data, batch_size: int, generator: torch.Generator | None = None, *, aug=None,
                  size: int | None = None, device=None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled training batches (the last partial batch dropped unless it is the only one), each
    normalised and viewed at size×size (default data.res) by `aug` (an object with crop, pad, scale, ratio, flip;
    None: pad-crop with pad res // 8 and the data set's flip). The batches are made on `device` (default the
    data's), where `generator` must live: only the uint8 images of a batch are copied when the data is elsewhere."""
    check_batch(batch_size)
    size = size or data.res
    dev = torch.device(device) if device is not None else data.device
    crop, pad, scale, ratio, flip = ("pad", None, (0.08, 1.0), (3 / 4, 4 / 3), None) if aug is None else (
        aug.crop, aug.pad, aug.scale, aug.ratio, aug.flip)
    flip = data.flip if flip is None else flip
    mean, std = data.mean.to(dev), data.std.to(dev)
    n = data.n_train
    order = torch.randperm(n, generator=generator, device=dev).to(data.device)  # moved once per epoch, not per step
    stop = n - n % batch_size if n >= batch_size else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        x, y = (take(t, idx, dev) for t in (data.x_train, data.y_train))
        yield A.train_view(A.normalise(x, mean, std), size, crop=crop, pad=pad, scale=scale, ratio=ratio, flip=flip,
                           generator=generator), y


def val_batches(data: Data, batch_size: int = 512, *, size: int | None = None, view=None, device=None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The validation set in order, normalised and seen through the test view at size×size (default data.res):
    `view` has resize and crop (None: a plain resize); made on `device` (default the data's)."""
    check_batch(batch_size)
    size = size or data.res
    dev = torch.device(device) if device is not None else data.device
    ratio, crop = (1.0, "none") if view is None else (view.resize, view.crop)
    mean, std = data.mean.to(dev), data.std.to(dev)
    for i in range(0, data.n_val, batch_size):
        x, y = (take(t, slice(i, i + batch_size), dev) for t in (data.x_val, data.y_val))
        yield A.eval_view(A.normalise(x, mean, std), size, ratio, crop), y


def take(t: torch.Tensor, rows, device: torch.device) -> torch.Tensor:
    """Rows of t (an index tensor on t's device, or a slice) on `device`. Only those rows are read, so t may be a
    memory map; from the host to a CUDA device they go through pinned memory, asynchronously (PyTorch's pinned-memory
    cache reuses a buffer only once its copy is done)."""
    if device.type == "cuda" and t.device.type == "cpu":
        part = t[rows] if isinstance(rows, slice) else None
        buf = torch.empty((len(part) if part is not None else len(rows), *t.shape[1:]), dtype=t.dtype,
                          pin_memory=True)
        if part is not None:
            buf.copy_(part)
        else:
            torch.index_select(t, 0, rows, out=buf)
        return buf.to(device, non_blocking=True)
    return t[rows].to(device)


def check_batch(batch_size) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DseError(f"batch_size must be a positive integer, got {batch_size!r}")
