// platoon-bench: measures platoon against references taken in the same run
// and prints a table (and, with --json, a JSON list of records).
//
//   platoon-bench                       # every figure, about a minute and a half
//   platoon-bench --quick --json q.json # a few seconds: what the test suite runs
//   platoon-bench --only easgd_sync_10M # the figures whose name starts with that
//   platoon-bench --check-json q.json --quick   # every figure present, finite numbers
//
// Every figure is a ratio against a reference measured in the same process,
// at the same time, on the same machine: the absolute numbers move with the
// machine and its load, the ratios much less.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench_common.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace fs = std::filesystem;

namespace platoon::bench {
namespace {

constexpr const char* kDescription = R"(usage: platoon-bench [options]

Measures platoon against references measured in the same run and prints a
table. Figures (ratio = value / reference unless said otherwise):

  allreduce_{25M,1M,4K}_2w    ms per all-reduce (sum, in place) of 25M, 1M, 4096
                              floats by 2 worker processes through the shared-
                              memory collective, from a registered buffer,
                              median; reference: MPI_Allreduce in place, run by
                              mpirun -np 2 on platoon-mpi-allreduce in the same
                              run (skipped, with the reason, without Open MPI).
                              The time with a copy in and out is in the notes.
  allreduce_busbw_{25M,1M}_2w bus bandwidth (bytes * 2(n-1)/n / time, GB/s) of
                              that all-reduce; reference: a memcpy of the same
                              bytes.

  easgd_sync_{1M,10M,50M}_1w  ms per Soldier::sync_params() (EASGD) of 1 worker,
                              median; reference: the same arithmetic as one fused
                              loop over private memory (16 bytes per parameter).
                              GB/s are in the notes and the JSON.
  easgd_sync_50M_1w_2t        the same with Soldier::Options::sync_threads = 2;
                              reference: the fused loop cut over 2 threads.
  easgd_sync_10M_{2,4}w       ms per round in which 2 (4) workers sync at the
                              same time (aggregate rate in the notes); reference:
                              as many threads running the fused loop, each over
                              its own private pair. ratio = our time / theirs.
  control_p50                 us per Soldier::send_req() round trip (1 worker);
                              reference: a bare ZeroMQ REQ->ROUTER echo of the
                              same request bytes.
  control_p99                 99th percentile of the same; ratio = the value
                              itself (it should stay under 1000 us).
  control_rps_1w, _8w         round trips per second with 1 and 8 worker
                              threads; reference: the bare echo, as many clients.
  rate_limited_share          share of wall time spent syncing under
                              RateLimited(0.1) with 2 ms minibatches and 5 ms
                              syncs; reference: the share with a sync after every
                              minibatch; ratio = the value itself (<= 0.1).
  remote_sync_{1M,10M}        ms per Soldier::sync_params() (EASGD) of a worker
                              syncing over loopback TCP through the parameter
                              server, median; reference: a bare ZeroMQ transfer
                              of the same bytes both ways (the same chunks and
                              window, copied from and into float arrays).
  remote_sync_10M_curve       the same with CURVE; reference: the bare transfer,
                              plain.
  remote_rps_4w               syncs/s of 4 remote workers of 1M floats at once,
                              summed; reference: 1 worker alone.
  remote_rate_limited_share   share of wall time a remote worker on a link 5 ms
                              slower per sync spends syncing under
                              RateLimited(0.1), 2 ms minibatches; ratio = the
                              value itself (<= 0.1).
  mlp_1w, mlp_2w              samples/s of the MLP example with 1 (2) workers
                              under platoon-launch, sum over the workers;
                              reference: mlp_worker --standalone. Skipped, with
                              the reason, when the example programs are missing.
  sync_mlp_2w                 the same for 2 workers in --mode sync (64 samples
                              per worker per step, one all-reduce per step).

With --quick (a few seconds) the sync figures are easgd_sync_1M_{1,2,4}w, the
all-reduce figures are allreduce_1M_2w, allreduce_busbw_1M_2w and
allreduce_4K_2w, and the end-to-end figures are skipped.

)";

constexpr const char* kFooter = R"(
Exit status: 0 when every figure selected was measured (or skipped for a
stated reason), 1 otherwise.
)";

