// Waiting on ZeroMQ sockets without letting a signal end the wait: the
// programs platoon runs in install signal handlers (profilers, language
// runtimes, the user's own), and each handled signal makes a blocking call
// fail with EINTR.
#pragma once

#include <chrono>
#include <cstddef>

#include <zmq.hpp>

namespace platoon::detail {

/// zmq::poll over `items`, retried after EINTR until `timeout` has passed in
/// all. Returns the number of ready items, 0 when the time ran out.
int poll_for(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout);

}  // namespace platoon::detail
