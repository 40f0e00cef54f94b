// The all-reduce figures: platoon's shared-memory collective in worker
// processes (forked from this one, each attached at its rank as a Soldier's
// group would be) against MPI_Allreduce run by `mpirun -np N` on
// platoon-mpi-allreduce, built beside this program, in the same run; and
// its bus bandwidth against a memcpy of the same bytes.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "bench_common.hpp"
#include "platoon/collective/shm_collective.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/process/child_process.hpp"

namespace platoon::bench {

namespace {

namespace fs = std::filesystem;

// A pipe, closed on destruction.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe(fd) != 0) throw ResourceError(str_cat("pipe: ", std::strerror(errno)));
  }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

struct Timing {
  double median_ms = 0.0;
  double min_ms = 0.0;
};

// One rank's loop, in a forked process: attach, then `iterations` timed
// all-reduces of `elements` floats, each after a barrier. Rank 0 writes its
// times (ms) to `out`. Returns the exit code.
int rank_main(const std::string& group, int rank, const ShmObject& slot, std::size_t elements, bool registered,
              int warmup, int iterations, int go_fd, int out_fd) {
  try {
    char go = 0;
    if (!read_all(go_fd, &go, 1) || go != 'g') return 3;
    auto c = ShmCollective::attach(group, rank, slot, std::chrono::seconds(30));
    std::vector<float> own;
    std::span<float> data;
    if (registered) {
      data = c->registered_buffer().first(elements);
    } else {
      own.resize(elements);
      data = own;
    }
    std::fill(data.begin(), data.end(), 1e-3f * static_cast<float>(rank + 1));
    std::vector<double> times;
    for (int i = 0; i < warmup + iterations; ++i) {
      c->barrier();
      const auto t0 = std::chrono::steady_clock::now();
      c->all_reduce(data, ReduceOp::sum);
      const auto t1 = std::chrono::steady_clock::now();
      if (i >= warmup) times.push_back(ms_between(t0, t1));
    }
    if (rank == 0 && !write_all(out_fd, times.data(), times.size() * sizeof(double))) return 4;
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce bench rank %d: %s\n", rank, e.what());
    return 5;
  }
}

// platoon's all-reduce with `ranks` processes; rank 0's times.
Timing time_platoon(int ranks, std::size_t elements, bool registered, int warmup, int iterations) {
  const std::string prefix = str_cat("platoon-bench-", ::getpid(), "-", elements, registered ? "r" : "u");
  const ProcessId self = ProcessId::self();
  std::vector<ShmObject> slots;
  for (int r = 0; r < ranks; ++r) slots.push_back(create_slot(str_cat(prefix, ".slot-", r), elements, self));
  struct Cleanup {
    std::vector<ShmObject>& slots;
    std::string group;
    ~Cleanup() {
      GroupSegment::remove(group);
      for (const ShmObject& s : slots) ShmObject::remove(s.name());
    }
  } cleanup{slots, prefix + ".group-0"};

  Pipe go, out, ids;
  std::vector<pid_t> children;
  for (int r = 0; r < ranks; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw ResourceError(str_cat("fork: ", std::strerror(errno)));
    if (pid == 0) {
      const ProcessId me = ProcessId::self();
      write_all(ids.fd[1], &me, sizeof me);
      std::_Exit(rank_main(cleanup.group, r, slots[r], elements, registered, warmup, iterations, go.fd[0],
                           out.fd[1]));
    }
    children.push_back(pid);
  }
  // Children still running when this returns early (an error) are killed.
  struct Reaper {
    std::vector<pid_t>& children;
    ~Reaper() {
      for (const pid_t pid : children) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{children};
  // Members in rank order: match each reported identity to its child.
  std::vector<GroupMember> members(ranks);
  for (int k = 0; k < ranks; ++k) {
    ProcessId id;
    if (!read_all(ids.fd[0], &id, sizeof id)) throw Error("a bench rank did not report its process");
    const auto it = std::find(children.begin(), children.end(), static_cast<pid_t>(id.pid));
    if (it == children.end()) throw Error("a bench rank reported an unknown pid");
    const auto r = static_cast<std::size_t>(it - children.begin());
    members[r] = {id, slots[r].name(), elements};
  }
  GroupSegment segment = GroupSegment::create(cleanup.group, "bench", 0, members, self);
  for (int r = 0; r < ranks; ++r) write_all(go.fd[1], "g", 1);

  std::vector<double> times(static_cast<std::size_t>(iterations));
  const bool got = read_all(out.fd[0], times.data(), times.size() * sizeof(double));
  bool all_ok = got;
  for (const pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) all_ok = false;
  }
  children.clear();  // reaped
  if (!all_ok) throw Error(str_cat("platoon all-reduce bench of ", elements, " floats failed in a rank"));
  Timing t;
  t.min_ms = *std::min_element(times.begin(), times.end());
  t.median_ms = median(times);
  return t;
}

// MPI_Allreduce through `mpirun -np ranks`: nullopt and `why` when Open MPI
// or the reference program is absent; Error when it is there and fails.
std::optional<Timing> time_mpi(const fs::path& program, int ranks, std::size_t elements, int warmup, int iterations,
                               std::string& why) {
  if (!fs::exists(program)) {
    why = str_cat(program.string(), " is missing (Open MPI's libopenmpi-dev was absent at build time)");
    return std::nullopt;
  }
  const char* mpirun = "/usr/bin/mpirun";
  if (!fs::exists(mpirun)) {
    why = "mpirun is missing (install Debian's openmpi-bin)";
    return std::nullopt;
  }
  const fs::path out = fs::temp_directory_path() / str_cat("platoon-bench-mpi-", ::getpid(), ".json");
  FILE* f = std::fopen(out.c_str(), "w");
  if (f == nullptr) throw ResourceError(str_cat("cannot create ", out.string()));
  // Root may run MPI programs only when it says so.
  std::vector<std::string> argv{mpirun, "-np", std::to_string(ranks)};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  for (const std::string& a : {program.string(), std::to_string(elements), std::to_string(warmup),
                               std::to_string(iterations)})
    argv.push_back(a);
  ChildProcess child = ChildProcess::spawn(argv, {-1, fileno(f), -1});
  std::fclose(f);
  const auto status = child.wait_for(std::chrono::minutes(3));
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ignored;
  fs::remove(out, ignored);
  // Open MPI is there: a failure now is an error, not a reason to skip.
  if (!status || !status->success())
    throw Error(str_cat("mpirun -np ", ranks, " ", program.filename().string(), " ",
                        status ? status->describe() : std::string("did not end within 3 minutes")));
  try {
    const nlohmann::json j = nlohmann::json::parse(text.str());
    std::vector<double> times = j.at("ms").get<std::vector<double>>();
    if (times.empty()) throw Error("no samples");
    Timing t;
    t.min_ms = *std::min_element(times.begin(), times.end());
    t.median_ms = median(times);
    return t;
  } catch (const std::exception& e) {
    throw Error(str_cat("the MPI reference printed no timings (", text.str(), "): ", e.what()));
  }
}

// The median time of a memcpy of `bytes` (source and destination touched first).
double time_memcpy_ms(std::size_t bytes, int iterations) {
  std::vector<char> from(bytes, 1), to(bytes, 0);
  std::vector<double> times;
  for (int i = 0; i < iterations + 1; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(to.data(), from.data(), bytes);
    const auto t1 = std::chrono::steady_clock::now();
    if (i > 0) times.push_back(ms_between(t0, t1));
  }
  if (to[bytes / 2] != 1) throw InternalError("memcpy reference copied nothing");
  return median(times);
}

std::string fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof text, v >= 100 ? "%.0f" : "%.3g", v);
  return text;
}

