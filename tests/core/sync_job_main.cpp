// A small synchronous job for the multi-process tests: one binary, two roles.
//
//   platoon_test_sync_job controller --port-file F --workers N --steps K --result R
//   platoon_test_sync_job worker --endpoint E --rule sgd|momentum|nesterov|adam|adamw
//                         [--batch B] [--dim D] [--step-ms M]
//                         [--stall-at S --marker PATH]   (waits there to be killed)
//                         [--marker-at S --marker PATH]  (announces step S, goes on)
//                         [--misuse]                     (all_reduce before init_group)
//
// The model is least squares, w.x + b ~ y, on a synthetic data set of 503
// samples that every worker computes the same way. Step s trains on the
// global batch of samples (s*B + k) mod 503, k < B; each rank takes its
// batch_slice of it and adds its samples' gradients divided by B, so the
// all-reduced sum is the global batch's mean gradient whatever the number
// of ranks. Each worker starts from values of its own (so that rank 0's
// broadcast shows), reports its final parameters and optimizer state, and
// how it met failures, to the controller, which writes them to R.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "platoon/collective/global_dynamics.hpp"
#include "platoon/common/error.hpp"
#include "platoon/lieutenant.hpp"
#include "platoon/soldier.hpp"
#include "platoon/sync/update_rules.hpp"

using nlohmann::json;

namespace {

constexpr std::size_t kSamples = 503;

std::map<std::string, std::string> parse_flags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
      flags[name] = argv[++i];
    else
      flags[name] = "";
  }
  return flags;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SyncTestController : public platoon::Lieutenant {
 public:
  SyncTestController(int workers, int steps, std::string result)
      : Lieutenant(make_options(workers)), steps_(steps), result_(std::move(result)) {}

 protected:
  json handle_control(const json& req, const platoon::WorkerInfo&, const json& req_info) override {
    if (req == "next") {
      // Rank 0 asks for the whole group, with the step it is at.
      const int step = req_info.value("step", 0);
      ++asked_;
      if (step < steps_) return "train";
      end_job();
      return "stop";
    }
    if (req == "report") {
      reports_.push_back(req_info);
      return "ok";
    }
    throw std::runtime_error("unknown request " + req.dump());
  }

  void on_worker_left(const platoon::WorkerInfo&) override { maybe_write(); }
  void on_worker_lost(const platoon::WorkerInfo& worker, const std::string& reason) override {
    Lieutenant::on_worker_lost(worker, reason);
    ++lost_;
    maybe_write();
  }

 private:
  static Options make_options(int workers) {
    Options options;
    options.tick = std::chrono::milliseconds(20);
    options.worker_timeout = std::chrono::seconds(3);
    options.group_size = workers;
    return options;
  }
  void maybe_write() {
    if (!job_ending() || !workers().empty()) return;
    std::ofstream(result_) << json{{"reports", reports_}, {"lost", lost_}, {"asked", asked_},
                                   {"final_epoch", group_epoch()}}
                                  .dump();
  }

  int steps_;
  std::string result_;
  int asked_ = 0, lost_ = 0;
  json reports_ = json::array();
};

int run_controller(const std::map<std::string, std::string>& flags) {
  SyncTestController controller(std::stoi(flags.at("--workers")), std::stoi(flags.at("--steps")),
                                flags.at("--result"));
  controller.init_control(0);
  const std::string port_file = flags.at("--port-file");
  std::ofstream(port_file + ".tmp") << controller.endpoint();
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  controller.serve();
  return 0;
}

// The synthetic data set: x_i in R^dim, y_i = sum_j c_j x_ij + 0.5 + noise.
struct Data {
  std::size_t dim;
  std::vector<float> x;  // kSamples x dim
  std::vector<float> y;
  explicit Data(std::size_t d) : dim(d), x(kSamples * d), y(kSamples) {
    for (std::size_t i = 0; i < kSamples; ++i) {
      double target = 0.5 + 0.05 * std::cos(static_cast<double>(i));
      for (std::size_t j = 0; j < dim; ++j) {
        const double v = std::sin(0.37 * static_cast<double>(i) + 1.3 * static_cast<double>(j));
        x[i * dim + j] = static_cast<float>(v);
        target += (static_cast<double>(j % 5) - 2.0) * 0.3 * v;
      }
      y[i] = static_cast<float>(target);
    }
  }
};

std::string hex_of(const std::vector<std::span<float>>& buffers) {
  // FNV-1a over the bytes: equal hashes mean bitwise-equal state.
  std::uint64_t hash = 14695981039346656037ull;
  for (const auto& b : buffers)
    for (const float f : b) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(&f);
      for (std::size_t k = 0; k < sizeof f; ++k) {
        hash ^= bytes[k];
        hash *= 1099511628211ull;
      }
    }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

