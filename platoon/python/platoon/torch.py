"""PyTorch interop: a torch.nn.Module's parameters as platoon's parameters.

::

    import platoon, platoon.torch
    model = Net()
    soldier = platoon.Soldier(port=port)
    soldier.init_shared_params(platoon.torch.parameter_views(model), platoon.EASGD(0.5))
    ...  # optimizer.step() updates the tensors in place; soldier.sync_params() syncs them in place

The views share memory with the tensors (``tensor.numpy()`` on CPU), so
nothing is copied between PyTorch and platoon. ``named_parameters()`` order
is the layout: every worker must build the same module. Replacing a
parameter tensor after init (``module.to(...)``, assigning a new
``nn.Parameter``) would leave platoon syncing the old memory, and
check_views() says so.
"""

from __future__ import annotations

import numpy as np
import torch

from ._platoon import LayoutError


def _named_tensors(module: torch.nn.Module, buffers: bool) -> list[tuple[str, torch.Tensor]]:
    """The layout: named_parameters(), then, with `buffers`, the
    floating-point buffers, each in PyTorch's order."""
    named = list(module.named_parameters())
    if buffers:
        named += [(name, b) for name, b in module.named_buffers() if b.is_floating_point()]
    return named


def parameter_views(module: torch.nn.Module, buffers: bool = False) -> list[tuple[str, np.ndarray]]:
    """Named float32 numpy views of `module`'s parameters, in
    named_parameters() order, for Soldier.init_shared_params. With
    `buffers`, floating-point buffers (batch norm's running statistics)
    follow, also in order. Raises platoon.LayoutError naming the first
    tensor that cannot be shared without a copy: not on the CPU, not
    float32, or not contiguous."""
    named = _named_tensors(module, buffers)
    if not named:
        raise LayoutError(f"{type(module).__name__} has no parameters to share")
    views = []
    for name, tensor in named:
        if tensor.device.type != "cpu":
            raise LayoutError(f"parameter '{name}' is on {tensor.device}: platoon shares CPU tensors "
                              "(move the module with .cpu() before init_shared_params)")
        if tensor.dtype != torch.float32:
            raise LayoutError(f"parameter '{name}' has dtype {tensor.dtype}, not torch.float32 "
                              "(use module.float())")
        if not tensor.is_contiguous():
            raise LayoutError(f"parameter '{name}' is not contiguous: sharing it would need a copy "
                              "(make it contiguous before init_shared_params)")
        views.append((name, tensor.detach().numpy()))
    return views


def check_views(module: torch.nn.Module, views: list[tuple[str, np.ndarray]]) -> None:
    """Raises platoon.LayoutError if `module`'s parameters are no longer the
    memory `views` (from parameter_views) share, naming the first one."""
    current = dict(module.named_parameters())
    for name, view in views:
        tensor = current.get(name)
        if tensor is None:
            raise LayoutError(f"parameter '{name}' is gone from {type(module).__name__}")
        if tensor.data_ptr() != view.ctypes.data or tensor.numel() != view.size:
            raise LayoutError(f"parameter '{name}' was replaced after init_shared_params: platoon syncs "
                              "the old tensor (update parameters in place, as optimizers do)")


def load_flat(module: torch.nn.Module, flat: np.ndarray, buffers: bool = False) -> None:
    """Copies a flat float32 vector in layout order (Soldier.read_center's)
    into `module`'s parameters (and floating-point buffers, with `buffers`,
    as parameter_views lays them out): how a scratch module gets the center.
    Raises platoon.LayoutError when the sizes differ."""
    tensors = [t for _, t in _named_tensors(module, buffers)]
    total = sum(t.numel() for t in tensors)
    if flat.size != total:
        raise LayoutError(f"a flat vector of {flat.size} values does not fit {type(module).__name__}, "
                          f"which has {total}")
    source = torch.from_numpy(flat)
    offset = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(source[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def parameter_count(module: torch.nn.Module, buffers: bool = False) -> int:
    """The number of values parameter_views(module, buffers) shares: the
    center's size."""
    return sum(t.numel() for _, t in _named_tensors(module, buffers))


def flat_buffer(module: torch.nn.Module, buffers: bool = False) -> np.ndarray:
    """A float32 vector the size of parameter_views(module, buffers), for
    Soldier.read_center."""
    return np.empty(parameter_count(module, buffers), np.float32)
