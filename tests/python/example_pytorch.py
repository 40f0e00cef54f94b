"""The PyTorch example (examples/pytorch) as a real job: platoon-launch, a
Python controller, two PyTorch workers. A short run, so that the example
does not rot; its accuracy is measured by tools/pytorch-demo (README)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="the PyTorch example needs Debian's python3-torch")

from platoon import logs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "pytorch")


def test_two_pytorch_workers_train_one_center(tmp_path):
    launch = os.environ.get("PLATOON_LAUNCH")
    if not launch:
        pytest.skip("needs PLATOON_LAUNCH, the platoon-launch program (ctest sets it)")
    done = subprocess.run(
        [launch, "--workers", "2", "--log-dir", str(tmp_path),
         "--controller", f"/usr/bin/python3 {EXAMPLE}/cnn_controller.py --max-minibatches 400 --valid-every 100",
         "--worker", f"/usr/bin/python3 {EXAMPLE}/cnn_worker.py --progress-every 1 --validate-own"],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = logs.read_run(str(folder))
    assert run.rule == "EASGD"
    assert len(run.center_accuracy) >= 2
    assert run.center_accuracy[-1][1] > 0.6, run.center_accuracy  # it learns
    assert run.test_accuracy is not None and run.test_accuracy > 0.6
    assert sorted(run.workers) == ["worker-0", "worker-1"]
    for w in run.workers.values():
        assert w.progress and all(p.samples_per_second > 0 for p in w.progress), w.name
    assert sum(len(w.local_accuracy) for w in run.workers.values()) == len(run.center_accuracy)


def test_bad_usage_and_missing_data_are_named(tmp_path):
    worker = [sys.executable, os.path.join(EXAMPLE, "cnn_worker.py")]
    done = subprocess.run(worker + ["--alpha", "2"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--alpha 2.0 is not in (0, 1]" in done.stderr
    missing = str(tmp_path / "nowhere")
    done = subprocess.run(worker + ["--data", missing], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{missing}/train-images-idx3-ubyte.gz: no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_mangled_idx_files_are_refused_by_name(tmp_path):
    """Fuzzing, seeded: a small valid idx file cut and flipped; the reader
    returns the right shape or raises ValueError naming the file."""
    import gzip
    import random

    sys.path.insert(0, EXAMPLE)
    import fashion_mnist

    rng = random.Random(4)
    valid = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 2, 2)) + bytes(range(12))
    for case in range(300):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data = data[:rng.randrange(len(data) + 1)]
        path = tmp_path / f"case-{case}.gz"
        raw = gzip.compress(bytes(data))
        if rng.random() < 0.2:
            raw = raw[:rng.randrange(len(raw))]  # a cut gzip stream
        path.write_bytes(raw)
        try:
            images = fashion_mnist._read_idx(str(path), 0x803, 3)
        except ValueError as e:
            assert str(path) in str(e), e
            continue
        assert images.size == int.from_bytes(data[4:8], "big") * int.from_bytes(data[8:12], "big") * \
            int.from_bytes(data[12:16], "big")
