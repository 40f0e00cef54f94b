#!/usr/bin/python3
"""sync_params() called from Python against the same call from C++.

    PYTHONPATH=build/release/python /usr/bin/python3 tools/bench/python_sync.py [--quick] [--size N]

One job in this process: a Python controller serving on a thread and one
Python worker of N float32 parameters (10 M by default) syncing with EASGD
through shared memory. The two ways take turns, one call each, and the
figure is the ratio of their medians: what the Python path adds to a sync.
"""
import argparse
import statistics
import threading
import time
import uuid

import numpy as np

import platoon


class Controller(platoon.Lieutenant):
    def __init__(self):
        super().__init__(job_id="bench-py-" + uuid.uuid4().hex[:10], handle_signals=False, worker_timeout=600)

    def handle_control(self, req, worker, req_info):
        return "ok"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="parameters (default 10M)")
    parser.add_argument("--repetitions", type=int, default=31)
    parser.add_argument("--quick", action="store_true", help="1M parameters, 7 repetitions")
    args = parser.parse_args()
    size, repetitions = (1 << 20, 7) if args.quick else (args.size, args.repetitions)

    controller = Controller()
    controller.init_control(0)
    serving = threading.Thread(target=controller.serve)
    serving.start()
    try:
        params = np.ones(size, np.float32)
        soldier = platoon.Soldier(endpoint=controller.endpoint, job_key=controller.job_key, heartbeat_interval=0,
                                  on_controller_lost="raise")
        soldier.init_shared_params({"w": params}, platoon.EASGD(0.5))
        soldier.sync_params()  # warm: the pages are mapped
        from_python, from_cpp = [], []
        for _ in range(repetitions):
            t0 = time.perf_counter()
            soldier.sync_params()
            from_python.append(time.perf_counter() - t0)
            from_cpp.extend(soldier._time_syncs(1))
        soldier.close()
    finally:
        controller.stop()
        serving.join()
    python_ms = statistics.median(from_python) * 1e3
    cpp_ms = statistics.median(from_cpp) * 1e3
    print(f"python_sync_{size}: sync_params() from Python {python_ms:.3f} ms, from C++ {cpp_ms:.3f} ms "
          f"(medians of {repetitions}, taking turns), ratio {python_ms / cpp_ms:.3f}")


if __name__ == "__main__":
    main()
