"""platoon's Python bindings against real sockets, shared memory and processes."""
import os
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest

import platoon


class EchoController(platoon.Lieutenant):
    """Answers {"echo": req}; "fail" raises; "end" ends the job."""

    def __init__(self, **kw):
        super().__init__(job_id="py-" + uuid.uuid4().hex[:12], tick=0.02, reclaim_dead_segments=False, **kw)
        self.joined = []

    def handle_control(self, req, worker, req_info):
        if req == "fail":
            raise ValueError("this request always fails")
        if req == "end":
            self.end_job()
        return {"echo": req, "info": req_info, "worker": worker.id}

    def on_worker_joined(self, worker):
        self.joined.append(worker.id)


class Served:
    """serve() on a thread; stop() and join at the end."""

    def __init__(self, controller):
        self.controller = controller
        controller.init_control(0)
        self.thread = threading.Thread(target=controller.serve)
        self.thread.start()

    def soldier(self, **kw):
        kw.setdefault("heartbeat_interval", 0.2)
        kw.setdefault("on_controller_lost", "raise")
        kw.setdefault("timeout", 10)
        return platoon.Soldier(endpoint=self.controller.endpoint, job_key=self.controller.job_key, **kw)

    def close(self):
        self.controller.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def served():
    s = Served(EchoController())
    yield s
    s.close()


def test_requests_and_replies_are_python_values(served):
    s = served.soldier()
    reply = s.send_req({"a": [1, 2.5, None, True]}, req_info="x")
    assert reply == {"echo": {"a": [1, 2.5, None, True]}, "info": "x", "worker": s.worker_id}
    assert served.controller.joined == [s.worker_id]
    s.close()


def test_shared_params_are_zero_copy_and_easgd_syncs_them(served):
    w = np.full((4, 5), 1.5, np.float32)
    first = served.soldier(name="first")
    assert first.first
    first.init_shared_params({"w": w}, platoon.EASGD(0.5))
    center = first.central_values()
    assert center.dtype == np.float32 and center.shape == (20,)
    assert (center == 1.5).all()  # the first worker's values, never zeros

    w[:] = 3.5  # the Soldier sees the array itself
    first.sync_params()
    assert np.allclose(w, 2.5) and np.allclose(center, 2.5)

    second_w = np.zeros((4, 5), np.float32)
    second = served.soldier(name="second")
    second.init_shared_params([("w", second_w)], platoon.EASGD(0.5))
    assert np.allclose(second_w, 2.5)  # a joining worker starts from the center

    with first.lock():
        center[3] = 42.0  # a write through the view is the center's
    seen = np.zeros(20, np.float32)
    second.read_center(seen)
    assert seen[3] == 42.0
    first.rule().set_alpha(1.0)
    assert first.rule().alpha == 1.0
    second.close()
    first.close()
    # The view has a mapping of its own: it outlives close().
    assert center[3] == 42.0 and center.sum() == pytest.approx(42.0 + 19 * 2.5)


def test_bad_arrays_and_bad_values_are_named(served):
    s = served.soldier()
    with pytest.raises(platoon.LayoutError, match="'w' is not C-contiguous"):
        s.init_shared_params({"w": np.zeros((4, 6), np.float32)[:, ::2]}, platoon.EASGD(0.5))
    with pytest.raises(platoon.LayoutError, match="'b' has dtype float64"):
        s.init_shared_params({"b": np.zeros(3)}, platoon.EASGD(0.5))
    with pytest.raises(platoon.LayoutError, match="'c' is a list"):
        s.init_shared_params({"c": [1.0]}, platoon.EASGD(0.5))
    with pytest.raises(platoon.Error, match="alpha must be in"):
        platoon.EASGD(2.0)
    with pytest.raises(platoon.Error, match="cannot be sent as JSON"):
        s.send_req(object())
    s.close()


def test_arrays_platoon_writes_into_are_never_converted_copies(served):
    s = served.soldier()
    s.init_shared_params({"w": np.ones(4, np.float32)}, platoon.EASGD(0.5))
    with pytest.raises(platoon.Error, match="float32"):
        s.read_center(np.zeros(4))  # float64: the values would go into a copy
    with pytest.raises(platoon.Error, match="C-contiguous"):
        s.read_center(np.zeros(8, np.float32)[::2])
    s.close()


