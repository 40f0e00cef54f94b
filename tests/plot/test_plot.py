"""platoon-plot and the log lines it reads (README, "Log lines").

The recorded folders under recorded/ are two real runs of the MLP example
(1 and 2 workers, 25 s each): the series extracted from them are checked
value by value. The live tests run real jobs through platoon-launch and
fail if the workers' or the controller's lines drift from the parser.
"""
import importlib.util
import os
import shutil
import struct
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PLOT = os.path.join(ROOT, "tools", "plot", "platoon-plot")
TWO = os.path.join(HERE, "recorded", "mlp-2w", "2026-12-04_20-53-12")
ONE = os.path.join(HERE, "recorded", "mlp-1w", "2026-12-04_20-54-36")


def load_logs():
    spec = importlib.util.spec_from_file_location(
        "platoon_logs", os.path.join(ROOT, "platoon", "python", "platoon", "logs.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["platoon_logs"] = module
    spec.loader.exec_module(module)
    return module


logs = load_logs()


def test_recorded_two_worker_run_gives_its_series():
    run = logs.read_run(TWO)
    assert run.label == "mlp-2w 2026-12-04_20-53-12"
    assert run.rule == "EASGD"
    assert run.test_accuracy == 0.8958
    # Time zero is the launcher's first line, 20:53:12.771.
    assert len(run.center_accuracy) == 22
    assert run.center_accuracy[0] == pytest.approx((2.259, 0.8708))
    assert run.center_accuracy[1] == pytest.approx((3.304, 0.8794))
    assert run.center_accuracy[-1] == pytest.approx((24.274, 0.8934))
    assert sorted(run.workers) == ["worker-0", "worker-1"]
    w0, w1 = run.workers["worker-0"], run.workers["worker-1"]
    assert len(w0.progress) == 4 and len(w1.progress) == 4
    first = w1.progress[0]
    assert (first.seconds, first.minibatches, first.samples_per_second) == pytest.approx((6.294, 4650, 59253))
    assert first.sync_share == pytest.approx(0.007)
    assert [p.minibatches for p in w0.progress] == sorted(p.minibatches for p in w0.progress)
    # Each worker logs its own model's accuracy after the validations it ran.
    assert len(w0.local_accuracy) == 8 and len(w1.local_accuracy) == 14
    assert w1.local_accuracy[0] == pytest.approx((2.294, 0.8708))
    assert run.best_accuracy() == 0.896
    assert run.time_to(0.893) == pytest.approx(8.609)
    assert run.time_to(0.95) is None


def test_recorded_one_worker_run_is_slower_to_the_same_accuracy():
    one, two = logs.read_run(ONE), logs.read_run(TWO)
    assert list(one.workers) == ["worker-0"]
    assert len(one.center_accuracy) == 12
    assert one.test_accuracy == 0.8933
    assert one.time_to(0.893) == pytest.approx(14.667)
    assert two.time_to(0.893) < one.time_to(0.893)


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def plot(*args):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def runs(tmp_path):
    """Copies of the recorded runs (platoon-plot writes into a run's folder)."""
    pytest.importorskip("matplotlib", reason="platoon-plot needs python3-matplotlib")
    one = tmp_path / "mlp-1w" / "2026-12-04_20-54-36"
    two = tmp_path / "mlp-2w" / "2026-12-04_20-53-12"
    shutil.copytree(ONE, one)
    shutil.copytree(TWO, two)
    return str(one), str(two), str(tmp_path / "out")


def test_plot_writes_every_chart_and_prints_its_path(runs):
    one, two, out = runs
    done = plot(one, two, "--out", out, "--label", "1 worker", "--label", "2 workers")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split()
    expected = [os.path.join(one, "curves.png"), os.path.join(two, "curves.png"),
                os.path.join(out, "compare.png"), os.path.join(out, "speedup.png")]
    assert printed == expected
    assert png_size(expected[0]) == (1000, 1100)
    assert png_size(expected[2]) == (1000, 600)
    assert png_size(expected[3]) == (1000, 500)
    for path in expected:
        assert os.path.getsize(path) > 20_000, f"{path} is nearly empty"


def test_plot_errors_name_the_folder(runs, tmp_path):
    one, _, _ = runs
    missing = str(tmp_path / "nowhere")
    done = plot(missing)
    assert done.returncode == 2 and missing in done.stderr and "no such folder" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = plot(str(empty))
    assert done.returncode == 2 and str(empty) in done.stderr and "no controller.log" in done.stderr
    done = plot(one, "--label", "a", "--label", "b")
    assert done.returncode == 2 and "one per run" in done.stderr
    done = plot(one, "--target", "2")
    assert done.returncode == 2 and "--target" in done.stderr


def test_python_formatters_write_what_the_parser_reads():
    m = logs.PROGRESS.match(logs.progress_line(1234, 56789.4, 0.0312))
    assert m and m.groups() == ("1234", "56789", "3.12")
    # A small model's share of 0.03 % is written as such, not rounded to 0.
    m = logs.PROGRESS.match(logs.progress_line(10, 5.0, 0.0003))
    assert m and m.group(3) == "0.03"
    m = logs.LOCAL_VALIDATION.match(logs.local_validation_line(0.91234))
    assert m and m.group(1) == "0.9123"
    m = logs.LINE.match(logs.log_line("worker 3", "hello"))
    assert m and m.group(2) == "worker 3" and m.group(3) == "hello"


def programs():
    names = ("PLATOON_LAUNCH", "MLP_CONTROLLER", "MLP_WORKER")
    if not all(os.environ.get(n) for n in names):
        pytest.skip("the live jobs need " + ", ".join(names) + " (ctest sets them)")
    return [os.environ[n] for n in names]


@pytest.mark.parametrize("mode", ["easgd", "sync"])
def test_a_live_job_writes_the_lines_the_parser_reads(tmp_path, mode):
    launch, controller, worker = programs()
    controller_cmd = f"{controller} --max-time 4 --valid-every 400 --patience 1000"
    worker_cmd = f"{worker} --progress-every 0.5 --train-limit 20000"
    if mode == "sync":
        controller_cmd += " --group-size 2"
        worker_cmd += " --mode sync"
    done = subprocess.run([launch, "--workers", "2", "--log-dir", str(tmp_path), "--controller", controller_cmd,
                           "--worker", worker_cmd], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = logs.read_run(str(folder))
    assert run.rule == ("EASGD" if mode == "easgd" else "sync")
    assert len(run.center_accuracy) >= 2, "no center validation line parsed"
    assert all(0.1 < a <= 1 for _, a in run.center_accuracy)
    assert run.test_accuracy is not None and 0.1 < run.test_accuracy <= 1
    assert sorted(run.workers) == ["worker-0", "worker-1"]
    for w in run.workers.values():
        assert len(w.progress) >= 2, f"{w.name}: no progress line parsed"
        assert all(p.samples_per_second > 0 and 0 <= p.sync_share < 1 for p in w.progress)
        assert [p.minibatches for p in w.progress] == sorted(p.minibatches for p in w.progress)
        if mode == "sync":
            assert w.local_accuracy == []  # the replicas are the center
    if mode == "easgd":
        assert sum(len(w.local_accuracy) for w in run.workers.values()) == len(run.center_accuracy)


def test_mangled_log_lines_never_break_the_parser(tmp_path):
    """Fuzzing, seeded: lines of the recorded run cut, spliced and flipped
    byte by byte. read_run either reads what parses or raises LogError."""
    import random

    rng = random.Random(20261204)
    lines = []
    for name in sorted(os.listdir(TWO)):
        with open(os.path.join(TWO, name), encoding="utf-8") as f:
            lines += f.read().splitlines()
    for case in range(200):
        folder = tmp_path / f"case-{case}"
        folder.mkdir()
        for name in ("controller.log", "launch.log", "worker-0.log"):
            mangled = []
            for _ in range(rng.randint(0, 30)):
                line = bytearray(rng.choice(lines).encode())
                for _ in range(rng.randint(0, 4)):
                    kind = rng.randrange(3)
                    if kind == 0 and line:
                        line[rng.randrange(len(line))] = rng.randrange(256)
                    elif kind == 1:
                        line = line[:rng.randrange(len(line) + 1)]
                    else:
                        line += rng.choice(lines).encode()[rng.randrange(20):]
                mangled.append(bytes(line))
            (folder / name).write_bytes(b"\n".join(mangled))
        try:
            run = logs.read_run(str(folder))
        except logs.LogError:
            continue
        for t, a in run.center_accuracy:
            assert isinstance(t, float) and isinstance(a, float)


def test_a_number_with_two_points_is_no_number(tmp_path):
    # "[0-9.]+" matched it, and float() then raised ValueError.
    (tmp_path / "controller.log").write_text(
        "2026-12-04T20:53:15.030Z [controller] validation 1: accuracy 0.8.08 (best 0.8708) *  2.2 s  2050 minibatches\n"
        "2026-12-04T20:53:16.030Z [controller] validation 2: accuracy 0.8794 (best 0.8794) *  3.2 s  4050 minibatches\n")
    (tmp_path / "worker-0.log").write_text(
        "2026-12-04T20:53:17.000Z [worker 0 (worker-0)] progress: 10 minibatches  5.9.2 samples/s  sync 0.7%\n")
    run = logs.read_run(str(tmp_path))
    assert run.center_accuracy == [(1.0, 0.8794)]
    assert run.workers["worker-0"].progress == []
