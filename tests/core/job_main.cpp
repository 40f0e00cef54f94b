// A small platoon job for the multi-process tests: one binary, two roles.
//
//   platoon_test_job controller --port-file F --workers N --steps K --result R
//                    [--checkpoint P --checkpoint-ms M] [--resume P] [--worker-timeout-ms M]
//                    [--reclaim-dead 1]   (off by default: tests run in parallel and
//                                          must not take each other's dead segments)
//   platoon_test_job worker --endpoint E --index I --size S --tau T --alpha A
//                    [--chunk C] [--hang-in-sync MARKER] [--step-ms M] [--silent]
//                    [--sync-after F]    waits (at most 60 s) until F exists before its first sync
//                    [--sync-marker F]   writes F just before every sync_params()
//                    [--linger-ms M]     stays registered M ms after its report
//                    [--report-marker F] writes F once its report is sent
//   (either role) --usr1-handler 1   installs a SIGUSR1 handler (no SA_RESTART), as
//                                    profilers and language runtimes do
//   Workers on other hosts (the parameter server):
//   controller [--bind E]            the control endpoint (default loopback, a free port)
//   either     [--port P]            as platoon-launch appends it: the loopback port (the
//                                    worker's --endpoint, when given, wins)
//              [--param-server E]    serve remote workers' syncs at E
//              [--server-keys F --allowed-key K]   CURVE: F from CurveKeyPair::save, K a worker's public key
//   worker     [--transport automatic|shared_memory|tcp] [--rule easgd|asgd]
//              [--unit-steps 1]      adds 1.0 to every value at each step instead of g_I
//              [--server-public-key K --client-keys F]   CURVE
//   A worker's report carries "remote": whether it synced over TCP.
//   platoon_test_job keygen --out F  writes a CURVE key pair to F and prints its public key
//
// Each worker adds g_I[j] = 0.001 * (I + 1) * (j % 7 + 1) to its values at
// every step and syncs with EASGD every T steps. EASGD conserves
// center + sum of locals, so whatever the order of syncs, at the end
//   center[j] + sum_I local_I[j] = (N + 1) * 1.0 + K * sum_I g_I[j]
// (every value starts at 1.0: the first worker's initial value). The
// controller writes the center and the reported locals to R for the test.
#include <signal.h>
#include <unistd.h>

#include <csignal>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "platoon/channel/control_client.hpp"
#include "platoon/common/error.hpp"
#include "platoon/lieutenant.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/soldier.hpp"

using nlohmann::json;

namespace {

std::map<std::string, std::string> parse_flags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  return flags;
}

class TestController : public platoon::Lieutenant {
 public:
  TestController(Options options, int workers, int steps, std::string result)
      : Lieutenant(std::move(options)), workers_(workers), steps_(steps), result_(std::move(result)) {}

 protected:
  json handle_control(const json& req, const platoon::WorkerInfo& worker, const json& req_info) override {
    if (req == "ready") {
      ++ready_;
      return "ok";
    }
    if (req == "next") {
      if (ready_ < workers_) return "wait";  // no sync before everyone attached
      if (given_[worker.id] < steps_) {
        ++given_[worker.id];
        return "train";
      }
      ++stopped_;
      maybe_end();
      return "stop";
    }
    if (req == "report") {
      reports_.push_back(req_info);
      return "ok";
    }
    throw std::runtime_error("unknown request " + req.dump());
  }

  void on_worker_lost(const platoon::WorkerInfo& worker, const std::string& reason) override {
    Lieutenant::on_worker_lost(worker, reason);
    ++lost_;
    ++ready_;  // nobody waits for it any more
    maybe_end();
    if (job_ending() && workers().empty()) write_result();
  }

  void on_worker_left(const platoon::WorkerInfo&) override {
    if (job_ending() && workers().empty()) write_result();
  }

 private:
  void maybe_end() {
    if (stopped_ + lost_ >= workers_) end_job();
  }
  void write_result() {
    const std::string name = platoon::SharedSegment::name_for_job(job_id());
    const platoon::SegmentInfo info = platoon::SharedSegment::inspect(name);
    json out = {{"lost", lost_}, {"reports", reports_}};
    if (info.layout) {
      auto segment = platoon::SharedSegment::attach(name, *info.layout, std::chrono::seconds(5));
      auto guard = segment.lock_all(std::chrono::seconds(5), log());
      out["center"] = std::vector<float>(segment.values().begin(), segment.values().end());
    }
    std::ofstream(result_) << out.dump();
  }

  int workers_, steps_;
  std::string result_;
  int ready_ = 0, stopped_ = 0, lost_ = 0;
  std::map<int, int> given_;
  json reports_ = json::array();
};

// EASGD that, on its second sync, announces itself through a marker file and
// then hangs inside apply() with a chunk lock held, to be killed there.
class HangingRule : public platoon::SyncRule {
 public:
  explicit HangingRule(std::string marker) : inner_(0.5f), marker_(std::move(marker)) {}
  std::string describe() const override { return "EASGD that hangs in its second sync"; }
  void begin_sync() override {
    ++syncs_;
    inner_.begin_sync();
  }
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override {
    inner_.apply(local, central, offset);
    if (syncs_ == 2 && offset > 0) {
      std::ofstream(marker_) << ::getpid();
      std::this_thread::sleep_for(std::chrono::seconds(60));
    }
  }

 private:
  platoon::EASGD inner_;
  std::string marker_;
  int syncs_ = 0;
};

