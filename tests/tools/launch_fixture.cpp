// A small platoon job for the platoon-launch tests and the soak test, built
// on the real Lieutenant and Soldier. One binary, two roles; the launcher
// appends "--port P".
//
//   platoon_launch_fixture controller --workers N [--steps K] [--record FILE]
//                          [--tick-ms T]   (how often it checks on the workers)
//                          [--stop-file F] [--checkpoint FILE [--checkpoint-ms I]]
//                          [--linger-ms L]  (sleeps L ms after the job ended)
//   platoon_launch_fixture worker [--step-ms M] [--record FILE]
//                          [--fail-index I (--exit-code C | --kill-self)]
//                          [--fail-after S] [--fail-once MARKER]
//                          [--size N] [--chunk-elements E] [--sync-every K]
//                          [--batches B] [--quiet] [--fail-at-stop]
//                          [--linger-ms L]  (sleeps L ms after closing)
//   platoon_launch_fixture silent      (records its start, answers nothing,
//                                       sleeps 60 s: a controller that hangs)
//
// The controller answers "next" with "train" K times per registered worker,
// then "stop"; it ends the job once N workers got "stop". With --stop-file it
// answers "train" instead until the file F exists, then "stop" to everyone
// (ending the job at the first "stop"), whatever K. With --checkpoint it saves
// the center to FILE at the end of the job (and every I ms, if given).
//
// A worker (index from PLATOON_WORKER_INDEX) registers, shares a vector of N
// floats (default 16, as a 4x4 matrix; E elements per lock of the center)
// with EASGD, trains until told to stop and closes. Each "train" is B steps
// (default 1); a step adds to at most 4096 evenly spread values, syncs every
// K steps (default 5) and prints one plain line unless --quiet. The worker
// with index I fails after S steps (default 3; 0: right after registering,
// before sharing its parameters): exits with code C (default 1) or raises
// SIGKILL on itself; with --fail-once it does so only when MARKER does not
// exist yet (and creates it). With --fail-at-stop it fails when told to stop
// instead (the job is ending then), unless it failed before.
//
// --record appends one line per event, each with one write(2):
//   controller-start pid=P ticks=T
//   controller job <job id> segment <segment name>
//   controller port <port>
//   controller end
//   worker <index> start params_ready=<true|false> pid=P ticks=T run_dir=<PLATOON_RUN_DIR>
//   worker <index> joined id=<worker id> pid=P   (its parameters are shared)
//   silent-start pid=P ticks=T
//   worker <index> fail
//   worker <index> done
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "platoon/channel/control_client.hpp"
#include "platoon/lieutenant.hpp"
#include "platoon/process/process.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/soldier.hpp"

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using Flags = std::map<std::string, std::string>;

// "--name value" pairs after the role; flags with no value map to "".
Flags parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 2; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--kill-self" || name == "--quiet" || name == "--fail-at-stop") flags[name] = "";
    else if (i + 1 < argc) flags[name] = argv[++i];
  }
  return flags;
}

std::string flag(const Flags& flags, const std::string& name, const std::string& fallback) {
  const auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

void record(const Flags& flags, const std::string& line) {
  const std::string path = flag(flags, "--record", "");
  if (path.empty()) return;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string text = line + "\n";
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
}

std::string identity() {
  const platoon::ProcessId self = platoon::ProcessId::self();
  return platoon::str_cat("pid=", self.pid, " ticks=", self.start_ticks);
}

class FixtureController : public platoon::Lieutenant {
 public:
  explicit FixtureController(const Flags& flags)
      : Lieutenant(make_options(flags)), workers_(std::stoi(flag(flags, "--workers", "1"))),
        steps_(std::stoi(flag(flags, "--steps", "20"))), stop_file_(flag(flags, "--stop-file", "")) {}

 protected:
  json handle_control(const json& req, const platoon::WorkerInfo& worker, const json&) override {
    if (req != "next") throw std::runtime_error("unknown request " + req.dump());
    if (!stop_file_.empty()) {
      if (!std::filesystem::exists(stop_file_)) return "train";
      end_job();
      return "stop";
    }
    if (given_[worker.id] < steps_) {
      ++given_[worker.id];
      return "train";
    }
    stopped_.insert(worker.id);
    if (static_cast<int>(stopped_.size()) >= workers_) end_job();
    return "stop";
  }

 private:
  static Options make_options(const Flags& flags) {
    Options options;
    options.tick = std::chrono::milliseconds(std::stoi(flag(flags, "--tick-ms", "20")));
    options.checkpoint_path = flag(flags, "--checkpoint", "");
    // Without --checkpoint-ms: at the end of the job only (in practice).
    options.checkpoint_interval = std::chrono::milliseconds(std::stoll(flag(flags, "--checkpoint-ms", "86400000")));
    return options;
  }
  int workers_, steps_;
  std::string stop_file_;
  std::map<int, int> given_;
  std::set<int> stopped_;
};

int run_controller(const Flags& flags) {
  record(flags, "controller-start " + identity());
  FixtureController controller(flags);
  controller.init_control(std::stoi(flags.at("--port")));
  record(flags, platoon::str_cat("controller job ", controller.job_id(), " segment ",
                                 platoon::SharedSegment::name_for_job(controller.job_id())));
  record(flags, platoon::str_cat("controller port ", controller.port()));
  controller.serve();
  record(flags, "controller end");
  std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(flag(flags, "--linger-ms", "0"))));
  return 0;
}

