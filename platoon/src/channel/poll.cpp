#include "poll.hpp"

#include <algorithm>
#include <cerrno>

namespace platoon::detail {

int poll_for(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    try {
      return zmq::poll(items, count, std::max(left, std::chrono::milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      if (std::chrono::steady_clock::now() >= deadline) return 0;
    }
  }
}

bool receive_now(zmq::socket_t& socket, zmq::message_t& message) {
  for (;;) {
    try {
      return socket.recv(message, zmq::recv_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
}

std::vector<zmq::message_t> receive_parts_now(zmq::socket_t& socket) {
  std::vector<zmq::message_t> parts;
  for (;;) {
    zmq::message_t part;
    if (!receive_now(socket, part)) break;
    const bool more = part.more();
    parts.push_back(std::move(part));
    if (!more) break;
  }
  return parts;
}

bool has_message(zmq::socket_t& socket) {
  for (;;) {
    try {
      return (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
}

bool send_now(zmq::socket_t& socket, zmq::message_t& message, zmq::send_flags flags) {
  for (;;) {
    try {
      return socket.send(message, flags).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return false;
      if (e.num() != EINTR) throw;
    }
  }
}

}  // namespace platoon::detail
