"""Debian's Fashion-MNIST (package dataset-fashion-mnist) as torch tensors,
split as the C++ examples split it: the last 5000 training images are set
aside for validation."""

from __future__ import annotations

import dataclasses
import gzip
import os

import numpy as np
import torch

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
VALIDATION_IMAGES = 5000


@dataclasses.dataclass
class Split:
    images: torch.Tensor   # (n, 1, 28, 28) float32 in [0, 1]
    labels: torch.Tensor   # (n,) int64


@dataclasses.dataclass
class FashionMnist:
    train: Split
    valid: Split
    test: Split


def _read_idx(path: str, magic: int, dims: int) -> np.ndarray:
    """One idx file (gzipped); raises ValueError naming it when its header
    or size is wrong."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (install Debian's dataset-fashion-mnist, "
                                "or pass --data with the folder of the four files)")
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # not gzip, or cut short
        raise ValueError(f"{path}: cannot be read as a gzip file ({e})") from e
    header = 4 + 4 * dims
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise ValueError(f"{path}: not an idx file of {dims} dimension(s) (magic {magic:#x} expected)")
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if len(data) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: the header says {shape}, {int(np.prod(shape))} bytes, "
                         f"but {len(data) - header} follow")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _split(folder: str, prefix: str) -> Split:
    images = _read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), 0x803, 3)
    labels = _read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, 1)
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} {prefix} images but {len(labels)} labels")
    return Split(torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1),
                 torch.from_numpy(labels.astype(np.int64)))


def load(folder: str = DEFAULT_DIR) -> FashionMnist:
    train, test = _split(folder, "train"), _split(folder, "t10k")
    n = len(train.labels) - VALIDATION_IMAGES
    return FashionMnist(Split(train.images[:n], train.labels[:n]),
                        Split(train.images[n:], train.labels[n:]), test)
