"""Data: one registry entry per data set (digits, fashion_mnist, mnist, kmnist, cifar10, cifar100, imagefolder, cache),
images kept as uint8 until a batch is on its device, and the batched views (pad-crop, RandomResizedCrop, flips,
resize + centre crop for testing) as pure tensor functions."""
from . import cache
from .augment import CROPS, EVAL_CROPS, crop_resize, eval_view, normalise, pad_crop, resize, rrc_boxes, train_view
from .core import Data, generator, load_data, train_batches, val_batches
from .registry import DATASETS, ENV, NAMES, DataSet, entry, locate

__all__ = ["CROPS", "DATASETS", "cache", "Data", "DataSet", "ENV", "EVAL_CROPS", "NAMES", "crop_resize", "entry",
           "eval_view", "generator", "load_data", "locate", "normalise", "pad_crop", "resize", "rrc_boxes",
           "train_batches", "train_view", "val_batches"]
