// The worker's sync thread pool (worker/src/task_pool.hpp): its thread count
// is bounded, and a failure to start a thread midway leaves no thread
// behind and no hang (issue 13, defect 5).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <system_error>

#include "platoon/common/error.hpp"
#include "task_pool.hpp"

using platoon::detail::TaskPool;

TEST_CASE("a pool's thread count must be in 1..256, checked before any thread starts") {
  std::size_t started = 0;
  const TaskPool::ThreadStarter counting = [&](std::function<void()> fn) {
    ++started;
    return std::thread(std::move(fn));
  };
  CHECK_THROWS_WITH_AS(TaskPool(0, counting), doctest::Contains("must be in 1..256, got 0"), platoon::Error);
  CHECK_THROWS_WITH_AS(TaskPool(static_cast<std::size_t>(-1), counting),
                       doctest::Contains("must be in 1..256, got 18446744073709551615"), platoon::Error);
  CHECK(started == 0);
  TaskPool largest(TaskPool::kMaxThreads, counting);
  CHECK(largest.size() == 256);
  CHECK(started == 255);
}

TEST_CASE("a thread that cannot start: those started are joined, and the error says how many") {
  std::atomic<int> running{0};
  int calls = 0;
  // The fourth helper cannot start, as when the system runs out of threads.
  const TaskPool::ThreadStarter failing = [&](std::function<void()> fn) {
    if (++calls == 4) throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
    return std::thread([&running, fn = std::move(fn)] {
      ++running;
      fn();
      --running;
    });
  };
  CHECK_THROWS_WITH_AS(TaskPool(8, failing), doctest::Contains("cannot start 7 sync threads (3 started)"),
                       platoon::ResourceError);
  CHECK(calls == 4);
  CHECK(running == 0);  // joined before the constructor left: none is still running
}

TEST_CASE("any other failure to start a thread also joins those started and passes the error on") {
  int calls = 0;
  const TaskPool::ThreadStarter failing = [&](std::function<void()> fn) {
    if (++calls == 2) throw std::bad_alloc();
    return std::thread(std::move(fn));
  };
  CHECK_THROWS_AS(TaskPool(4, failing), std::bad_alloc);
}

TEST_CASE("a pool runs every task once, over its threads") {
  TaskPool pool(4);
  std::atomic<int> sum{0};
  pool.run(100, [&](std::size_t i) { sum += static_cast<int>(i); });
  CHECK(sum == 4950);
}

TEST_CASE("back-to-back batches: a helper that wakes after its batch ended takes no part in the next") {
  // Batches of two tasks finish before every helper has woken; a helper
  // that wakes late must not read the next batch's task or count while the
  // caller writes them (ThreadSanitizer saw exactly that), nor run a task
  // of a batch that is over.
  TaskPool pool(4);
  std::atomic<long> sum{0};
  long expected = 0;
  for (int batch = 0; batch < 20000; ++batch) {
    const long base = batch;
    pool.run(2, [&, base](std::size_t i) { sum += base + static_cast<long>(i); });
    expected += 2 * base + 1;
  }
  CHECK(sum == expected);
}
