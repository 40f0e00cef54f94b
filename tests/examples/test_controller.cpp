// The examples' controller over its real socket.
#include <doctest/doctest.h>

#include <chrono>
#include <future>

#include "example_controller.hpp"

using namespace platoon::examples;

TEST_CASE("--max-time ends the job even when no worker ever asks") {
  ScheduleOptions schedule;
  schedule.max_seconds = 0.3;
  platoon::Lieutenant::Options options;
  options.handle_signals = false;
  options.tick = std::chrono::milliseconds(20);
  ExampleController controller(options, schedule);
  controller.init_control(0);
  auto served = std::async(std::launch::async, [&] { controller.serve(); });
  // No worker joins: only the controller's own clock can end the job. The
  // bound is generous; the budget is 0.3 s.
  const bool ended = served.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  if (!ended) controller.stop();
  CHECK(ended);
  served.get();
  CHECK(controller.job_ending());
}
