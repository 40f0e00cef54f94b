#include "bench_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "platoon/common/log.hpp"

namespace platoon::bench {

Lieutenant::Options bench_controller_options() {
  Lieutenant::Options options;
  std::random_device random;  // each scenario is a job of its own, with its own segment
  options.job_id = str_cat("bench-", ::getpid(), "-", std::hex, random());
  options.handle_signals = false;  // served on a thread of this process
  options.tick = std::chrono::milliseconds(20);
  // Bench workers send no heartbeats and may stay silent through a long
  // measurement: never count them as lost.
  options.worker_timeout = std::chrono::minutes(30);
  return options;
}

BenchController::BenchController() : Lieutenant(bench_controller_options()) {}
BenchController::BenchController(Lieutenant::Options options) : Lieutenant(std::move(options)) {}

nlohmann::json BenchController::handle_control(const nlohmann::json& req, const WorkerInfo& worker,
                                               const nlohmann::json&) {
  if (req == "stop") end_job();
  return {{"ok", true}, {"worker", worker.id}};
}

ServedController::ServedController(Lieutenant& controller, const std::string& endpoint) : controller_(controller) {
  if (endpoint.empty())
    controller_.init_control(0);
  else
    controller_.init_control(endpoint);
  thread_ = std::thread([this] {
    try {
      controller_.serve();
    } catch (const std::exception& e) {
      Logger("bench").error("the bench controller stopped: ", e.what());
    }
  });
}

ServedController::~ServedController() {
  controller_.stop();
  if (thread_.joinable()) thread_.join();
}

Soldier::Options soldier_options(const std::string& endpoint, std::size_t sync_threads, std::size_t chunk_elements) {
  Soldier::Options options;
  options.endpoint = endpoint;
  options.timeout = std::chrono::seconds(10);
  options.lock_timeout = std::chrono::seconds(30);
  options.params_timeout = std::chrono::seconds(30);
  options.heartbeat_interval = std::chrono::milliseconds(0);  // quiet: nothing but what is measured
  options.on_controller_lost = Soldier::Options::OnControllerLost::throw_error;
  options.sync_threads = sync_threads;
  options.chunk_elements = chunk_elements;
  return options;
}

double median(std::vector<double>& samples) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  return n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

double percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(samples.size())));
  return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

void busy_wait(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace platoon::bench
