// The examples' training schedule and flags: pure logic, no sockets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "flags.hpp"
#include "platoon/common/error.hpp"
#include "schedule.hpp"
#include "sync_data.hpp"

using namespace platoon::examples;

TEST_CASE("the schedule hands out minibatches, one validation at a time, then stops at the budget") {
  ScheduleOptions o;
  o.max_minibatches = 45;
  o.valid_every = 20;
  o.minibatches_per_request = 10;
  TrainingSchedule s(o);
  Decision d = s.next(0);
  CHECK((d.action == Action::train && d.minibatches == 10));
  s.trained(10);
  s.next(0);
  s.trained(10);  // 20 trained: a validation is due
  CHECK(s.next(0).action == Action::valid);
  CHECK(s.next(0).action == Action::train);  // not two validations at once
  s.validated(0.5);
  CHECK(s.next(0).minibatches == 10);  // 40 handed out
  d = s.next(0);
  CHECK((d.action == Action::train && d.minibatches == 5));  // the budget's remainder
  CHECK(s.next(0).action == Action::stop);
  CHECK(s.stop_reason().find("minibatch budget") != std::string::npos);
}

TEST_CASE("early stopping after `patience` validations without improvement") {
  ScheduleOptions o;
  o.patience = 2;
  o.valid_every = 1;
  TrainingSchedule s(o);
  CHECK(s.validated(0.3).improved);
  CHECK(s.validated(0.2).improved);
  CHECK_FALSE(s.validated(0.25).improved);
  CHECK_FALSE(s.stopping());
  CHECK_FALSE(s.validated(0.2).improved);  // equal is not better
  CHECK(s.stopping());
  CHECK(s.best_error() == doctest::Approx(0.2));
  CHECK(s.next(0).action == Action::stop);
}

TEST_CASE("the time budget and the target accuracy stop the job") {
  ScheduleOptions o;
  o.max_seconds = 10;
  TrainingSchedule timed(o);
  CHECK(timed.next(9.9).action == Action::train);
  CHECK(timed.next(10.0).action == Action::stop);
  CHECK(timed.stop_reason().find("time budget") != std::string::npos);

  ScheduleOptions t;
  t.target_accuracy = 0.9;
  TrainingSchedule target(t);
  target.validated(0.15);
  CHECK_FALSE(target.stopping());
  target.validated(0.09);
  CHECK(target.stopping());
}

TEST_CASE("a validation abandoned by a dead worker can be handed out again") {
  ScheduleOptions o;
  o.valid_every = 10;
  TrainingSchedule s(o);
  s.trained(10);
  CHECK(s.next(0).action == Action::valid);
  s.trained(10);
  CHECK(s.next(0).action == Action::train);
  s.validation_abandoned();
  CHECK(s.next(0).action == Action::valid);
}

namespace {

// argv for a parser: the program name, then `args`.
struct Argv {
  explicit Argv(std::vector<std::string> args) : words(std::move(args)) {
    words.insert(words.begin(), "prog");
    for (auto& w : words) pointers.push_back(w.data());
  }
  int argc() const { return static_cast<int>(pointers.size()); }
  char** argv() { return pointers.data(); }
  std::vector<std::string> words;
  std::vector<char*> pointers;
};

WorkerFlags worker(std::vector<std::string> args) {
  Argv a(std::move(args));
  return parse_worker_flags(a.argc(), a.argv(), WorkerDefaults{});
}
ControllerFlags controller(std::vector<std::string> args) {
  Argv a(std::move(args));
  return parse_controller_flags(a.argc(), a.argv(), ScheduleOptions{});
}
SyncFlags sync(std::vector<std::string> args) {
  Argv a(std::move(args));
  return parse_sync_flags(a.argc(), a.argv(), SyncDefaults{});
}

}  // namespace

TEST_CASE("flags: values, switches, defaults and the last of repeated values") {
  const WorkerFlags f = worker({"--batch", "32", "--standalone", "--lr", "0.5", "--port", "6000", "--port", "6001"});
  CHECK(f.batch == 32);
  CHECK(f.learning_rate == 0.5);
  CHECK(f.standalone);
  CHECK(f.endpoint == "tcp://127.0.0.1:6001");
  CHECK(f.data == "/usr/share/datasets/fashion-mnist");
  CHECK(f.sync_threads == 1);
  CHECK(worker({"--endpoint", "tcp://h:1", "--port", "2"}).endpoint == "tcp://h:1");
  CHECK(worker({"--mode", "easgd"}).batch == WorkerDefaults{}.batch);
  CHECK(controller({}).port == 5567);
  CHECK(controller({"--worker-timeout", "0.5"}).worker_timeout_seconds == 0.5);
  CHECK(sync({"--batch", "256", "--mode=sync"}).global_batch == 256);
  CHECK(worker_mode(3, Argv({"--mode", "sync"}).argv()) == "sync");
  CHECK(worker_mode(2, Argv({"--mode=sync"}).argv()) == "sync");
  CHECK(worker_mode(1, Argv({}).argv()) == "easgd");
  CHECK(worker({"--seed", "7"}).seed == 7);
  CHECK(worker({}).seed == 1);
}