int run_controller(const std::map<std::string, std::string>& flags) {
  platoon::Lieutenant::Options options;
  options.tick = std::chrono::milliseconds(20);
  options.reclaim_dead_segments = flags.contains("--reclaim-dead");
  if (flags.contains("--checkpoint")) {
    options.checkpoint_path = flags.at("--checkpoint");
    options.checkpoint_interval = std::chrono::milliseconds(std::stoi(flags.at("--checkpoint-ms")));
  }
  if (flags.contains("--resume")) options.resume_path = flags.at("--resume");
  if (flags.contains("--worker-timeout-ms"))
    options.worker_timeout = std::chrono::milliseconds(std::stoi(flags.at("--worker-timeout-ms")));
  if (flags.contains("--param-server")) options.param_server_endpoint = flags.at("--param-server");
  if (flags.contains("--server-keys")) {
    options.curve.server = platoon::CurveKeyPair::load(flags.at("--server-keys"));
    options.curve.allowed_client_public_keys = {flags.at("--allowed-key")};
  }
  TestController controller(options, std::stoi(flags.at("--workers")), std::stoi(flags.at("--steps")),
                            flags.at("--result"));
  if (flags.contains("--bind"))
    controller.init_control(flags.at("--bind"));
  else if (flags.contains("--port"))  // as platoon-launch appends it
    controller.init_control(std::stoi(flags.at("--port")));
  else
    controller.init_control(0);
  const std::string port_file = flags.at("--port-file");
  std::ofstream(port_file + ".tmp") << controller.endpoint();
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  controller.serve();
  return 0;
}

int run_worker(const std::map<std::string, std::string>& flags) {
  platoon::Soldier::Options options;
  options.endpoint = flags.contains("--endpoint") ? flags.at("--endpoint")
                                                  : platoon::loopback_endpoint(std::stoi(flags.at("--port")));
  options.timeout = std::chrono::seconds(3);
  options.heartbeat_timeout = std::chrono::seconds(1);
  options.lock_timeout = std::chrono::seconds(30);
  if (flags.contains("--chunk")) options.chunk_elements = std::stoul(flags.at("--chunk"));
  if (flags.contains("--transport")) {
    const std::string t = flags.at("--transport");
    using Transport = platoon::Soldier::Options::Transport;
    options.transport = t == "tcp" ? Transport::tcp : t == "shared_memory" ? Transport::shared_memory : Transport::automatic;
  }
  if (flags.contains("--server-public-key")) {
    options.curve.server_public_key = flags.at("--server-public-key");
    options.curve.client = platoon::CurveKeyPair::load(flags.at("--client-keys"));
  }
  const bool unit_steps = flags.contains("--unit-steps");
  const int index = std::stoi(flags.at("--index"));
  const std::size_t size = std::stoul(flags.at("--size"));
  const int tau = std::stoi(flags.at("--tau"));
  if (flags.contains("--heartbeat-ms")) options.heartbeat_interval = std::chrono::milliseconds(std::stoi(flags.at("--heartbeat-ms")));
  const int step_ms = flags.contains("--step-ms") ? std::stoi(flags.at("--step-ms")) : 0;
  platoon::Soldier soldier(options);
  if (flags.contains("--silent")) {  // registered, then says nothing (but heartbeats)
    std::this_thread::sleep_for(std::chrono::seconds(60));
    return 0;
  }
  // Only the first worker's initial values may reach the center.
  std::vector<float> x(size, soldier.first() ? 1.0f : 100.0f + float(index));
  std::unique_ptr<platoon::SyncRule> rule;
  if (flags.contains("--hang-in-sync")) rule = std::make_unique<HangingRule>(flags.at("--hang-in-sync"));
  else if (flags.contains("--rule") && flags.at("--rule") == "asgd") rule = std::make_unique<platoon::ASGD>();
  else rule = std::make_unique<platoon::EASGD>(std::stof(flags.at("--alpha")));
  soldier.init_shared_params({{"x", x.data(), {size}}}, std::move(rule));
  soldier.send_req("ready");
  int step = 0;
  while (true) {
    const json what = soldier.send_req("next");
    if (what == "wait") {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (what != "train") break;
    for (std::size_t j = 0; j < size; ++j) x[j] += unit_steps ? 1.0f : 0.001f * float(index + 1) * float(j % 7 + 1);
    if (step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    if (++step % tau == 0) {
      if (flags.contains("--sync-after")) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!std::filesystem::exists(flags.at("--sync-after")) && std::chrono::steady_clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (flags.contains("--sync-marker")) std::ofstream(flags.at("--sync-marker")) << step;
      soldier.sync_params();
    }
  }
  soldier.sync_params();
  soldier.send_req("report", {{"index", index}, {"local", x}, {"remote", soldier.remote()}});
  if (flags.contains("--report-marker")) std::ofstream(flags.at("--report-marker")) << step;
  // Still registered (and heartbeating), so the job goes on meanwhile.
  if (flags.contains("--linger-ms"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(flags.at("--linger-ms"))));
  soldier.close();
  return 0;
}

}  // namespace

volatile std::sig_atomic_t usr1_count = 0;
void count_usr1(int) { usr1_count = usr1_count + 1; }

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: platoon_test_job controller|worker --flag value ...\n";
    return 2;
  }
  try {
    const auto flags = parse_flags(argc, argv);
    if (flags.contains("--usr1-handler")) {
      struct sigaction action {};
      action.sa_handler = count_usr1;
      sigemptyset(&action.sa_mask);
      ::sigaction(SIGUSR1, &action, nullptr);
    }
    const std::string role = argv[1];
    if (role == "keygen") {  // keygen --out F: writes a CURVE key pair to F, prints its public key
      const platoon::CurveKeyPair keys = platoon::CurveKeyPair::generate();
      keys.save(flags.at("--out"));
      std::cout << keys.public_key << "\n";
      return 0;
    }
    if (role == "controller") return run_controller(flags);
    if (role == "worker") return run_worker(flags);
    std::cerr << "unknown role " << role << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "platoon_test_job " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