struct Cli {
  Settings settings;
  std::string json_out;
  std::string check_json;
  std::vector<std::string> only;
  bool verbose = false;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

Cli parse_cli(int argc, char** argv) {
  Cli cli;
  const fs::path self_dir = fs::read_symlink("/proc/self/exe").parent_path();
  Settings& s = cli.settings;
  s.examples_dir = self_dir / ".." / ".." / "examples" / "mlp";
  s.launch_bin = self_dir / ".." / "launch" / "platoon-launch";
  s.data_dir = "/usr/share/datasets/fashion-mnist";
  std::string examples_dir = s.examples_dir.string(), launch_bin = s.launch_bin.string(),
              data_dir = s.data_dir.string();
  int sync_threads = static_cast<int>(s.sync_threads);
  long long chunk_elements = static_cast<long long>(s.chunk_elements);
  CLI::App app(kDescription, "platoon-bench");
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "this text");
  app.footer(kFooter);
  app.add_flag("--quick", s.quick, "small sizes, few repetitions");
  app.add_option("--json", cli.json_out,
                 "also write the records as a JSON list: {\"figure\",\"value\",\"reference\",\"ratio\",\"unit\","
                 "\"better\",\"detail\", more numbers} or {\"figure\",\"skipped\"}")
      ->type_name("FILE");
  app.add_option("--check-json", cli.check_json,
                 "check that FILE has every figure (of --quick when given) with finite numbers; exit 0 if so, 1 if not")
      ->type_name("FILE");
  app.add_option("--only", cli.only, "run only the figures whose name starts with PREFIX (may be repeated)")
      ->type_name("PREFIX")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--sync-threads", sync_threads, "Soldier::Options::sync_threads for the sync figures")
      ->check(CLI::Range(1, 256));
  app.add_option("--chunk-elements", chunk_elements, "elements per lock of the center")
      ->check(CLI::Range(1LL, 1LL << 40));
  app.add_option("--examples-dir", examples_dir, "where mlp_worker and mlp_controller are");
  app.add_option("--launch", launch_bin, "platoon-launch");
  app.add_option("--data", data_dir, "Fashion-MNIST");
  app.add_option("--mlp-minibatches", s.mlp_minibatches, "minibatches per worker, end to end")
      ->check(CLI::Range(1, 100'000'000));
  app.add_flag("--verbose", cli.verbose,
               "let the library's log lines through to stderr (by default they go to a temporary file, shown on "
               "error)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    std::exit(0);
  } catch (const CLI::ParseError& e) {
    throw UsageError(str_cat(e.what(), " (see --help)"));
  }
  s.examples_dir = examples_dir;
  s.launch_bin = launch_bin;
  s.data_dir = data_dir;
  s.sync_threads = static_cast<std::size_t>(sync_threads);
  s.chunk_elements = static_cast<std::size_t>(chunk_elements);
  return cli;
}

std::vector<std::string> figures_of(bool quick) {
  // clang-format off
  if (quick)
    return {"allreduce_1M_2w", "allreduce_busbw_1M_2w", "allreduce_4K_2w",
            "easgd_sync_1M_1w", "easgd_sync_1M_2w", "easgd_sync_1M_4w",
            "control_p50", "control_p99", "control_p50_ipc", "control_rps_1w", "control_rps_8w",
            "rate_limited_share",
            "remote_sync_1M", "remote_rps_4w", "remote_rate_limited_share",
            "mlp_1w", "mlp_2w", "sync_mlp_2w"};
  return {"allreduce_25M_2w", "allreduce_busbw_25M_2w", "allreduce_1M_2w", "allreduce_4K_2w",
          "easgd_sync_1M_1w", "easgd_sync_10M_1w", "easgd_sync_50M_1w", "easgd_sync_50M_1w_2t",
          "easgd_sync_10M_2w", "easgd_sync_10M_4w",
          "control_p50", "control_p99", "control_p50_ipc", "control_rps_1w", "control_rps_8w",
          "rate_limited_share",
          "remote_sync_10M", "remote_sync_10M_curve", "remote_rps_4w", "remote_rate_limited_share",
          "mlp_1w", "mlp_2w", "sync_mlp_2w"};
  // clang-format on
}

