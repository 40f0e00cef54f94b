// Waiting on ZeroMQ sockets without letting a signal end the wait: the
// programs platoon runs in install signal handlers (profilers, language
// runtimes, the user's own), and each handled signal makes a blocking call
// fail with EINTR.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include <zmq.hpp>

namespace platoon::detail {

/// zmq::poll over `items`, retried after EINTR until `timeout` has passed in
/// all. Returns the number of ready items, 0 when the time ran out.
int poll_for(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout);

// ZeroMQ may report EINTR even from calls that never block (it reads its
// command mailbox with poll()), so these retry after it too.

/// socket.recv(message, dontwait), retried after EINTR. False when nothing
/// is waiting.
bool receive_now(zmq::socket_t& socket, zmq::message_t& message);

/// Every part of the multipart message waiting on `socket`, received with
/// receive_now (ZeroMQ delivers a message whole, so once its first part is
/// here the rest are too). Empty when nothing is waiting.
std::vector<zmq::message_t> receive_parts_now(zmq::socket_t& socket);

/// Whether a message waits on `socket` (ZMQ_EVENTS), retried after EINTR.
bool has_message(zmq::socket_t& socket);

/// socket.send(message, flags), retried after EINTR. False when it would
/// block (with dontwait) or the peer is gone; other errors throw.
bool send_now(zmq::socket_t& socket, zmq::message_t& message, zmq::send_flags flags);

}  // namespace platoon::detail
