"""What the PyTorch example's worker and controller share: log lines in
platoon's format (README, "Log lines"), so that tools/plot/platoon-plot
draws this example's runs as it draws the C++ examples'."""

from __future__ import annotations

import os
import sys
import time

import torch

import platoon
from platoon import logs


def log(tag: str, message: str) -> None:
    """One timestamped line on stderr, which platoon-launch puts in the log."""
    print(logs.log_line(tag, message), file=sys.stderr, flush=True)


def run(main, tag: str) -> None:
    """Runs main(); an error it raises (platoon's, a missing or bad data
    file) becomes one line naming it and exit code 1, not a traceback."""
    try:
        main()
    except (platoon.Error, OSError, ValueError) as e:
        log(tag, f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def worker_tag(worker_id: int) -> str:
    """"worker 3 (worker-1)", as the C++ Soldier names itself."""
    name = os.environ.get("PLATOON_WORKER_NAME")
    return f"worker {worker_id} ({name})" if name else f"worker {worker_id}"


class ProgressLog:
    """Counts minibatches, samples and sync time; writes a progress line
    every `every` seconds of wall time."""

    def __init__(self, tag: str, every: float):
        self.tag, self.every = tag, every
        self.start = time.monotonic()
        self.minibatches = self.samples = 0
        self.sync_seconds = 0.0

    def time_sync(self, sync) -> None:
        t0 = time.monotonic()
        sync()
        self.sync_seconds += time.monotonic() - t0

    def trained(self, minibatches: int, samples: int) -> None:
        self.minibatches += minibatches
        self.samples += samples
        now = time.monotonic()
        seconds = now - self.start
        if self.every <= 0 or seconds < self.every:
            return
        log(self.tag, logs.progress_line(self.minibatches, self.samples / seconds, self.sync_seconds / seconds))
        self.start, self.samples, self.sync_seconds = now, 0, 0.0


class Minibatches:
    """Minibatches of a split in an order reshuffled every pass, its own per
    worker."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch: int, seed: int):
        self.images, self.labels, self.batch = images, labels, batch
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.int64)
        self.position = 0
        self.passes = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + self.batch > len(self.order):
            self.order = torch.randperm(len(self.labels), generator=self.generator)
            self.position = 0
            self.passes += 1
        idx = self.order[self.position:self.position + self.batch]
        self.position += self.batch
        return self.images[idx], self.labels[idx]


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, chunk: int = 500) -> float:
    """The share of `images` that `model` classifies right."""
    was_training = model.training
    model.eval()
    right = 0
    for i in range(0, len(labels), chunk):
        right += (model(images[i:i + chunk]).argmax(1) == labels[i:i + chunk]).sum().item()
    model.train(was_training)
    return right / len(labels)