int run_worker(const Flags& flags) {
  const char* index_text = std::getenv("PLATOON_WORKER_INDEX");
  if (index_text == nullptr) throw std::runtime_error("PLATOON_WORKER_INDEX is not set");
  const int index = std::stoi(index_text);
  const std::string endpoint = platoon::loopback_endpoint(std::stoi(flags.at("--port")));
  {
    platoon::ControlClient client(endpoint, 5s);
    const bool ready = client.request("fixture", "platoon-status")["params_ready"].get<bool>();
    const char* run_dir = std::getenv("PLATOON_RUN_DIR");
    record(flags, platoon::str_cat("worker ", index, " start params_ready=", ready ? "true" : "false", " ",
                                   identity(), " run_dir=", run_dir ? run_dir : ""));
  }
  const bool fails = flag(flags, "--fail-index", "-1") == std::to_string(index);
  const int fail_after = std::stoi(flag(flags, "--fail-after", "3"));
  const std::string fail_once = flag(flags, "--fail-once", "");
  const auto step_time = std::chrono::milliseconds(std::stoi(flag(flags, "--step-ms", "0")));
  const auto size = static_cast<std::size_t>(std::stoull(flag(flags, "--size", "16")));
  const int sync_every = std::stoi(flag(flags, "--sync-every", "5"));
  const bool quiet = flags.contains("--quiet");
  const int batches = std::stoi(flag(flags, "--batches", "1"));

  platoon::Soldier::Options options;
  options.endpoint = endpoint;
  options.timeout = 10s;
  options.params_timeout = 10s;
  options.lock_timeout = 10s;
  if (flags.contains("--chunk-elements")) options.chunk_elements = std::stoull(flags.at("--chunk-elements"));
  platoon::Soldier soldier(options);
  const auto fail_now = [&] {
    if (!fail_once.empty()) std::ofstream(fail_once) << index;
    record(flags, platoon::str_cat("worker ", index, " fail"));
    std::cerr << "worker " << index << " fails on purpose" << std::endl;
    if (flags.contains("--kill-self")) ::raise(SIGKILL);
    ::_exit(std::stoi(flag(flags, "--exit-code", "1")));
  };
  const bool fail_this_run = fails && (fail_once.empty() || !std::filesystem::exists(fail_once));
  if (fail_this_run && fail_after == 0) fail_now();  // before sharing the parameters
  std::vector<float> x(size, soldier.first() ? 1.0f : 0.0f);
  const std::vector<std::size_t> shape = size == 16 ? std::vector<std::size_t>{4, 4} : std::vector<std::size_t>{size};
  soldier.init_shared_params({{"w", x.data(), shape}}, std::make_unique<platoon::EASGD>(0.5f));
  record(flags, platoon::str_cat("worker ", index, " joined id=", soldier.worker_id(), " pid=", ::getpid()));
  const std::size_t stride = std::max<std::size_t>(1, size / 4096);  // a minibatch stays tiny
  int step = 0;
  while (soldier.send_req("next") == "train") {
    for (int batch = 0; batch < batches; ++batch) {
      ++step;
      for (std::size_t j = 0; j < x.size(); j += stride) x[j] += 0.01f * static_cast<float>(index + 1);
      // A plain line: the launcher stamps it.
      if (!quiet) std::cout << "worker " << index << " step " << step << std::endl;
      if (step % sync_every == 0) soldier.sync_params();
      if (fail_this_run && step == fail_after) fail_now();
      if (step_time.count() > 0) std::this_thread::sleep_for(step_time);
    }
  }
  if (fail_this_run && flags.contains("--fail-at-stop")) fail_now();
  soldier.sync_params();
  soldier.close();
  record(flags, platoon::str_cat("worker ", index, " done"));
  std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(flag(flags, "--linger-ms", "0"))));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: platoon_launch_fixture controller|worker --flag value ...\n";
    return 64;
  }
  const std::string role = argv[1];
  try {
    const Flags flags = parse_flags(argc, argv);
    if (role == "controller") return run_controller(flags);
    if (role == "worker") return run_worker(flags);
    if (role == "silent") {
      record(flags, "silent-start " + identity());
      std::this_thread::sleep_for(60s);
      return 0;
    }
    std::cerr << "unknown role " << role << "\n";
    return 64;
  } catch (const std::exception& e) {
    std::cerr << "platoon_launch_fixture " << role << ": " << e.what() << std::endl;
    return 1;
  }
}
