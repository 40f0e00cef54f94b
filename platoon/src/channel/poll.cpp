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

}  // namespace platoon::detail