def test_a_synchronous_group_of_python_workers():
    served = Served(EchoController(group_size=2))
    results, errors = {}, []

    def rank_main(i):
        try:
            s = served.soldier(name=f"rank-{i}")
            w = np.full(6, 10.0 + i, np.float32)
            moment = np.full(3, float(i), np.float32)
            group = platoon.GroupState({"w": w}, state=[moment], progress={"step": 5 + i})
            assert s.init_group(group)
            position = s.group_position
            g = s.gradients()
            assert g.dtype == np.float32 and g.shape == (6,)
            g[:] = position.rank + 1
            s.all_reduce(g, platoon.ReduceOp.sum)  # in place, in shared memory
            reduced = g.copy()  # the collective requests below use the buffer as scratch
            own = np.array([2.0 * position.rank, 1.0], np.float32)
            s.all_reduce(own)  # the mean, on any float32 array
            reply = s.send_req_collective("step", {"rank": position.rank})
            with pytest.raises(platoon.Error, match="gradients"):
                s.close()  # a view of the gradients is alive
            results[position.rank] = dict(w=w.copy(), moment=moment.copy(), progress=group.progress, g=reduced,
                                          own=own.copy(), reply=reply, size=position.size)
            del g
            s.close()
        except BaseException as e:  # noqa: B902 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=rank_main, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    served.close()
    assert not errors, errors
    assert sorted(results) == [0, 1]
    zero, one = results[0], results[1]
    # Rank 0's parameters, optimizer state and progress reached the other rank.
    assert (zero["w"] == one["w"]).all() and (zero["moment"] == one["moment"]).all()
    assert zero["progress"] == one["progress"] and zero["progress"]["step"] in (5, 6)
    assert (zero["g"] == 3).all() and (one["g"] == 3).all()
    assert zero["own"].tolist() == one["own"].tolist() == [1.0, 1.0]
    assert zero["reply"] == one["reply"] and zero["reply"]["echo"] == "step"
    assert zero["reply"]["info"] == {"rank": 0}  # rank 0 asked, for the group
    assert zero["size"] == one["size"] == 2


def test_a_python_error_in_handle_control_is_the_workers_error_reply(served):
    s = served.soldier()
    with pytest.raises(platoon.ErrorReply) as caught:
        s.send_req("fail")
    assert caught.value.kind == "handler-error"
    assert "this request always fails" in str(caught.value)
    assert isinstance(caught.value, platoon.ProtocolError) and isinstance(caught.value, platoon.Error)
    assert s.send_req("again")["echo"] == "again"  # the controller goes on
    s.close()


def test_nothing_listening_is_a_timeout_naming_the_endpoint():
    start = time.monotonic()
    with pytest.raises(platoon.TimeoutError, match="tcp://127.0.0.1:9"):
        platoon.Soldier(endpoint="tcp://127.0.0.1:9", job_key="0" * 64, connect_timeout=0.3, timeout=1)
    assert time.monotonic() - start < 5


def test_serve_releases_the_gil(served):
    # serve() runs on its own thread; Python code keeps running meanwhile,
    # and handle_control (which takes the GIL) answers a worker at once.
    count = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        count += 1
    assert count > 10000
    s = served.soldier()
    done = []
    t = threading.Thread(target=lambda: done.append(s.send_req("from a thread")))
    t.start()
    t.join(timeout=10)
    assert done and done[0]["echo"] == "from a thread"
    s.close()


def test_sync_policies():
    every = platoon.EveryN(3)
    calls = []
    synced = [every.maybe_sync(lambda: calls.append(1)) for _ in range(9)]
    assert synced == [False, False, True] * 3 and len(calls) == 3 and every.syncs == 3
    limited = platoon.RateLimited(0.1)
    assert limited.maybe_sync(lambda: None)


