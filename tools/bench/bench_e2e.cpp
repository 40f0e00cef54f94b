// End to end on the MLP example: samples per second of one worker and of two
// workers run by platoon-launch (EASGD), and of two synchronous workers,
// against the same program training alone.
//
// The contract with the example programs:
//   mlp_worker --standalone --data DIR --max-minibatches M   trains alone
//   mlp_worker --data DIR --sync-every 10 --port P            a worker of a job
//   mlp_worker --mode sync --batch B --data DIR --port P      a synchronous worker (global batch B)
//   mlp_controller --port P --max-minibatches M               ends the job after M minibatches in all
//   mlp_controller --group-size N ...                         for N synchronous workers
// and every worker ends its output with a line "throughput <samples per second>".
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <random>
#include <regex>

#include "bench_common.hpp"
#include "platoon/process/child_process.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

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

// The last number captured by `pattern` in a file, if any.
std::optional<double> last_match(const fs::path& file, const std::regex& pattern) {
  std::ifstream in(file);
  std::optional<double> found;
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, pattern)) found = std::stod(m[1].str());
  return found;
}

// "throughput <samples per second>": the contract's last line of every worker.
std::optional<double> last_throughput(const fs::path& file) {
  return last_match(file, std::regex(R"(throughput\s+([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)\s*$)"));
}

