"""PyTorch interop (platoon.torch): a torch.nn.Module's parameters shared
zero-copy, synced in place, and the errors that name a parameter."""
import collections
import threading
import uuid

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch interop needs Debian's python3-torch")

import platoon  # noqa: E402
import platoon.torch  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(8, 3)
        self.bn = torch.nn.BatchNorm1d(3)


def test_views_follow_named_parameters_and_share_memory():
    net = Net()
    views = platoon.torch.parameter_views(net)
    assert [name for name, _ in views] == [name for name, _ in net.named_parameters()]
    assert [v.shape for _, v in views] == [tuple(p.shape) for p in net.parameters()]
    assert all(v.dtype == np.float32 for _, v in views)
    views[0][1][0, 0, 0, 0] = 7.0  # a write through the view is the tensor's
    assert net.conv.weight[0, 0, 0, 0].item() == 7.0
    with torch.no_grad():
        net.fc.bias.add_(1.0)  # an in-place update is the view's
    assert np.allclose(dict(views)["fc.bias"], net.fc.bias.detach().numpy())
    assert platoon.torch.parameter_count(net) == sum(v.size for _, v in views)
    with_buffers = platoon.torch.parameter_views(net, buffers=True)
    assert [n for n, _ in with_buffers][len(views):] == ["bn.running_mean", "bn.running_var"]


def test_tensors_that_need_a_copy_are_named():
    with pytest.raises(platoon.LayoutError, match="'fc.weight' has dtype torch.float64"):
        platoon.torch.parameter_views(torch.nn.Sequential(collections.OrderedDict(fc=torch.nn.Linear(2, 2))).double())
    net = torch.nn.Linear(4, 3)
    net.weight = torch.nn.Parameter(torch.zeros(4, 3).t())  # a transposed, non-contiguous tensor
    with pytest.raises(platoon.LayoutError, match="'weight' is not contiguous"):
        platoon.torch.parameter_views(net)
    with pytest.raises(platoon.LayoutError, match="has no parameters"):
        platoon.torch.parameter_views(torch.nn.ReLU())


class Controller(platoon.Lieutenant):
    def __init__(self):
        super().__init__(job_id="pt-" + uuid.uuid4().hex[:12], tick=0.02, reclaim_dead_segments=False)

    def handle_control(self, req, worker, req_info):
        return "ok"


def test_a_module_syncs_in_place_with_easgd_and_a_replaced_tensor_is_caught():
    controller = Controller()
    controller.init_control(0)
    thread = threading.Thread(target=controller.serve)
    thread.start()
    try:
        def soldier():
            return platoon.Soldier(endpoint=controller.endpoint, job_key=controller.job_key, timeout=10)

        torch.manual_seed(3)
        a, b = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
        first, second = soldier(), soldier()
        views_a = platoon.torch.parameter_views(a)
        first.init_shared_params(views_a, platoon.EASGD(0.5))
        second.init_shared_params(platoon.torch.parameter_views(b), platoon.EASGD(0.5))
        assert torch.equal(a.weight, b.weight)  # the second starts from the center
        start = a.weight.detach().clone()

        optimizer = torch.optim.SGD(a.parameters(), lr=0.1)
        a(torch.ones(2, 5)).sum().backward()
        optimizer.step()  # in place: the views see it
        moved = a.weight.detach().clone()
        first.sync_params()
        # EASGD with alpha 0.5: the worker and the center meet halfway.
        assert torch.allclose(a.weight, (moved + start) / 2)
        center = platoon.torch.flat_buffer(a)
        first.read_center(center)
        scratch = torch.nn.Linear(5, 4)
        platoon.torch.load_flat(scratch, center)
        assert torch.allclose(scratch.weight, (moved + start) / 2) and torch.allclose(scratch.bias, a.bias)

        platoon.torch.check_views(a, views_a)  # still the same memory
        a.weight = torch.nn.Parameter(a.weight.detach().clone())
        with pytest.raises(platoon.LayoutError, match="'weight' was replaced"):
            platoon.torch.check_views(a, views_a)
        second.close()
        first.close()
    finally:
        controller.stop()
        thread.join(timeout=10)