int run_worker(const std::map<std::string, std::string>& flags) {
  // Data: every worker computes the same set.
  const std::size_t dim = flags.contains("--dim") ? std::stoul(flags.at("--dim")) : 37;
  const std::size_t batch = flags.contains("--batch") ? std::stoul(flags.at("--batch")) : 30;
  const Data data(dim);

  // Soldier.
  platoon::Soldier::Options options;
  options.endpoint = flags.at("--endpoint");
  options.timeout = std::chrono::seconds(5);
  options.heartbeat_timeout = std::chrono::seconds(2);
  options.collective_timeout = std::chrono::seconds(4);
  options.group_timeout = std::chrono::seconds(30);
  platoon::Soldier soldier(options);

  if (flags.contains("--misuse")) {
    std::vector<float> v(4, 1.0f);
    try {
      soldier.all_reduce(v);
    } catch (const platoon::Error& e) {
      std::cout << "misuse refused: " << e.what() << std::endl;
      return 0;
    }
    return 1;
  }

  // Model: w (dim) and b, starting from values of this worker's own.
  std::vector<float> params(dim + 1);
  for (std::size_t j = 0; j < params.size(); ++j)
    params[j] = 0.01f * static_cast<float>((soldier.worker_id() + 1) * (j % 7));
  const std::unique_ptr<platoon::UpdateRule> rule = platoon::make_update_rule(flags.at("--rule"), 0.05f);
  rule->attach(params.size());

  // Init: rank 0's parameters, state and progress reach everyone.
  platoon::Soldier::GroupState state{
      {{"w", params.data(), {dim}}, {"b", params.data() + dim, {1}}}, rule->state(), {{"step", 0}}};
  if (!soldier.init_group(state)) return 0;
  json report = {{"worker", soldier.worker_id()},
                 {"first_epoch", soldier.group_position().epoch},
                 {"first_step", state.progress["step"]}};

  const int stall_at = flags.contains("--stall-at") ? std::stoi(flags.at("--stall-at")) : -1;
  const int marker_at = flags.contains("--marker-at") ? std::stoi(flags.at("--marker-at")) : -1;
  const int step_ms = flags.contains("--step-ms") ? std::stoi(flags.at("--step-ms")) : 0;
  json failures = json::array();

  // Loop: the controller decides, through rank 0, for the whole group.
  while (soldier.send_req_collective("next", {{"step", state.progress["step"]}}) == "train") {
    const int step = state.progress["step"].get<int>();
    if (step == marker_at && flags.contains("--marker")) std::ofstream(flags.at("--marker")) << step;
    if (step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));

    // This rank's part of the global batch: gradients divided by the global size.
    const platoon::GroupPosition where = soldier.group_position();
    const platoon::BatchSlice slice = platoon::batch_slice(batch, where.rank, where.size);
    const std::span<float> grad = soldier.gradients();
    std::vector<double> sum(params.size(), 0.0);
    for (std::size_t k = slice.begin; k < slice.begin + slice.count; ++k) {
      const std::size_t i = (static_cast<std::size_t>(step) * batch + k) % kSamples;
      double r = params[dim] - data.y[i];
      for (std::size_t j = 0; j < dim; ++j) r += static_cast<double>(params[j]) * data.x[i * dim + j];
      for (std::size_t j = 0; j < dim; ++j) sum[j] += r * data.x[i * dim + j];
      sum[dim] += r;
    }
    for (std::size_t j = 0; j < params.size(); ++j) grad[j] = static_cast<float>(sum[j] / static_cast<double>(batch));

    if (step == stall_at) {
      std::ofstream(flags.at("--marker")) << ::getpid();
      std::this_thread::sleep_for(std::chrono::seconds(60));  // the test kills it here
    }
    // Sync: one all-reduce of the flat gradient, then the same update everywhere.
    try {
      soldier.all_reduce(grad, platoon::ReduceOp::sum);
    } catch (const platoon::PeerLostError& e) {
      failures.push_back({{"at_unix_ms", unix_ms()}, {"step", step}, {"what", e.what()}});
      if (!soldier.regroup()) break;
      continue;
    }
    rule->step(params, grad);
    state.progress["step"] = step + 1;
  }

  // Close: report, then leave.
  std::vector<std::span<float>> all = rule->state();
  all.insert(all.begin(), std::span<float>(params));
  report["final_step"] = state.progress["step"];
  report["final_epoch"] = soldier.group_position().epoch;
  report["hash"] = hex_of(all);
  report["params"] = params;
  report["failures"] = failures;
  soldier.send_req("report", report);
  soldier.close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: platoon_test_sync_job controller|worker [flags]\n";
    return 2;
  }
  try {
    const auto flags = parse_flags(argc, argv);
    const std::string role = argv[1];
    if (role == "controller") return run_controller(flags);
    if (role == "worker") return run_worker(flags);
    std::cerr << "unknown role " << role << "\n";
    return 2;
  } catch (const platoon::LayoutError& e) {
    std::cerr << "LayoutError: " << e.what() << "\n";
    return 4;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
}