// "trained <n> minibatches (<samples> samples)": optional, for the CPU figures.
std::optional<double> trained_samples(const fs::path& file) {
  return last_match(file, std::regex(R"(trained\s+[0-9]+\s+minibatches\s+\(([0-9]+)\s+samples\))"));
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

// CPU seconds used by this process's reaped children and their reaped
// descendants so far.
double children_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// Runs `argv` with its output in `out`, waits for it (bounded), and fails
// with the end of its output unless it succeeds. Returns the CPU seconds
// it and its descendants used.
double run_to_end(const std::vector<std::string>& argv, const fs::path& out) {
  Fd fd(out);
  const double cpu_before = children_cpu_seconds();
  ChildProcess child = ChildProcess::spawn(argv, ProcessIo{-1, fd.get(), fd.get()}, {}, SpawnOptions{true});
  const auto status = child.wait_for(kRunTimeout);
  if (!status)
    throw TimeoutError(str_cat(argv[0], " did not end within ", kRunTimeout.count(), " s; output:", tail_of(out)));
  if (!status->success()) throw Error(str_cat(argv[0], " ", status->describe(), "; output:", tail_of(out)));
  return children_cpu_seconds() - cpu_before;
}

// What one run (standalone or a job) measured.
struct Run {
  std::vector<double> throughputs;  // one per worker
  double samples = 0.0;             // trained by all workers; 0 when not printed
  double cpu_seconds = 0.0;         // of every process of the run
};

Run standalone(const Settings& s, const fs::path& worker, const ScratchDir& scratch) {
  const fs::path out = scratch.path() / "standalone.log";
  Run run;
  run.cpu_seconds = run_to_end({worker.string(), "--standalone", "--data", s.data_dir.string(), "--max-minibatches",
                                std::to_string(s.mlp_minibatches)},
                               out);
  const auto tp = last_throughput(out);
  if (!tp) throw Error(str_cat("mlp_worker --standalone printed no 'throughput' line; output:", tail_of(out)));
  run.throughputs.push_back(*tp);
  run.samples = trained_samples(out).value_or(0.0);
  return run;
}

// A job of `workers` workers under platoon-launch: EASGD, or synchronous
// (--mode sync, a global batch of 64 per worker, one all-reduce per step).
Run job(const Settings& s, const fs::path& worker, const fs::path& controller, int workers, bool sync,
        const ScratchDir& scratch) {
  const fs::path log_dir = scratch.path() / str_cat(sync ? "sync-" : "job-", workers, "w");
  // Every worker trains about as many 64-sample minibatches as the standalone
  // run: EASGD counts every worker's, sync counts global steps.
  const int total = sync ? s.mlp_minibatches : s.mlp_minibatches * workers;
  const std::string controller_args =
      sync ? str_cat(" --group-size ", workers, " --max-minibatches ", total) : str_cat(" --max-minibatches ", total);
  const std::string worker_args = sync ? str_cat(" --mode sync --batch ", 64 * workers, " --data ", s.data_dir.string())
                                       : str_cat(" --data ", s.data_dir.string(), " --sync-every 10");
  Run run;
  run.cpu_seconds =
      run_to_end({s.launch_bin.string(), "--workers", std::to_string(workers), "--log-dir", log_dir.string(),
                  "--controller", controller.string() + controller_args, "--worker", worker.string() + worker_args},
                 scratch.path() / str_cat(sync ? "sync-" : "launch-", workers, "w.log"));
  std::vector<fs::path> runs;
  for (const auto& entry : fs::directory_iterator(log_dir))
    if (entry.is_directory()) runs.push_back(entry.path());
  if (runs.size() != 1) throw Error(str_cat("expected one run folder in ", log_dir, ", found ", runs.size()));
  bool all_samples = true;
  for (int i = 0; i < workers; ++i) {
    const fs::path log = runs.front() / str_cat("worker-", i, ".log");
    const auto tp = last_throughput(log);
    if (!tp) throw Error(str_cat(log, " has no 'throughput' line:", tail_of(log)));
    run.throughputs.push_back(*tp);
    const auto samples = trained_samples(log);
    all_samples = all_samples && samples.has_value();
    run.samples += samples.value_or(0.0);
  }
  if (!all_samples) run.samples = 0.0;
  return run;
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
    const bool sync = f.starts_with("sync_");
    // A fresh reference right before each job: both see about the same load of the machine.
    const Run alone = standalone(settings, worker, scratch);
    const Run ours = job(settings, worker, controller, workers, sync, scratch);
    double sum = 0.0;
    for (double t : ours.throughputs) sum += t;
    Record r;
    r.figure = f;
    r.value = sum;
    r.reference = alone.throughputs.front();
    r.ratio = r.value / r.reference;
    r.unit = "samples/s";
    r.better = sync ? "higher (>= 1.8)" : workers == 1 ? "higher (>= 0.98)" : "higher (>= 1.85)";
    r.extra = {{"workers", workers},
               {"worker_throughputs", ours.throughputs},
               {"minibatches_per_worker", settings.mlp_minibatches},
               {"cpu_seconds", ours.cpu_seconds},
               {"reference_cpu_seconds", alone.cpu_seconds}};
    r.detail = str_cat("mlp_worker, ", workers, " worker", workers > 1 ? "s" : "", " under platoon-launch, ",
                       sync ? "--mode sync (64 samples per worker per step, one all-reduce of the gradient)"
                            : "sync every 10 minibatches",
                       ", sum of the workers' throughputs; reference: mlp_worker --standalone, run just before");
    // Samples per CPU second (every process of the run, data loading
    // included): the cost of the job's machinery, whatever the load.
    if (ours.samples > 0 && alone.samples > 0 && ours.cpu_seconds > 0 && alone.cpu_seconds > 0) {
      const double ours_per_cpu = ours.samples / ours.cpu_seconds, alone_per_cpu = alone.samples / alone.cpu_seconds;
      r.extra["samples_per_cpu_s"] = ours_per_cpu;
      r.extra["reference_samples_per_cpu_s"] = alone_per_cpu;
      r.detail +=
          str_cat("; samples per CPU second ", static_cast<long>(ours_per_cpu), " vs ",
                  static_cast<long>(alone_per_cpu), " (", static_cast<int>(100 * ours_per_cpu / alone_per_cpu), "%)");
    }
    records.push_back(r);
  }
  return records;
}

}  // namespace platoon::bench
