#include "example_controller.hpp"

#include <cstdio>

#include "flags.hpp"
#include "program.hpp"
#include "platoon/channel/protocol.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"

namespace platoon::examples {

using nlohmann::json;

ExampleController::ExampleController(Lieutenant::Options options, ScheduleOptions schedule)
    : Lieutenant(std::move(options)), schedule_(schedule), started_(std::chrono::steady_clock::now()) {}

double ExampleController::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

json ExampleController::handle_control(const json& req, const WorkerInfo& worker, const json& req_info) {
  if (req == "next") {
    // A worker reports the minibatches it trained with its next request:
    // one round trip per batch of work, not two.
    if (req_info.is_object() && req_info.contains("done")) schedule_.trained(json_integer<long>(req_info.at("done")));
    const bool was_stopping = schedule_.stopping();
    const Decision d = schedule_.next(elapsed_seconds());
    if (d.action == Action::stop) {
      if (!was_stopping) log().info("stopping: ", schedule_.stop_reason());
      end_job();
      return {{"action", "stop"}};
    }
    if (d.action == Action::valid) {
      validating_worker_ = worker.id;
      return {{"action", "valid"}};
    }
    return {{"action", "train"}, {"minibatches", d.minibatches}};
  }
  if (!req.is_object()) throw Error(str_cat("unknown request ", protocol::quote(req)));
  if (req.contains("valid_error")) {
    validating_worker_.reset();
    if (req.at("valid_error").is_null()) {  // a synchronous group lost a peer while validating
      schedule_.validation_abandoned();
      return {{"best", false}};
    }
    const double error = req.at("valid_error").get<double>();
    const Validation v = schedule_.validated(error);
    char line[200];
    std::snprintf(line, sizeof line,
                  "validation %d: accuracy %.4f (best %.4f)%s  %.1f s  %ld minibatches  (worker %d)", v.number,
                  1.0 - v.error, 1.0 - v.best, v.improved ? " *" : "  ", elapsed_seconds(),
                  schedule_.minibatches_trained(), worker.id);
    log().info(line);
    return {{"best", v.improved}};
  }
  if (req.contains("finished")) {
    finished_.insert(worker.id);
    // The last worker to finish evaluates the center on the test set: every
    // other worker still in the job has made its final sync by then.
    bool all_finished = true;
    for (const WorkerInfo& w : workers()) all_finished = all_finished && finished_.contains(w.id);
    const bool test = all_finished && !test_assigned_;
    test_assigned_ = test_assigned_ || test;
    return {{"test", test}};
  }
  if (req.contains("test_accuracy")) {
    test_accuracy_ = req.at("test_accuracy").get<double>();
    // Synchronous workers say which parameters they tested.
    const json parameters = req.value("parameters", json());
    if (!parameters.is_null()) test_parameters_ = protocol::quote(parameters, 40);
    char line[200];
    std::snprintf(line, sizeof line, "test accuracy %.4f%s%s%s  %.1f s", *test_accuracy_,
                  test_parameters_.empty() ? "" : " (parameters: ", test_parameters_.c_str(),
                  test_parameters_.empty() ? "" : ")", elapsed_seconds());
    log().info(line);
    return "ok";
  }
  throw Error(str_cat("unknown request ", protocol::quote(req)));
}

void ExampleController::on_worker_lost(const WorkerInfo& worker, const std::string& reason) {
  Lieutenant::on_worker_lost(worker, reason);
  if (validating_worker_ == worker.id) {
    validating_worker_.reset();
    schedule_.validation_abandoned();
  }
}

void ExampleController::on_tick() {
  if (job_ending() || !schedule_.time_spent(elapsed_seconds())) return;
  log().info("stopping: ", schedule_.stop_reason());
  end_job();
}

void ExampleController::log_summary() const {
  char line[300];
  std::snprintf(line, sizeof line, "job over (%s): %ld minibatches in %.1f s, best validation accuracy %.4f",
                schedule_.stop_reason().empty() ? "stopped" : schedule_.stop_reason().c_str(),
                schedule_.minibatches_trained(), elapsed_seconds(), 1.0 - schedule_.best_error());
  log().info(line);
  if (test_accuracy_) {
    std::snprintf(line, sizeof line, "final test accuracy %.4f%s%s%s", *test_accuracy_,
                  test_parameters_.empty() ? "" : " (parameters: ", test_parameters_.c_str(),
                  test_parameters_.empty() ? "" : ")");
    log().info(line);
  }
}

int run_example_controller(int argc, char** argv, const ScheduleOptions& defaults) {
  return run_program("controller", [&] {
    const ControllerFlags flags = parse_controller_flags(argc, argv, defaults);
    const auto milliseconds = [](double seconds) {
      return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    };
    Lieutenant::Options options;
    options.checkpoint_path = flags.checkpoint;
    options.checkpoint_interval = milliseconds(flags.checkpoint_every_seconds);
    options.resume_path = flags.resume;
    options.worker_timeout = milliseconds(flags.worker_timeout_seconds);
    // Synchronous workers (mlp_worker --mode sync): the first epoch of the
    // group forms once this many have joined.
    options.group_size = flags.group_size;
    ExampleController controller(options, flags.schedule);
    if (!flags.endpoint.empty()) controller.init_control(flags.endpoint);
    else controller.init_control(flags.port);
    controller.serve();
    controller.log_summary();
    return 0;
  });
}

}  // namespace platoon::examples
