#!/usr/bin/python3
"""The controller of the PyTorch example, a platoon.Lieutenant subclass in
Python: it hands out minibatches and validations, keeps the best validation
accuracy of the center, and ends the job at a time budget, a target
accuracy, or when --patience validations bring no improvement. Its lines
are the C++ example controllers' (README, "Log lines")."""

import argparse
import time

import platoon

from common import log, run


class CnnController(platoon.Lieutenant):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.started = time.monotonic()
        self.minibatches = 0           # trained by all workers, as reported
        self.next_validation = args.valid_every
        self.validating = None         # the worker validating now
        self.validations = 0
        self.best = 0.0
        self.since_best = 0
        self.stop_reason = ""
        self.finished = set()
        self.test_assigned = False
        self.test_accuracy = None

    def elapsed(self):
        return time.monotonic() - self.started

    def stop(self, reason):
        if not self.stop_reason:
            self.stop_reason = reason
            log("controller", f"stopping: {reason}")
            self.end_job()

    def handle_control(self, req, worker, req_info):
        if req == "next":
            if isinstance(req_info, dict):
                self.minibatches += int(req_info.get("done", 0))
            if self.elapsed() >= self.args.max_time:
                self.stop(f"time budget of {self.args.max_time:g} s spent")
            if self.args.max_minibatches and self.minibatches >= self.args.max_minibatches:
                self.stop(f"minibatch budget of {self.args.max_minibatches} spent")
            if self.stop_reason:
                return {"action": "stop"}
            if self.validating is None and self.minibatches >= self.next_validation:
                self.validating = worker.id
                self.next_validation = self.minibatches + self.args.valid_every
                return {"action": "valid"}
            return {"action": "train", "minibatches": self.args.minibatches_per_request}
        if isinstance(req, dict) and "valid_error" in req:
            self.validating = None
            accuracy = 1 - float(req["valid_error"])
            self.validations += 1
            improved = accuracy > self.best
            self.best = max(self.best, accuracy)
            self.since_best = 0 if improved else self.since_best + 1
            log("controller", f"validation {self.validations}: accuracy {accuracy:.4f} (best {self.best:.4f})"
                f"{' *' if improved else '  '}  {self.elapsed():.1f} s  {self.minibatches} minibatches"
                f"  (worker {worker.id})")
            if self.args.target_accuracy and accuracy >= self.args.target_accuracy:
                self.stop(f"validation accuracy {accuracy:.4f} reached the target {self.args.target_accuracy:g}")
            elif self.since_best >= self.args.patience:
                self.stop(f"{self.args.patience} validations without improvement")
            return {"best": improved}
        if isinstance(req, dict) and "finished" in req:
            # The last worker to finish tests the center: the others have
            # made their final sync by then.
            self.finished.add(worker.id)
            test = all(w.id in self.finished for w in self.workers()) and not self.test_assigned
            self.test_assigned = self.test_assigned or test
            return {"test": test}
        if isinstance(req, dict) and "test_accuracy" in req:
            self.test_accuracy = float(req["test_accuracy"])
            log("controller", f"test accuracy {self.test_accuracy:.4f}  {self.elapsed():.1f} s")
            return "ok"
        raise ValueError(f"unknown request {req!r}")

    def on_worker_lost(self, worker, reason):
        if self.validating == worker.id:
            self.validating = None

    def on_tick(self):
        if self.elapsed() >= self.args.max_time:
            self.stop(f"time budget of {self.args.max_time:g} s spent")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=5567, help="the port to serve on (tcp://127.0.0.1:PORT)")
    p.add_argument("--max-time", type=float, default=600, help="seconds before the job ends")
    p.add_argument("--max-minibatches", type=int, default=0, help="minibatches (all workers) before the job ends "
                   "(0: no budget)")
    p.add_argument("--valid-every", type=int, default=1000, help="minibatches (all workers) between validations")
    p.add_argument("--patience", type=int, default=8, help="validations without improvement before stopping")
    p.add_argument("--target-accuracy", type=float, default=0, help="stop once validation reaches it (0: never)")
    p.add_argument("--minibatches-per-request", type=int, default=10, help="minibatches per answer to a worker")
    args = p.parse_args()
    if args.max_time <= 0 or args.max_minibatches < 0 or args.valid_every < 1 or args.patience < 1 or args.minibatches_per_request < 1:
        p.error("--max-time, --valid-every, --patience and --minibatches-per-request must be positive (--max-minibatches 0 or more)")
    if not 0 <= args.target_accuracy <= 1:
        p.error(f"--target-accuracy {args.target_accuracy} is not in [0, 1]")
    return args


def main():
    args = parse_args()
    controller = CnnController(args)
    controller.init_control(args.port)
    controller.serve()
    log("controller", f"job over ({controller.stop_reason or 'stopped'}): {controller.minibatches} minibatches in "
        f"{controller.elapsed():.1f} s, best validation accuracy {controller.best:.4f}")
    if controller.test_accuracy is not None:
        log("controller", f"final test accuracy {controller.test_accuracy:.4f}")


if __name__ == "__main__":
    run(main, "controller")
