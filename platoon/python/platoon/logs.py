"""Reads a platoon run's log folder: the series that platoon-plot draws.

The launcher writes one folder per run, ``logs/<experiment>/<date-time>/``,
with ``launch.log``, ``controller.log`` and ``worker-<n>.log``. Every line
starts with a UTC timestamp, so the lines of processes that started at
different times share one time axis. The lines read here have a fixed
format (README, "Log lines"); tests/plot checks that the examples' workers
write what this module parses.

    <time> [controller] validation <n>: accuracy <a> (best <b>)[ *]  <t> s  <m> minibatches  (worker <w>)
    <time> [controller] test accuracy <a>...
    <time> [worker <w>...] progress: <m> minibatches  <r> samples/s  sync <s>%
    <time> [worker <w>...] local validation: accuracy <a>
    <time> [worker <w>...] created the center <name>: ... rule <Rule>(...)

Python workers write their progress lines with progress_line() and
local_validation_line(). Only the standard library is used here, and this
file is loaded on its own by tools/plot/platoon-plot, which needs no build.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
from typing import Optional

# "2026-12-04T18:07:49.775Z [controller] message"; the tag is optional
# (a worker's own stdout gets only the timestamp).
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (?:\[([^\]]*)\] )?(.*)$")
# A decimal number as the lines print it: "0.8708", "63877", never "0.8.7".
_NUM = r"(\d+(?:\.\d+)?)"
VALIDATION = re.compile(
    rf"^validation (\d+): accuracy {_NUM} \(best {_NUM}\)( \*)?\s+{_NUM} s\s+(\d+) minibatches"
    r"(?:\s+\(worker (\d+)\))?$")
TEST = re.compile(rf"^test accuracy {_NUM}")
PROGRESS = re.compile(rf"^progress: (\d+) minibatches  {_NUM} samples/s  sync {_NUM}%$")
LOCAL_VALIDATION = re.compile(rf"^local validation: accuracy {_NUM}$")
CENTER_RULE = re.compile(r"^(?:created|attached to) the center \S+: .* rule (\w+)")
GROUP = re.compile(r"^group: ")  # a synchronous worker: "group: <backend and ranks>"


def progress_line(minibatches: int, samples_per_second: float, sync_share: float) -> str:
    """The progress line a worker writes (sync_share in [0, 1])."""
    return f"progress: {minibatches} minibatches  {samples_per_second:.0f} samples/s  sync {100 * sync_share:.2f}%"


def local_validation_line(accuracy: float) -> str:
    """The line a worker writes after validating its own model."""
    return f"local validation: accuracy {accuracy:.4f}"


def log_line(tag: str, message: str, when: Optional[_dt.datetime] = None) -> str:
    """A whole log line, timestamped as platoon's Logger does."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%S')}.{when.microsecond // 1000:03d}Z [{tag}] {message}"


def parse_time(text: str) -> _dt.datetime:
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=_dt.timezone.utc)


@dataclasses.dataclass
class Progress:
    seconds: float           # since the run started
    minibatches: int         # this worker's, so far
    samples_per_second: float
    sync_share: float        # in [0, 1]


@dataclasses.dataclass
class Worker:
    name: str                                  # worker-0, from the file name
    progress: list[Progress] = dataclasses.field(default_factory=list)
    local_accuracy: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (seconds, accuracy)


@dataclasses.dataclass
class Run:
    folder: str
    label: str                                 # "<experiment> <date-time>"
    rule: str                                  # EASGD, ASGD, ... or "sync"; "" if unknown
    center_accuracy: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (seconds, accuracy)
    workers: dict[str, Worker] = dataclasses.field(default_factory=dict)
    test_accuracy: Optional[float] = None

    def time_to(self, accuracy: float) -> Optional[float]:
        """Seconds until the center first validated at `accuracy` or more."""
        for seconds, a in self.center_accuracy:
            if a >= accuracy:
                return seconds
        return None

    def best_accuracy(self) -> float:
        return max((a for _, a in self.center_accuracy), default=0.0)


class LogError(Exception):
    """A folder that is not a run's log folder, named in the message."""


def _lines(path: str):
    with open(path, encoding="utf-8", errors="replace") as f:
        for text in f:
            m = LINE.match(text.rstrip("\n"))
            if not m:
                continue
            try:
                when = parse_time(m.group(1))
            except ValueError:  # shaped like a timestamp, but no date (month 42)
                continue
            yield when, m.group(2) or "", m.group(3)


def read_run(folder: str) -> Run:
    """Reads the run in `folder`. Raises LogError naming the folder when it
    has no controller.log."""
    controller_log = os.path.join(folder, "controller.log")
    if not os.path.isdir(folder):
        raise LogError(f"{folder}: no such folder")
    if not os.path.isfile(controller_log):
        raise LogError(f"{folder}: not a run's log folder (no controller.log; "
                       "platoon-launch writes one per run in logs/<experiment>/<date-time>/)")
    logs = sorted(n for n in os.listdir(folder) if n.endswith(".log"))
    # Time zero: the earliest line of any file (the launcher's first).
    start = None
    for name in logs:
        for when, _, _ in _lines(os.path.join(folder, name)):
            start = when if start is None or when < start else start
            break
    if start is None:
        raise LogError(f"{folder}: its log files hold no timestamped line")

    def since(when: _dt.datetime) -> float:
        return (when - start).total_seconds()

    parent, stamp = os.path.split(os.path.normpath(folder))
    run = Run(folder=folder, label=f"{os.path.basename(parent)} {stamp}", rule="")
    for when, tag, message in _lines(controller_log):
        if tag != "controller":
            continue
        m = VALIDATION.match(message)
        if m:
            run.center_accuracy.append((since(when), float(m.group(2))))
            continue
        m = TEST.match(message)
        if m:
            run.test_accuracy = float(m.group(1))
    for name in logs:
        if name in ("controller.log", "launch.log"):
            continue
        worker = Worker(name=name[:-4])
        for when, tag, message in _lines(os.path.join(folder, name)):
            m = PROGRESS.match(message)
            if m:
                worker.progress.append(Progress(since(when), int(m.group(1)), float(m.group(2)),
                                                float(m.group(3)) / 100))
                continue
            m = LOCAL_VALIDATION.match(message)
            if m:
                worker.local_accuracy.append((since(when), float(m.group(1))))
                continue
            m = CENTER_RULE.match(message)
            if m and not run.rule:
                run.rule = m.group(1)
            elif not run.rule and GROUP.search(message):
                run.rule = "sync"
        run.workers[worker.name] = worker
    return run
