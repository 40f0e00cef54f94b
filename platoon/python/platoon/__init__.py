"""platoon: a controller/worker framework for training one model on many workers.

A worker::

    import numpy as np, platoon
    w = np.zeros((784, 10), np.float32)
    soldier = platoon.Soldier(port=5567)
    soldier.init_shared_params({"w": w}, platoon.EASGD(0.5))
    while soldier.send_req("next") == "train":
        ...                       # train on a minibatch, updating w in place
        soldier.sync_params()     # elastic averaging with the center
    soldier.close()

A synchronous worker shares a platoon.GroupState with its group
(soldier.init_group), fills soldier.gradients() and calls
soldier.all_reduce(); platoon.torch shares a torch.nn.Module's parameters,
and platoon.logs writes the log lines platoon-plot reads.

A controller subclasses platoon.Lieutenant and defines handle_control(req,
worker, req_info). Every error platoon raises derives from platoon.Error.
"""

from ._platoon import (  # noqa: F401
    ASGD,
    CenterLock,
    EASGD,
    Error,
    ErrorReply,
    EveryN,
    FileError,
    GroupPosition,
    GroupState,
    JobOverError,
    LayoutError,
    Lieutenant,
    PeerLostError,
    ProtocolError,
    RateLimited,
    ReduceOp,
    ResourceError,
    Soldier,
    SyncPolicy,
    SyncRule,
    TimeoutError,
    WeightedAverage,
    WorkerInfo,
)

__all__ = [
    "ASGD", "CenterLock", "EASGD", "Error", "ErrorReply", "EveryN", "FileError", "GroupPosition", "GroupState",
    "JobOverError", "LayoutError", "Lieutenant", "PeerLostError", "ProtocolError", "RateLimited", "ReduceOp",
    "ResourceError",
    "Soldier", "SyncPolicy", "SyncRule", "TimeoutError", "WeightedAverage", "WorkerInfo",
]
