#include "task_pool.hpp"

#include <system_error>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/common/thread.hpp"

namespace platoon::detail {

std::thread TaskPool::start_without_signals(std::function<void()> fn) {
  return start_thread_without_signals(std::move(fn));
}

TaskPool::TaskPool(std::size_t threads, const ThreadStarter& start) {
  if (threads == 0 || threads > kMaxThreads)
    throw Error(str_cat("a sync thread count must be in 1..", kMaxThreads, ", got ", threads));
  // Reserved first: a push_back that threw would destroy a running,
  // joinable thread, which ends the process.
  helpers_.reserve(threads - 1);
  try {
    for (std::size_t i = 1; i < threads; ++i) helpers_.push_back(start([this] { helper_loop(); }));
  } catch (const std::system_error& e) {
    // The threads started so far must be stopped before the members go.
    stop_helpers();
    throw ResourceError(str_cat("cannot start ", threads - 1, " sync threads (", helpers_.size(),
                                " started): ", e.what()));
  } catch (...) {
    stop_helpers();
    throw;
  }
}

TaskPool::~TaskPool() { stop_helpers(); }

void TaskPool::stop_helpers() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : helpers_)
    if (t.joinable()) t.join();
}

void TaskPool::work(const std::function<void(std::size_t)>& task, std::size_t count) {
  while (true) {
    const std::size_t i = next_.fetch_add(1);
    if (i >= count) return;
    try {
      task(i);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(count);  // skip what is left
    }
  }
}

void TaskPool::helper_loop() {
  std::size_t seen = 0;
  while (true) {
    const std::function<void(std::size_t)>* task = nullptr;
    std::size_t count = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      // A helper that wakes after its batch ended (task_ is null again)
      // takes no part: the caller may be writing the next batch already.
      // One that joins is counted busy, so the caller cannot end the batch
      // (and reuse task_ and count_) before this helper is done with them.
      if (task_ == nullptr) continue;
      task = task_;
      count = count_;
      ++busy_helpers_;
    }
    work(*task, count);
    {
      std::lock_guard lock(mutex_);
      --busy_helpers_;
    }
    finished_.notify_one();
  }
}

void TaskPool::run(std::size_t count, const std::function<void(std::size_t)>& task) {
  if (helpers_.empty() || count <= 1) {
    for (std::size_t i = 0; i < count; ++i) task(i);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    task_ = &task;
    count_ = count;
    next_.store(0);
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  work(task, count);
  std::exception_ptr error;
  {
    // Helpers that joined this batch finish it; ones that wake later find
    // task_ null and sit it out.
    std::unique_lock lock(mutex_);
    finished_.wait(lock, [&] { return busy_helpers_ == 0; });
    error = error_;
    task_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace platoon::detail
