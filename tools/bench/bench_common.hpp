// What the parts of platoon-bench share: the record of one figure, the
// settings of a run, a controller served on a thread, and small timing
// helpers.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "platoon/lieutenant.hpp"
#include "platoon/soldier.hpp"

namespace platoon::bench {

/// One figure of the table. ratio = value / reference, except for the
/// figures whose ratio is the value itself (control_p99, rate_limited_share).
struct Record {
  std::string figure;
  double value = 0.0;
  double reference = 0.0;
  double ratio = 0.0;
  std::string unit;
  std::string better;                               ///< "lower" or "higher": which way is good
  std::string detail;                               ///< printed under the table
  std::string skipped;                              ///< non-empty: not measured, and why
  nlohmann::json extra = nlohmann::json::object();  ///< more numbers (GB/s, counts)

  static Record skip(std::string figure, std::string why) {
    Record r;
    r.figure = std::move(figure);
    r.skipped = std::move(why);
    return r;
  }
};

/// How one run of platoon-bench measures.
struct Settings {
  bool quick = false;
  std::size_t sync_threads = 1;  ///< Soldier::Options::sync_threads for the easgd_sync figures
  std::size_t chunk_elements = SharedSegment::kDefaultChunkElements;
  std::filesystem::path examples_dir;  ///< holds mlp_worker and mlp_controller
  std::filesystem::path launch_bin;    ///< platoon-launch
  std::filesystem::path data_dir;      ///< Fashion-MNIST
  int mlp_minibatches = 3000;          ///< per worker, end to end
};

/// A controller that answers every user request with a small JSON object
/// and ends the job on "stop". Workers here send no heartbeats, so it never
/// counts them as lost.
class BenchController final : public Lieutenant {
 public:
  BenchController();
  /// With `options` (start from bench_controller_options()).
  explicit BenchController(Lieutenant::Options options);

 protected:
  nlohmann::json handle_control(const nlohmann::json& req, const WorkerInfo& worker,
                                const nlohmann::json& req_info) override;
};

/// A bench controller's options: a job id of its own, no signal handling,
/// workers never counted as lost.
Lieutenant::Options bench_controller_options();

/// Serves a controller on a thread, bound to `endpoint` (empty: a free
/// loopback port); stops and joins it when destroyed (the job's segment is
/// then removed).
class ServedController {
 public:
  explicit ServedController(Lieutenant& controller, const std::string& endpoint = "");
  ~ServedController();
  ServedController(const ServedController&) = delete;
  ServedController& operator=(const ServedController&) = delete;
  [[nodiscard]] const std::string& endpoint() const { return controller_.endpoint(); }

 private:
  Lieutenant& controller_;
  std::thread thread_;
};

/// Options of a bench worker: no heartbeats, bounded waits, errors thrown.
Soldier::Options soldier_options(const std::string& endpoint, std::size_t sync_threads = 1,
                                 std::size_t chunk_elements = SharedSegment::kDefaultChunkElements);

/// The median of `samples` (which it sorts); 0 when empty.
double median(std::vector<double>& samples);
/// The p-th percentile (0..100) of `samples` (which it sorts), nearest rank.
double percentile(std::vector<double>& samples, double p);

/// Spins for `d` of wall time (a stand-in for computing).
void busy_wait(std::chrono::nanoseconds d);

/// Milliseconds between two time points, as a double.
inline double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// allreduce_* and allreduce_busbw_* (the bandwidth is measured with the
/// figure of its size, which must be in `figures` too).
std::vector<Record> bench_allreduce(const Settings& settings, const std::vector<std::string>& figures);
/// The easgd_sync_* figures (sync of 1, 2, 4 workers against the fused loop over private memory).
std::vector<Record> bench_sync(const Settings& settings, const std::vector<std::string>& figures);
/// rate_limited_share.
Record bench_rate_limited(const Settings& settings);
/// A rate-limited figure: `soldier` trains 2 ms minibatches and syncs under
/// RateLimited(0.1); the share of time it spent syncing, against the share
/// with a sync after every minibatch. `setting` describes the sync, for the
/// notes.
Record rate_limited_record(const Settings& settings, Soldier& soldier, const std::string& figure,
                           const std::string& setting);
/// control_p50, control_p99, control_p50_ipc, control_rps_1w, control_rps_8w.
std::vector<Record> bench_control(const Settings& settings, const std::vector<std::string>& figures);
/// remote_sync_*, remote_rps_4w, remote_rate_limited_share: workers syncing
/// over TCP through the parameter server.
std::vector<Record> bench_remote(const Settings& settings, const std::vector<std::string>& figures);
/// mlp_1w, mlp_2w (skipped, with the reason, when the example binaries are missing).
std::vector<Record> bench_end_to_end(const Settings& settings, const std::vector<std::string>& figures);

}  // namespace platoon::bench