// Figures that may be recorded as skipped: they need programs from elsewhere.
// (the MPI references need Open MPI).
bool may_be_skipped(const std::string& figure) {
  return figure.starts_with("mlp_") || figure.starts_with("sync_mlp_") ||
         (figure.starts_with("allreduce_") && !figure.starts_with("allreduce_busbw_"));
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return str_cat(one, " ", five, " ", fifteen);
}

nlohmann::json to_json(const Record& r) {
  if (!r.skipped.empty()) return {{"figure", r.figure}, {"skipped", r.skipped}};
  nlohmann::json j = {{"figure", r.figure}, {"value", r.value},   {"reference", r.reference}, {"ratio", r.ratio},
                      {"unit", r.unit},     {"better", r.better}, {"detail", r.detail}};
  for (const auto& [key, v] : r.extra.items()) j[key] = v;
  return j;
}

std::string number(double v) {
  std::ostringstream out;
  if (v != 0.0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-2))
    out << std::setprecision(3) << std::scientific << v;
  else
    out << std::setprecision(std::fabs(v) >= 100 ? 0 : 3) << std::fixed << v;
  return out.str();
}

void print_table(std::ostream& out, const std::vector<Record>& records) {
  out << "\nratio = value / reference; for control_p99 and the rate_limited_share figures the ratio is the value itself.\n"
      << "For times (ms, us) lower is better; for rates (req/s, samples/s) higher is better.\n\n";
  out << std::left << std::setw(24) << "figure" << std::right << std::setw(12) << "value"
      << "  " << std::left << std::setw(10) << "unit" << std::right << std::setw(12) << "reference" << std::setw(9)
      << "ratio"
      << "  " << std::left << "better\n";
  for (const Record& r : records) {
    out << std::left << std::setw(24) << r.figure;
    if (!r.skipped.empty()) {
      out << "skipped: " << r.skipped << "\n";
      continue;
    }
    out << std::right << std::setw(12) << number(r.value) << "  " << std::left << std::setw(10) << r.unit << std::right
        << std::setw(12) << number(r.reference) << std::setw(9) << number(r.ratio) << "  " << std::left << r.better
        << "\n";
  }
  out << "\nnotes:\n";
  for (const Record& r : records)
    if (r.skipped.empty() && !r.detail.empty()) out << "  " << r.figure << ": " << r.detail << "\n";
}

// Checks a JSON file written by --json. Returns the problems found.
std::vector<std::string> check_json(const std::string& path, bool quick) {
  std::vector<std::string> problems;
  std::ifstream in(path);
  if (!in) return {str_cat("cannot open ", path)};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return {str_cat(path, " is not JSON: ", e.what())};
  }
  if (!doc.is_array()) return {str_cat(path, " is not a JSON list")};
  for (const std::string& figure : figures_of(quick)) {
    const nlohmann::json* found = nullptr;
    int count = 0;
    for (const auto& r : doc)
      if (r.is_object() && r.value("figure", "") == figure) {
        found = &r;
        ++count;
      }
    if (count != 1) {
      problems.push_back(str_cat(figure, ": ", count, " records, expected 1"));
      continue;
    }
    if (found->contains("skipped")) {
      if (!may_be_skipped(figure))
        problems.push_back(str_cat(figure, ": skipped (", found->dump(), ")"));
      else if (!(*found)["skipped"].is_string() || (*found)["skipped"].get<std::string>().empty())
        problems.push_back(str_cat(figure, ": skipped without a reason"));
      continue;
    }
    for (const char* key : {"value", "reference", "ratio"}) {
      const auto it = found->find(key);
      if (it == found->end() || !it->is_number() || !std::isfinite(it->get<double>()))
        problems.push_back(str_cat(figure, ": '", key, "' is missing or not a finite number"));
    }
    if (!found->contains("unit") || !(*found)["unit"].is_string()) problems.push_back(str_cat(figure, ": no unit"));
  }
  return problems;
}

