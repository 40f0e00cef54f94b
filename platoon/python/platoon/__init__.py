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
    JobOverError,
    LayoutError,
    Lieutenant,
    PeerLostError,
    ProtocolError,
    RateLimited,
    ResourceError,
    Soldier,
    SyncPolicy,
    SyncRule,
    TimeoutError,
    WeightedAverage,
    WorkerInfo,
)

__all__ = [
    "ASGD", "CenterLock", "EASGD", "Error", "ErrorReply", "EveryN", "FileError", "JobOverError",
    "LayoutError", "Lieutenant", "PeerLostError", "ProtocolError", "RateLimited", "ResourceError",
    "Soldier", "SyncPolicy", "SyncRule", "TimeoutError", "WeightedAverage", "WorkerInfo",
]