TEST_CASE("flags: unknown flags, missing values and words for numbers are bad usage naming the flag") {
  CHECK_THROWS_WITH_AS(worker({"--bogus", "1"}), doctest::Contains("--bogus"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--batch"}), doctest::Contains("--batch"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--batch", "many"}), doctest::Contains("--batch"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--mode", "async"}), doctest::Contains("--mode"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--optimizer", "adagrad"}), doctest::Contains("--optimizer"), UsageError);
}

// Defect 9: values out of range wrapped (--port 99999 became 34463, -5 became
// 65531), picked a port nobody finds (0), or were silently replaced by the
// default (--hidden -3).
TEST_CASE("flags: values out of range are refused naming the flag and its range, never wrapped or defaulted") {
  CHECK_THROWS_WITH_AS(worker({"--port", "99999"}), doctest::Contains("--port: Value 99999 not in range 1 to 65535"),
                       UsageError);
  CHECK_THROWS_WITH_AS(worker({"--port", "-5"}), doctest::Contains("--port: Value -5 not in range 1 to 65535"),
                       UsageError);
  CHECK_THROWS_WITH_AS(worker({"--port", "0"}), doctest::Contains("not in range 1 to 65535"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--port", "0"}), doctest::Contains("--port"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--port", "4294967297"}), doctest::Contains("--port"), UsageError);
  CHECK_THROWS_WITH_AS(sync({"--port", "70000"}), doctest::Contains("--port"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--hidden", "-3"}), doctest::Contains("--hidden: Value -3 not in range 0 to 65536"),
                       UsageError);
  CHECK_THROWS_WITH_AS(sync({"--hidden", "-3"}), doctest::Contains("--hidden"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--train-limit", "-5"}), doctest::Contains("--train-limit: Value -5 not in range 0"),
                       UsageError);
  CHECK_THROWS_WITH_AS(sync({"--train-limit", "-5"}), doctest::Contains("--train-limit"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--batch", "0"}), doctest::Contains("--batch"), UsageError);
  CHECK_THROWS_WITH_AS(sync({"--batch", "-1"}), doctest::Contains("--batch"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--seed", "-1"}), doctest::Contains("--seed"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--lr", "0"}), doctest::Contains("--lr: value 0 not in (0, 1e+06]"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--alpha", "1.5"}), doctest::Contains("--alpha"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--lr-decay", "0"}), doctest::Contains("--lr-decay"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--sync-every", "0"}), doctest::Contains("--sync-every"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--max-time", "nan"}), doctest::Contains("--max-time"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--worker-timeout", "0"}), doctest::Contains("--worker-timeout: value 0 not in (0, 1e+07]"),
                       UsageError);
  CHECK_THROWS_WITH_AS(controller({"--worker-timeout", "-1"}), doctest::Contains("--worker-timeout"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--worker-timeout", "1e300"}), doctest::Contains("--worker-timeout"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--checkpoint-every", "0"}), doctest::Contains("--checkpoint-every"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--group-size", "0"}), doctest::Contains("--group-size"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--valid-every", "0"}), doctest::Contains("--valid-every"), UsageError);
  CHECK_THROWS_WITH_AS(controller({"--target-accuracy", "2"}), doctest::Contains("--target-accuracy"), UsageError);
  CHECK_THROWS_WITH_AS(sync({"--weight-decay", "-0.5"}), doctest::Contains("--weight-decay"), UsageError);
  CHECK(sync({"--weight-decay", "-1"}).weight_decay == -1.0f);
}

// Defect 5: --sync-threads -1 became SIZE_MAX threads and the worker hung.
TEST_CASE("flags: --sync-threads is refused outside 1..256") {
  CHECK_THROWS_WITH_AS(worker({"--sync-threads", "-1"}),
                       doctest::Contains("--sync-threads: Value -1 not in range 1 to 256"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--sync-threads", "0"}), doctest::Contains("--sync-threads"), UsageError);
  CHECK_THROWS_WITH_AS(worker({"--sync-threads", "257"}), doctest::Contains("--sync-threads"), UsageError);
  CHECK(worker({"--sync-threads", "256"}).sync_threads == 256);
}

// Defect 6: a batch larger than the (limited) training set read past the end
// of the minibatch order.
TEST_CASE("a batch larger than the training samples is refused naming --batch and the set size") {
  CHECK_THROWS_WITH_AS(check_batch_fits(64, 10), doctest::Contains("--batch 64 is larger than the 10 training samples"),
                       UsageError);
  CHECK_NOTHROW(check_batch_fits(10, 10));
  CHECK_THROWS_WITH_AS(GlobalBatches(all_indices(10), 11, 1), doctest::Contains("--batch 11"), UsageError);
}

TEST_CASE("--help lists every flag with its default") {
  Argv a({"--help"});
  try {
    (void)parse_worker_flags(a.argc(), a.argv(), WorkerDefaults{});
    FAIL("no help");
  } catch (const HelpRequested& help) {
    for (const char* flag : {"--port", "--endpoint", "--data", "--batch", "--lr", "--lr-decay", "--optimizer",
                             "--sync-every", "--alpha", "--seed", "--hidden", "--clip-norm", "--train-limit",
                             "--sync-threads", "--standalone", "--max-minibatches", "--max-time", "--valid-every",
                             "--patience", "--target-accuracy", "--mode"})
      CHECK_MESSAGE(help.text.find(flag) != std::string::npos, flag);
    CHECK(help.text.find("=5567") != std::string::npos);
    CHECK(help.text.find("=64") != std::string::npos);
  }
}
