// The examples' training schedule and flags: pure logic, no sockets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "flags.hpp"
#include "platoon/common/error.hpp"
#include "schedule.hpp"

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

TEST_CASE("flags: values, switches and clear errors") {
  const char* argv[] = {"prog", "--batch", "32", "--standalone", "--lr", "0.5"};
  Flags flags(6, const_cast<char**>(argv), {"--batch", "--lr", "--data"}, {"--standalone"});
  CHECK(flags.get_int("--batch", 1) == 32);
  CHECK(flags.get_double("--lr", 1) == 0.5);
  CHECK(flags.has("--standalone"));
  CHECK(flags.get("--data", "dir") == "dir");
  const char* bad[] = {"prog", "--bogus", "1"};
  CHECK_THROWS_WITH_AS(Flags(3, const_cast<char**>(bad), {"--batch"}, {}), doctest::Contains("unknown flag '--bogus'"),
                       platoon::Error);
  const char* missing[] = {"prog", "--batch"};
  CHECK_THROWS_WITH_AS(Flags(2, const_cast<char**>(missing), {"--batch"}, {}), doctest::Contains("needs a value"),
                       platoon::Error);
  const char* word[] = {"prog", "--batch", "many"};
  Flags w(3, const_cast<char**>(word), {"--batch"}, {});
  CHECK_THROWS_WITH_AS((void)w.get_int("--batch", 1), doctest::Contains("--batch needs an integer"), platoon::Error);
}