class JobProtocolController(platoon.Lieutenant):
    """The protocol of platoon_test_job's workers: ready, next, report."""

    def __init__(self, workers, steps):
        super().__init__(job_id="py-" + uuid.uuid4().hex[:12], tick=0.02, reclaim_dead_segments=False,
                         worker_timeout=10)
        self.workers_expected, self.steps = workers, steps
        self.ready = 0
        self.given = {}
        self.stopped = 0
        self.reports = []
        self.center = None

    def handle_control(self, req, worker, req_info):
        if req == "ready":
            self.ready += 1
            return "ok"
        if req == "next":
            if self.ready < self.workers_expected:
                return "wait"
            if self.given.get(worker.id, 0) < self.steps:
                self.given[worker.id] = self.given.get(worker.id, 0) + 1
                return "train"
            self.stopped += 1
            if self.stopped == self.workers_expected:
                self.end_job()
            return "stop"
        if req == "report":
            self.reports.append(req_info)
            return "ok"
        if req == "reports":
            return len(self.reports)
        raise ValueError(f"unknown request {req!r}")


def python_worker(endpoint, job_key, index, size, steps_tau, out):
    """The loop of platoon_test_job's worker, in Python."""
    tau = steps_tau
    s = platoon.Soldier(endpoint=endpoint, job_key=job_key, heartbeat_interval=0.2, on_controller_lost="raise",
                        chunk_elements=128)
    x = np.full(size, 1.0 if s.first else 100.0 + index, np.float32)
    s.init_shared_params({"x": x}, platoon.EASGD(0.4))
    s.send_req("ready")
    g = (0.001 * (index + 1) * (np.arange(size) % 7 + 1)).astype(np.float32)
    step = 0
    while True:
        what = s.send_req("next")
        if what == "wait":
            time.sleep(0.005)
            continue
        if what != "train":
            break
        x += g
        step += 1
        if step % tau == 0:
            s.sync_params()
    s.sync_params()
    s.send_req("report", {"index": index, "local": x.tolist()})
    if index == 0:
        # Every worker syncs once more before it reports: once all have
        # reported, the center is final. Worker 0 stays until then.
        deadline = time.monotonic() + 60
        while s.send_req("reports") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        out.append(s.central_values().copy())
    s.close()


def test_a_python_controller_with_two_python_workers_and_a_cpp_worker():
    job_bin = os.environ.get("PLATOON_TEST_JOB")
    if not job_bin or not os.path.exists(job_bin):
        pytest.skip("PLATOON_TEST_JOB (the C++ test worker) is not set: run through ctest")
    size, steps, tau = 1000, 60, 3
    controller = JobProtocolController(workers=3, steps=steps)
    controller.init_control(0)
    serving = threading.Thread(target=controller.serve)
    serving.start()
    out = []
    try:
        first = threading.Thread(target=python_worker, args=(controller.endpoint, controller.job_key, 0, size, tau, out))
        first.start()
        deadline = time.monotonic() + 20
        while not controller.params_ready:
            assert time.monotonic() < deadline, "the first Python worker did not create the center"
            time.sleep(0.01)
        second = threading.Thread(target=python_worker, args=(controller.endpoint, controller.job_key, 1, size, tau, out))
        second.start()
        cpp = subprocess.run([job_bin, "worker", "--endpoint", controller.endpoint, "--index", "2", "--size", str(size),
                              "--tau", str(tau), "--alpha", "0.4", "--chunk", "128", "--step-ms", "1"],
                             env=dict(os.environ, PLATOON_JOB_KEY=controller.job_key), capture_output=True, text=True,
                             timeout=120)
        assert cpp.returncode == 0, cpp.stderr
        first.join(timeout=60)
        second.join(timeout=60)
        assert not first.is_alive() and not second.is_alive()
        serving.join(timeout=30)
        assert not serving.is_alive(), "the job did not end"
    finally:
        controller.stop()
        serving.join(timeout=10)
    # EASGD conserves center + locals: every element ends at 4 * 1.0 + steps * sum of the g_i.
    assert len(controller.reports) == 3
    reports = {r["index"]: np.array(r["local"], np.float64) for r in controller.reports}
    assert sorted(reports) == [0, 1, 2]
    assert out, "worker 0 did not read the center"
    center = out[0].astype(np.float64)
    j = np.arange(size)
    g_sum = sum(0.001 * (i + 1) * (j % 7 + 1) for i in range(3))
    total = center + sum(reports.values())
    assert np.allclose(total, 4.0 + steps * g_sum, rtol=1e-4)
    assert (np.abs(center - 1.0) > 1e-3).any(), "the center never moved"
