// End to end on the MLP example: samples per second of one worker and of two
// workers run by platoon-launch, against the same program training alone.
//
// The contract with the example programs:
//   mlp_worker --standalone --data DIR --max-minibatches M   trains alone
//   mlp_worker --data DIR --sync-every 10 --port P            a worker of a job
//   mlp_controller --port P --max-minibatches M               ends the job after M minibatches in all
// and every worker ends its output with a line "throughput <samples per second>".
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <random>
#include <regex>

#include "bench_common.hpp"
#include "platoon/child_process.hpp"
#include "platoon/error.hpp"
#include "platoon/log.hpp"

namespace platoon::bench {

namespace fs = std::filesystem;

namespace {

constexpr auto kRunTimeout = std::chrono::seconds(300);

// A folder of its own under the system's temporary folder, removed with its
// contents when destroyed.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device random;
    path_ = fs::temp_directory_path() / str_cat("platoon-bench-", ::getpid(), "-", std::hex, random());
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// An open file descriptor, closed when destroyed.
class Fd {
 public:
  explicit Fd(const fs::path& path) : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw ResourceError(str_cat("cannot create ", path));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

// The last "throughput <x>" in a file, if any.
std::optional<double> last_throughput(const fs::path& file) {
  const std::regex line_re(R"(throughput\s+([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)\s*$)");
  std::ifstream in(file);
  std::optional<double> found;
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, line_re)) found = std::stod(m[1].str());
  return found;
}

std::string tail_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) out += "\n    " + lines[i];
  return out;
}

// Runs `argv` with its output in `out`, waits for it (bounded), and fails
// with the end of its output unless it succeeds.
void run_to_end(const std::vector<std::string>& argv, const fs::path& out) {
  Fd fd(out);
  ChildProcess child = ChildProcess::spawn(argv, ProcessIo{-1, fd.get(), fd.get()}, {}, SpawnOptions{true});
  const auto status = child.wait_for(kRunTimeout);
  if (!status)
    throw TimeoutError(str_cat(argv[0], " did not end within ", kRunTimeout.count(), " s; output:", tail_of(out)));
  if (!status->success()) throw Error(str_cat(argv[0], " ", status->describe(), "; output:", tail_of(out)));
}

double standalone_throughput(const Settings& s, const fs::path& worker, const ScratchDir& scratch) {
  const fs::path out = scratch.path() / "standalone.log";
  run_to_end({worker.string(), "--standalone", "--data", s.data_dir.string(), "--max-minibatches",
              std::to_string(s.mlp_minibatches)},
             out);
  const auto tp = last_throughput(out);
  if (!tp) throw Error(str_cat("mlp_worker --standalone printed no 'throughput' line; output:", tail_of(out)));
  return *tp;
}

// The throughput of each worker of a job of `workers` workers.
std::vector<double> job_throughputs(const Settings& s, const fs::path& worker, const fs::path& controller, int workers,
                                    const ScratchDir& scratch) {
  const fs::path log_dir = scratch.path() / str_cat("job-", workers, "w");
  const int total = s.mlp_minibatches * workers;  // every worker trains about as long as the standalone run
  run_to_end({s.launch_bin.string(), "--workers", std::to_string(workers), "--log-dir", log_dir.string(),
              "--controller", str_cat(controller.string(), " --max-minibatches ", total), "--worker",
              str_cat(worker.string(), " --data ", s.data_dir.string(), " --sync-every 10")},
             scratch.path() / str_cat("launch-", workers, "w.log"));
  std::vector<fs::path> runs;
  for (const auto& entry : fs::directory_iterator(log_dir))
    if (entry.is_directory()) runs.push_back(entry.path());
  if (runs.size() != 1) throw Error(str_cat("expected one run folder in ", log_dir, ", found ", runs.size()));
  std::vector<double> tps;
  for (int i = 0; i < workers; ++i) {
    const fs::path log = runs.front() / str_cat("worker-", i, ".log");
    const auto tp = last_throughput(log);
    if (!tp) throw Error(str_cat(log, " has no 'throughput' line:", tail_of(log)));
    tps.push_back(*tp);
  }
  return tps;
}

}  // namespace

std::vector<Record> bench_end_to_end(const Settings& settings, const std::vector<std::string>& figures) {
  const fs::path worker = settings.examples_dir / "mlp_worker";
  const fs::path controller = settings.examples_dir / "mlp_controller";
  std::string missing;
  for (const fs::path& p : {worker, controller, settings.launch_bin})
    if (::access(p.c_str(), X_OK) != 0) missing += str_cat(missing.empty() ? "" : ", ", p.lexically_normal().string());
  if (missing.empty() && !fs::is_directory(settings.data_dir))
    missing = str_cat("data folder ", settings.data_dir.string());
  std::vector<Record> records;
  if (!missing.empty()) {
    for (const auto& f : figures) records.push_back(Record::skip(f, str_cat("pending the examples: no ", missing)));
    return records;
  }

  ScratchDir scratch;
  for (const auto& f : figures) {
    const int workers = f == "mlp_1w" ? 1 : 2;
    // A fresh reference right before each job: both see about the same load of the machine.
    const double alone = standalone_throughput(settings, worker, scratch);
    const std::vector<double> tps = job_throughputs(settings, worker, controller, workers, scratch);
    double sum = 0.0;
    for (double t : tps) sum += t;
    Record r;
    r.figure = f;
    r.value = sum;
    r.reference = alone;
    r.ratio = sum / alone;
    r.unit = "samples/s";
    r.better = workers == 1 ? "higher (>= 0.98)" : "higher (>= 1.85)";
    r.extra = {{"workers", workers}, {"worker_throughputs", tps}, {"minibatches_per_worker", settings.mlp_minibatches}};
    r.detail = str_cat("mlp_worker, ", workers, " worker", workers > 1 ? "s" : "",
                       " under platoon-launch, sync every 10 minibatches, sum of the workers' throughputs; "
                       "reference: mlp_worker --standalone, run just before");
    records.push_back(r);
  }
  return records;
}

}  // namespace platoon::bench
