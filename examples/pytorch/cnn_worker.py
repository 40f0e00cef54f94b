#!/usr/bin/python3
"""A worker of the PyTorch example: a small CNN on Fashion-MNIST, trained
with EASGD, and the template to copy for your own PyTorch model. main()
reads top to bottom: data, model, Soldier, init, loop, sync, validate, close.

    platoon-launch --workers 2 --controller "/usr/bin/python3 examples/pytorch/cnn_controller.py" \\
                   --worker "/usr/bin/python3 examples/pytorch/cnn_worker.py"

(with PYTHONPATH=<build>/python; tools/pytorch-demo does all of it). Every
worker trains its own copy of the model with Adam and, every --sync-every
minibatches, moves it and the job's center in shared memory towards each
other. The parameters are shared zero-copy: platoon.torch.parameter_views()
gives numpy views of the tensors, which the optimizer updates in place.
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

import platoon
import platoon.torch
from platoon import logs

import fashion_mnist
from common import Minibatches, ProgressLog, accuracy, log, run, worker_tag


class Cnn(nn.Module):
    """Two 5x5 convolutions, each with batch norm and 2x2 max pooling, then
    two dense layers: Fashion-MNIST's "2 Conv + pooling"."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2, bias=False)
        self.norm1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2, bias=False)
        self.norm2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.norm1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.norm2(self.conv2(x))), 2)
        return self.fc2(self.dropout(F.relu(self.fc1(x.flatten(1)))))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=5567, help="the controller's port on loopback")
    p.add_argument("--endpoint", help="the controller's endpoint, instead of --port")
    p.add_argument("--data", default=fashion_mnist.DEFAULT_DIR, help="the folder of the four Fashion-MNIST files")
    p.add_argument("--batch", type=int, default=64, help="samples per minibatch")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--lr-decay", type=float, default=0.9, help="learning rate factor after each pass")
    p.add_argument("--sync-every", type=int, default=10, help="minibatches between syncs")
    p.add_argument("--alpha", type=float, default=0.5, help="EASGD's moving rate")
    p.add_argument("--seed", type=int, default=1, help="the model's initial values, the same on every worker")
    p.add_argument("--threads", type=int, default=1, help="PyTorch threads of this worker")
    p.add_argument("--progress-every", type=float, default=5, help="seconds between progress lines (0: none)")
    p.add_argument("--validate-own", action="store_true",
                   help="after each validation of the center, validate this worker's own model too")
    args = p.parse_args()
    if args.batch < 1 or args.sync_every < 1 or args.threads < 1:
        p.error("--batch, --sync-every and --threads must be at least 1")
    if not 0 < args.alpha <= 1:
        p.error(f"--alpha {args.alpha} is not in (0, 1]")
    return args


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)

    # Data: this worker's own copy of Fashion-MNIST.
    data = fashion_mnist.load(args.data)

    # Model and optimizer. Every worker starts from the same seed; the
    # center is made from the first worker's values.
    torch.manual_seed(args.seed)
    model = Cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, args.lr_decay)

    # Soldier: joins the job.
    soldier = platoon.Soldier(**({"endpoint": args.endpoint} if args.endpoint else {"port": args.port}))
    tag = worker_tag(soldier.worker_id)

    # Init: the first worker creates the center from its values, the others
    # start from it. named_parameters() order is the layout, and batch norm's
    # running statistics follow (buffers=True): they are synced too.
    views = platoon.torch.parameter_views(model, buffers=True)
    soldier.init_shared_params(views, platoon.EASGD(args.alpha))
    # Validation and test look at the center through a scratch model.
    center_model = Cnn()
    center_values = platoon.torch.flat_buffer(model, buffers=True)
    batches = Minibatches(data.train.images, data.train.labels, args.batch,
                          seed=args.seed * 1000 + soldier.worker_id)
    progress = ProgressLog(tag, args.progress_every)

    def center_accuracy(split):
        soldier.read_center(center_values)
        platoon.torch.load_flat(center_model, center_values, buffers=True)
        return accuracy(center_model, split.images, split.labels)

    # Loop: ask the controller what to do; report the minibatches trained
    # with the next request.
    minibatches = done = 0
    while True:
        what = soldier.send_req("next", {"done": done})
        done = 0
        if what["action"] == "stop":
            break

        if what["action"] == "valid":
            # Validate: the center; with --validate-own, this worker's own
            # model too (a line for platoon-plot).
            soldier.send_req({"valid_error": 1 - center_accuracy(data.valid)})
            if args.validate_own:
                log(tag, logs.local_validation_line(accuracy(model, data.valid.images, data.valid.labels)))
            continue

        # Train; sync with the center every --sync-every minibatches.
        for _ in range(what["minibatches"]):
            images, labels = batches.next()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            minibatches += 1
            if minibatches % args.sync_every == 0:
                progress.time_sync(soldier.sync_params)
            if batches.position == args.batch and batches.passes > 1:
                scheduler.step()  # a new pass over the data began
        progress.trained(what["minibatches"], what["minibatches"] * args.batch)
        done = what["minibatches"]

    # Close: the center gets this worker's last progress; the last worker to
    # finish tests the center.
    soldier.sync_params()
    if soldier.send_req({"finished": True}).get("test"):
        soldier.send_req({"test_accuracy": center_accuracy(data.test)})
    soldier.close()
    log(tag, f"trained {minibatches} minibatches ({batches.passes} passes over the data)")


if __name__ == "__main__":
    run(main, "worker")
