// Helpers shared by platoon's tests: unique names, temporary folders, a
// controller served on a thread, and one-thread-per-rank runs.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "platoon/channel/protocol.hpp"
#include "platoon/lieutenant.hpp"
#include "platoon/common/log.hpp"

namespace platoon::testing {

/// A name no other test or job uses: "<prefix>-<pid>-<counter>-<random>".
inline std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return str_cat(prefix, "-", ::getpid(), "-", counter++, "-", rd() % 100000);
}

/// A temporary folder removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / unique_name("platoon-test")) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Runs a controller's serve() on a thread bound to a loopback port (a free
/// one by default) or to an endpoint; stops and joins it when destroyed.
class ServedController {
 public:
  explicit ServedController(Lieutenant& controller, int port = 0) : controller_(controller) {
    controller_.init_control(port);
    start();
  }
  /// Binds `endpoint` (ipc://, say) instead of a port.
  ServedController(Lieutenant& controller, const std::string& endpoint) : controller_(controller) {
    controller_.init_control(endpoint);
    start();
  }
  ~ServedController() { stop(); }
  ServedController(const ServedController&) = delete;
  ServedController& operator=(const ServedController&) = delete;

  /// Stops serving and joins; rethrows what serve() threw.
  void stop() {
    controller_.stop();
    if (thread_.joinable()) thread_.join();
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }
  [[nodiscard]] std::string endpoint() const { return controller_.endpoint(); }
  /// Whether serve() has returned (by itself, or after stop()).
  [[nodiscard]] bool finished() const { return finished_.load(); }

 private:
  void start() {
    thread_ = std::thread([this] {
      try {
        controller_.serve();
      } catch (...) {
        error_ = std::current_exception();
      }
      finished_.store(true);
    });
  }

  Lieutenant& controller_;
  std::thread thread_;
  std::exception_ptr error_;
  std::atomic<bool> finished_{false};
};

/// Waits (bounded) until `done()` holds; returns whether it did.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// Runs `body(rank)` on `ranks` threads; joins all, then rethrows the first
/// exception any of them threw.
inline void run_ranks(int ranks, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  std::exception_ptr first;
  std::mutex mutex;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!first) first = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

/// Options for a controller in a test: no signal handling (tests run serve()
/// on a thread) and a unique job id.
inline Lieutenant::Options test_controller_options() {
  Lieutenant::Options options;
  options.handle_signals = false;
  options.job_id = unique_name("test");
  options.tick = std::chrono::milliseconds(20);
  // Tests run in parallel: one test's controller must not take away the
  // objects another test left dead on purpose. Tests of reclaiming turn it on.
  options.reclaim_dead_segments = false;
  return options;
}

/// A platoon-register frame for `controller`, carrying its job key; an
/// object `req_info` gets the key added.
inline std::string register_frame(const Lieutenant& controller,
                                  nlohmann::json req_info = {{"pid", 1}, {"host", "h"}}) {
  if (req_info.is_object()) req_info["job_key"] = controller.job_key();
  return protocol::encode_request("h:1", "platoon-register", req_info);
}

/// A request frame in the name of the worker that `registration` (the reply
/// to register_frame) registered, with its session token.
inline std::string worker_frame(const nlohmann::json& registration, const nlohmann::json& req,
                                const nlohmann::json& req_info = nullptr) {
  return protocol::encode_request(registration.at("worker_id"), req, req_info,
                                  registration.at("token").get<std::string>());
}

}  // namespace platoon::testing
