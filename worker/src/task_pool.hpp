// A fixed set of threads that run the chunks of one sync together. The
// calling thread works too, so a pool of size 1 has no extra thread at all.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace platoon::detail {

class TaskPool {
 public:
  /// The most threads a pool runs (the calling thread included).
  static constexpr std::size_t kMaxThreads = 256;

  /// Starts a helper thread running the function it is given.
  using ThreadStarter = std::function<std::thread(std::function<void()>)>;

  /// Starts threads - 1 helpers (`threads` counts the caller) through
  /// `start` (tests pass one that fails). Throws Error for 0 or more than
  /// kMaxThreads, ResourceError when the system refuses a thread; any
  /// failure stops and joins the helpers started so far before it leaves.
  explicit TaskPool(std::size_t threads, const ThreadStarter& start = start_without_signals);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  [[nodiscard]] std::size_t size() const { return helpers_.size() + 1; }

  /// Runs task(i) for every i in [0, count), spread over the threads, and
  /// returns when all are done. Tasks are handed out in increasing order of
  /// i. The first exception a task throws is rethrown here (the remaining
  /// tasks are skipped).
  void run(std::size_t count, const std::function<void(std::size_t)>& task);

 private:
  // Runs tasks of the current batch until none is left.
  void work(const std::function<void(std::size_t)>& task, std::size_t count);
  void helper_loop();

  void stop_helpers() noexcept;
  static std::thread start_without_signals(std::function<void()> fn);

  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  const std::function<void(std::size_t)>* task_ = nullptr;
  std::size_t count_ = 0;
  std::atomic<std::size_t> next_{0};
  std::size_t generation_ = 0;
  std::size_t busy_helpers_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace platoon::detail