std::string elements_name(std::size_t n) {
  if (n % 1'000'000 == 0) return str_cat(n / 1'000'000, "M");
  if (n % 1024 == 0) return str_cat(n / 1024, "K");
  return std::to_string(n);
}

}  // namespace

std::vector<Record> bench_allreduce(const Settings& settings, const std::vector<std::string>& figures) {
  constexpr int kRanks = 2;
  std::vector<Record> out;
  const fs::path mpi_program = fs::read_symlink("/proc/self/exe").parent_path() / "platoon-mpi-allreduce";
  for (const std::string& figure : figures) {
    if (figure.starts_with("allreduce_busbw_")) continue;  // measured with its size below
    const std::string size_name = figure.substr(std::string("allreduce_").size(),
                                                figure.find("_2w") - std::string("allreduce_").size());
    const std::size_t elements = size_name == "25M" ? 25'000'000 : size_name == "1M" ? 1'000'000 : 4096;
    const bool large = elements >= 10'000'000;
    const int iterations = settings.quick ? 5 : large ? 15 : elements >= 1'000'000 ? 60 : 2000;
    const int warmup = settings.quick ? 2 : large ? 3 : 20;

    const Timing ours = time_platoon(kRanks, elements, /*registered=*/true, warmup, iterations);
    const Timing copied = time_platoon(kRanks, elements, /*registered=*/false, warmup, iterations);
    std::string why;
    const std::optional<Timing> mpi = time_mpi(mpi_program, kRanks, elements, warmup, iterations, why);
    const double bytes = static_cast<double>(elements) * sizeof(float);
    const double busbw = bytes * 2.0 * (kRanks - 1) / kRanks / (ours.median_ms * 1e-3) / 1e9;

    Record r;
    r.figure = figure;
    r.value = ours.median_ms;
    r.unit = "ms";
    r.better = "lower";
    r.extra = {{"elements", elements},
               {"ranks", kRanks},
               {"min_ms", ours.min_ms},
               {"copied_in_out_ms", copied.median_ms},
               {"busbw_GBps", busbw},
               {"iterations", iterations}};
    if (mpi) {
      r.reference = mpi->median_ms;
      r.ratio = ours.median_ms / mpi->median_ms;
      r.extra["mpi_min_ms"] = mpi->min_ms;
      r.detail = str_cat(elements_name(elements), " floats, ", kRanks, " processes, median of ", iterations,
                         ": registered buffer ", fixed(ours.median_ms), " ms, copied in and out ",
                         fixed(copied.median_ms), " ms, MPI_Allreduce in place ",
                         fixed(mpi->median_ms), " ms: ", fixed(mpi->median_ms / ours.median_ms),
                         "x faster");
      out.push_back(r);
    } else {
      out.push_back(Record::skip(figure, why));
    }

    if (const std::string bw = "allreduce_busbw_" + size_name + "_2w";
        std::find(figures.begin(), figures.end(), bw) != figures.end()) {
      const double memcpy_ms = time_memcpy_ms(static_cast<std::size_t>(bytes), settings.quick ? 3 : 10);
      Record b;
      b.figure = bw;
      b.value = busbw;
      b.reference = bytes / (memcpy_ms * 1e-3) / 1e9;
      b.ratio = b.value / b.reference;
      b.unit = "GB/s";
      b.better = "higher";
      b.detail = str_cat("bus bandwidth bytes*2(n-1)/n/time of the registered all-reduce against a memcpy of the "
                         "same bytes (",
                         fixed(b.reference), " GB/s)");
      out.push_back(b);
    }
  }
  return out;
}

}  // namespace platoon::bench