// Sends the library's log lines (written to stderr) to a file while alive,
// and keeps a handle on the real stderr for this program's own messages.
class QuietStderr {
 public:
  explicit QuietStderr(bool enabled) {
    if (!enabled) return;
    path_ = fs::temp_directory_path() / str_cat("platoon-bench-", ::getpid(), ".log");
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;  // then the log lines just stay on stderr
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~QuietStderr() { restore(false); }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

  /// Puts stderr back; keeps the log file (and says where) if `keep_log`.
  void restore(bool keep_log) {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
    std::error_code ignored;
    if (keep_log)
      std::cerr << "platoon-bench: the library's log lines are in " << path_.string() << "\n";
    else
      fs::remove(path_, ignored);
  }

 private:
  fs::path path_;
  int saved_ = -1;
};

bool selected(const std::string& figure, const std::vector<std::string>& only) {
  if (only.empty()) return true;
  for (const auto& prefix : only)
    if (figure.starts_with(prefix)) return true;
  return false;
}

int run(const Cli& cli) {
  const Settings& s = cli.settings;
  std::vector<std::string> figures;
  for (const auto& f : figures_of(s.quick))
    if (selected(f, cli.only)) figures.push_back(f);
  if (figures.empty()) throw UsageError("--only selects no figure (see --help for the names)");

  std::cout << "platoon-bench" << (s.quick ? " --quick" : "") << ": " << std::thread::hardware_concurrency()
            << " cpus, load average " << load_average() << " at start, " << utc_timestamp() << std::endl;
  QuietStderr quiet(!cli.verbose);
  std::vector<Record> records;
  bool failed = false;
  // Runs one group of figures; a failure is recorded against each of them.
  auto group = [&](const std::vector<std::string>& names, const std::function<std::vector<Record>()>& body) {
    if (names.empty()) return;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      for (Record& r : body()) records.push_back(std::move(r));
    } catch (const std::exception& e) {
      failed = true;
      for (const auto& n : names) records.push_back(Record::skip(n, str_cat("failed: ", e.what())));
    }
    std::cout << "  ran " << names.front() << (names.size() > 1 ? " ..." : "") << " in " << std::fixed
              << std::setprecision(1) << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
              << " s" << std::endl;
  };
  auto starting = [&](const char* prefix) {
    std::vector<std::string> out;
    for (const auto& f : figures)
      if (f.starts_with(prefix)) out.push_back(f);
    return out;
  };

  for (const auto& f : starting("allreduce_")) {
    if (f.starts_with("allreduce_busbw_")) continue;  // measured with the figure of its size
    std::vector<std::string> names{f};
    const std::string bw = "allreduce_busbw_" + f.substr(10);
    if (std::find(figures.begin(), figures.end(), bw) != figures.end()) names.push_back(bw);
    group(names, [&] { return bench_allreduce(s, names); });
  }
  for (const auto& f : starting("easgd_sync_")) group({f}, [&] { return bench_sync(s, {f}); });
  const auto control = starting("control_");
  group(control, [&] { return bench_control(s, control); });
  group(starting("rate_limited_share"), [&] { return std::vector<Record>{bench_rate_limited(s)}; });
  for (const auto& f : starting("remote_")) group({f}, [&] { return bench_remote(s, {f}); });
  auto mlp = starting("mlp_");
  for (const auto& f : starting("sync_mlp_")) mlp.push_back(f);
  if (s.quick) {
    for (const auto& f : mlp) records.push_back(Record::skip(f, "not run with --quick"));
  } else {
    group(mlp, [&] { return bench_end_to_end(s, mlp); });
  }
  quiet.restore(failed);

  print_table(std::cout, records);
  std::cout << "\nload average " << load_average() << " at the end" << std::endl;
  if (!cli.json_out.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const Record& r : records) list.push_back(to_json(r));
    std::ofstream out(cli.json_out);
    out << list.dump(2) << "\n";
    if (!out) throw ResourceError(str_cat("cannot write ", cli.json_out));
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace platoon::bench

int main(int argc, char** argv) {
  using namespace platoon::bench;
  try {
    const Cli cli = parse_cli(argc, argv);
    if (!cli.check_json.empty()) {
      const auto problems = check_json(cli.check_json, cli.settings.quick);
      for (const auto& p : problems) std::cerr << "platoon-bench: " << cli.check_json << ": " << p << "\n";
      if (problems.empty())
        std::cout << cli.check_json << ": every figure" << (cli.settings.quick ? " of --quick" : "")
                  << " is there, with finite numbers\n";
      return problems.empty() ? 0 : 1;
    }
    return run(cli);
  } catch (const UsageError& e) {
    std::cerr << "platoon-bench: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "platoon-bench: error: " << e.what() << "\n";
    return 1;
  }
}
