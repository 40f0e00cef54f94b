// platoon-launch's supervision: starting the job's processes in order,
// watching them and the signals, restarting workers, and ending the job.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launch_support.hpp"
#include "logs.hpp"
#include "options.hpp"
#include "platoon/channel/control_client.hpp"
#include "platoon/channel/job_key.hpp"
#include "platoon/channel/protocol.hpp"
#include "platoon/channel/security.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/common/log.hpp"
#include "platoon/process/child_process.hpp"
#include "platoon/process/process.hpp"
#include "platoon/shm/shared_segment.hpp"

namespace platoon::launch {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// How long stopped processes get between SIGTERM and SIGKILL.
constexpr auto kStopGrace = 10s;
/// The bound on one "platoon-status" request.
constexpr auto kStatusTryTimeout = 250ms;
/// Between two "platoon-status" requests while waiting for params_ready.
constexpr auto kStatusInterval = 20ms;
/// How long the controller may take to notice that worker 0 died, before
/// worker 0 is restarted anyway.
constexpr auto kForgetTimeout = 10s;
/// The longest sleep of the supervision loop (children and signals wake it).
constexpr auto kLoopTick = 200ms;

/// A free TCP port on the loopback interface, found by binding port 0. Another
/// process may take it before the controller binds it; the controller then
/// fails to start and says so.
int free_loopback_port();

/// Who holds TCP `port` on the loopback interface: "" when it is free, else
/// "pid N (name)" for each process found listening on it (from /proc), or
/// "another process" when the holder cannot be seen (another user's).
std::string port_holder(int port);

/// "SIGTERM" for SIGTERM, "signal N" for a number without a name.
std::string signal_name(int signo);

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD for as long as it lives and
/// reads them through a signalfd. SIGPIPE is ignored, so that a closed stdout
/// makes writes fail instead of killing the launcher; the children inherit
/// that (SpawnOptions::inherit_sigpipe), so that they outlive a closed pipe
/// to a killed launcher. Children start with every signal unblocked
/// (ChildProcess::spawn).
class SignalWatch {
 public:
  SignalWatch() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&set, s);
    if (sigprocmask(SIG_BLOCK, &set, &previous_) != 0)
      throw ResourceError(str_cat("cannot block signals: ", std::strerror(errno)));
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &previous_sigpipe_);
    fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) {
      const int error = errno;
      sigaction(SIGPIPE, &previous_sigpipe_, nullptr);
      sigprocmask(SIG_SETMASK, &previous_, nullptr);
      throw ResourceError(str_cat("cannot create a signalfd: ", std::strerror(error)));
    }
  }
  ~SignalWatch() {
    ::close(fd_);
    sigaction(SIGPIPE, &previous_sigpipe_, nullptr);
    sigprocmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  /// The next pending signal, or 0 when there is none.
  [[nodiscard]] int next() const {
    signalfd_siginfo info{};
    if (::read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
    return 0;
  }

 private:
  int fd_ = -1;
  sigset_t previous_{};
  struct sigaction previous_sigpipe_ {};
};

/// One process of the job.
struct Member {
  std::string name;  // "controller", "worker-0", ...
  int index = -1;    // worker index; -1 for the controller
  std::vector<std::string> argv;
  std::vector<std::string> env;
  ChildProcess child;
  std::unique_ptr<Pipe> pipe;
  bool running = false;

  [[nodiscard]] std::string who() const { return str_cat(name, " (pid ", child.pid(), ")"); }
};

enum class Phase {
  starting,         // waiting for the controller to answer
  params,           // worker 0 runs; waiting for params_ready
  running,          // every worker started
  controller_done,  // the controller ended well; waiting for the workers
};

class Launcher {
 public:
  Launcher(Options options, int port, fs::path run_dir, const SignalWatch& signals, Output& output,
           const Logger& log)
      : options_(std::move(options)), port_(port), run_dir_(std::move(run_dir)), signals_(signals),
        output_(output), log_(log) {}

  int run() {
    log_.info("run folder ", run_dir_.string());
    const std::string endpoint = loopback_endpoint(port_);
    controller_.name = "controller";
    controller_.argv = with_port(options_.controller, port_);
    // The controller ends the job, as on SIGTERM, once this launcher is gone.
    controller_.env = {str_cat("PLATOON_RUN_DIR=", run_dir_.string()),
                       str_cat("PLATOON_LAUNCHER_PROCESS=", ProcessId::self().to_string())};
    workers_.resize(static_cast<std::size_t>(options_.workers));
    for (int i = 0; i < options_.workers; ++i) {
      Member& w = workers_[static_cast<std::size_t>(i)];
      w.name = str_cat("worker-", i);
      w.index = i;
      w.argv = with_port(options_.worker, port_);
      // The name stays when the worker is restarted under a new id: its log
      // lines say "worker <id> (worker-<i>)" and go to worker-<i>.log.
      w.env = {str_cat("PLATOON_RUN_DIR=", run_dir_.string()), str_cat("PLATOON_WORKER_INDEX=", i),
               str_cat("PLATOON_WORKER_NAME=", w.name)};
    }

    // Workers on other hosts: the controller also listens on --address,
    // with CURVE, and every worker (local ones too: one socket serves both
    // endpoints) holds the worker key.
    CurveClientKeys launcher_keys;
    if (options_.remote_workers > 0) {
      try {
        const CurveKeyPair server = CurveKeyPair::generate(), worker = CurveKeyPair::generate();
        server.save(run_dir_ / "server.keys");
        worker.save(run_dir_ / "worker.keys");
        launcher_keys = CurveClientKeys{server.public_key, worker};
      } catch (const Error& e) {
        log_.error("cannot make the CURVE keys for --remote-workers: ", e.what());
        return finish(kExitUsage);
      }
      const std::string any_port = str_cat("tcp://", options_.address, ":*");
      controller_.env.insert(controller_.env.end(),
                             {str_cat("PLATOON_REMOTE_ENDPOINT=", any_port), str_cat("PLATOON_PARAM_SERVER=", any_port),
                              str_cat("PLATOON_CURVE_SERVER_KEYS=", (run_dir_ / "server.keys").string()),
                              str_cat("PLATOON_CURVE_ALLOWED_KEYS=", launcher_keys.client.public_key)});
      for (Member& w : workers_)
        w.env.insert(w.env.end(), {str_cat("PLATOON_CURVE_SERVER_PUBLIC_KEY=", launcher_keys.server_public_key),
                                   str_cat("PLATOON_CURVE_CLIENT_KEYS=", (run_dir_ / "worker.keys").string())});
    }

    // 1. The controller, until it answers. A port that is already taken
    // belongs to someone else: its controller would answer in ours' stead.
    if (const std::string holder = port_holder(port_); !holder.empty()) {
      log_.error("port ", port_, " is already in use by ", holder, ": choose another --port (or none for a free one)");
      failure_ = str_cat("port ", port_, " is taken");
      return finish(kExitUsage);
    }
    if (!start(controller_)) return finish(kExitUsage);
    // A worker that starts as the job ends must not wait for a controller
    // that is gone: its Soldier watches this process while it registers.
    const std::string controller_process = ProcessId::of(controller_.child.pid()).to_string();
    for (Member& w : workers_) w.env.push_back(str_cat("PLATOON_CONTROLLER_PROCESS=", controller_process));
    client_.emplace(endpoint, kStatusTryTimeout, launcher_keys);
    const auto start_deadline = Clock::now() + options_.start_timeout;
    nlohmann::json status;
    while (true) {
      if (auto end = step(0ms)) return finish(*end);
      if (auto answer = ask_status()) {
        status = *answer;
        break;
      }
      if (foreign_controller_) return finish(kExitUsage);
      if (ask_failed_) return finish(kExitTimeout);
      if (auto end = step(0ms)) return finish(*end);
      if (Clock::now() >= start_deadline) {
        log_.error(controller_.who(), " did not answer platoon-status on ", endpoint, " within ",
                   seconds_text(options_.start_timeout));
        return finish(kExitTimeout);
      }
    }
    job_id_ = status.value("job_id", "");
    segment_ = status.value("segment", "");
    log_.info(controller_.who(), " answers on ", endpoint, ": job ", status.value("job_id", "?"),
              ", shared-memory segment ", segment_.empty() ? "?" : segment_);
    // The workers register with the job key the controller wrote for its
    // endpoint; without it they look for the file themselves.
    try {
      const std::string key = read_job_key(endpoint);
      job_key_ = key;
      for (Member& w : workers_) w.env.push_back(str_cat("PLATOON_JOB_KEY=", key));
    } catch (const ResourceError& e) {
      log_.warn("the workers get no job key from the launcher: ", e.what());
    }

    // 2. Worker 0, until the central parameters exist.
    phase_ = Phase::params;
    if (!start(workers_[0])) return finish(kExitUsage);
    const auto params_deadline = Clock::now() + options_.params_timeout;
    // A synchronous job has no center: its workers may join as soon as
    // worker 0 has asked for its group (the controller says so).
    auto others_may_start = [&] {
      return status.value("params_ready", false) || status.value("workers_may_join", false);
    };
    while (!others_may_start()) {
      if (auto end = step(kStatusInterval)) return finish(*end);
      if (auto answer = ask_status()) status = *answer;
      if (ask_failed_) return finish(kExitTimeout);
      if (others_may_start()) break;
      if (Clock::now() >= params_deadline) {
        log_.error("the central parameters were not created within ", seconds_text(options_.params_timeout),
                   " (worker 0 creates them in init_shared_params)");
        return finish(kExitTimeout);
      }
    }

    // 3. The other workers.
    phase_ = Phase::running;
    if (options_.workers > 1)
      log_.info(status.value("params_ready", false) ? "central parameters are ready" : "worker 0 is in its group",
                ": starting workers 1 to ", options_.workers - 1);
    else
      log_.info(status.value("params_ready", false) ? "central parameters are ready" : "worker 0 is in its group");
    for (std::size_t i = 1; i < workers_.size(); ++i)
      if (!start(workers_[i])) return finish(kExitUsage);
    if (options_.remote_workers > 0) announce_remote_workers(status, launcher_keys);

    // 4. Until the job ends.
    std::optional<Clock::time_point> workers_done_deadline;
    while (true) {
      if (auto end = step(kLoopTick)) return finish(*end);
      const auto running = std::count_if(workers_.begin(), workers_.end(), [](const Member& w) { return w.running; });
      if (phase_ == Phase::controller_done) {
        if (running == 0) {
          log_.info("job finished");
          return finish(kExitFinished);
        }
        if (Clock::now() >= end_deadline_) {
          log_.error(running, " worker(s) still running ", seconds_text(options_.end_grace),
                     " after the controller ended: stopping them");
          failure_ = str_cat(running, " worker(s) did not end in time");
          return finish(kExitTimeout);
        }
      } else if (running == 0) {
        if (!workers_done_deadline) {
          workers_done_deadline = Clock::now() + options_.end_grace;
          log_.info("every worker has finished");
        } else if (Clock::now() >= *workers_done_deadline) {
          log_.error(controller_.who(), " did not end ", seconds_text(options_.end_grace),
                     " after the last worker finished: stopping it");
          failure_ = str_cat(controller_.who(), " did not end in time");
          return finish(kExitTimeout);
        }
      }
    }
  }

 private:
  static std::string seconds_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return str_cat(d.count() / 1000, " s");
    return str_cat(static_cast<double>(d.count()) / 1000.0, " s");
  }

  /// Prints (and writes to <run>/remote-worker.sh) the command that starts
  /// a worker on another host: the worker's command line with the remote
  /// control endpoint, and the keys in its environment.
  void announce_remote_workers(const nlohmann::json& status, const CurveClientKeys& keys) {
    const std::string remote = status.value("remote_endpoint", "");
    if (remote.empty()) {
      log_.error("the controller does not listen for remote workers (it set Lieutenant::Options itself, or is "
                 "not a platoon controller): no command to print for --remote-workers");
      return;
    }
    const fs::path key_file = run_dir_ / "worker.keys";
    std::string command = str_cat("PLATOON_JOB_KEY=", job_key_, " PLATOON_CURVE_SERVER_PUBLIC_KEY=",
                                  shell_quote(keys.server_public_key), " PLATOON_CURVE_CLIENT_KEYS=",
                                  shell_quote(key_file.string()), " PLATOON_WORKER_NAME=remote-$1");
    for (const std::string& word : options_.worker) command += " " + shell_quote(word);
    command += " --endpoint " + shell_quote(remote);
    const fs::path script = run_dir_ / "remote-worker.sh";
    {
      std::ofstream out(script);
      out << "#!/bin/sh\n# Starts worker number $1 (default 0) of this job on another host. It needs "
          << key_file.string() << " there, at the same path, mode 0600.\nset -- \"${1:-0}\"\nexec env " << command
          << "\n";
    }
    fs::permissions(script, fs::perms::owner_all, fs::perm_options::replace);
    log_.info("this job takes ", options_.remote_workers, " worker(s) on other hosts: copy ", key_file.string(),
              " (mode 0600) to each at the same path, then run there ", script.string(), " <n>, that is:\n  ",
              std::regex_replace(command, std::regex("\\$1"), "0"), "\n(parameter server ",
              status.value("param_server", ""), ")");
  }

  /// Starts `m`; on failure logs why and returns false.
  bool start(Member& m) {
    try {
      m.pipe = std::make_unique<Pipe>(output_, m.name);
      output_.open(m.name);
      const int fd = m.pipe->open();
      // The child's own log file is named, for the lines it writes once
      // this launcher (and so the pipe) is gone.
      std::vector<std::string> env = m.env;
      env.push_back(str_cat("PLATOON_LOG_FILE=", (run_dir_ / (m.name + ".log")).string()));
      m.child = ChildProcess::spawn(m.argv, {-1, fd, fd}, env, {.own_process_group = true, .inherit_sigpipe = true});
      m.pipe->close_write_end();
    } catch (const Error& e) {
      log_.error("cannot start ", m.name, ": ", e.what());
      if (m.pipe) m.pipe->close();
      return false;
    }
    m.running = true;
    std::string command;
    for (const std::string& a : m.argv) command += (command.empty() ? "" : " ") + a;
    log_.info("started ", m.who(), ": ", command);
    return true;
  }

  /// One "platoon-status"; nullopt when it timed out. An error reply is
  /// logged and sets ask_failed_.
  std::optional<nlohmann::json> ask_status() {
    try {
      nlohmann::json reply =
          client_->request("platoon-launch", std::string(protocol::kStatus), nullptr, kStatusTryTimeout);
      if (!reply.is_object()) throw ProtocolError(str_cat("the reply is not an object: ", reply.dump()));
      // Only our own controller counts: the same pid as our child, and the
      // same job once we know it. Anything else on the port is another job's.
      const auto pid = json_integer_or<std::int64_t>(reply, "controller_pid", -1);
      const std::string job = reply.value("job_id", "");
      if (pid != controller_.child.pid() || (!job_id_.empty() && job != job_id_)) {
        log_.error("port ", port_, " is answered by another job's controller (pid ", pid, ", job ",
                   job.empty() ? "?" : job, "), not by ", controller_.who(),
                   job_id_.empty() ? "" : str_cat(" of job ", job_id_), ": the port is taken");
        failure_ = str_cat("port ", port_, " belongs to another job");
        foreign_controller_ = true;
        ask_failed_ = true;
        return std::nullopt;
      }
      return reply;
    } catch (const TimeoutError&) {
      return std::nullopt;
    } catch (const Error& e) {
      log_.error(controller_.who(), " answered platoon-status with an error: ", e.what());
      ask_failed_ = true;
      return std::nullopt;
    } catch (const nlohmann::json::exception& e) {
      log_.error(controller_.who(), " answered platoon-status with a malformed reply: ", e.what());
      ask_failed_ = true;
      return std::nullopt;
    }
  }

  std::vector<Member*> members() {
    std::vector<Member*> all{&controller_};
    for (Member& w : workers_) all.push_back(&w);
    return all;
  }

  /// Waits up to `timeout` for output, a signal or a child's end, and handles
  /// what happened. Returns an exit code when the job must end.
  std::optional<int> step(std::chrono::milliseconds timeout) {
    if (auto signo = wait_and_read(timeout)) {
      log_.warn("received ", signal_name(*signo), ": stopping the job");
      interrupted_by_ = *signo;
      return 128 + *signo;
    }
    for (Member* m : members()) {
      if (!m->running) continue;
      if (auto status = reap(*m)) {
        if (auto end = on_exit(*m, *status)) return end;
      }
    }
    return std::nullopt;
  }

  /// Polls the pipes and the signalfd for up to `timeout`; passes on the
  /// output. Returns SIGINT, SIGTERM or SIGHUP when one arrived.
  std::optional<int> wait_and_read(std::chrono::milliseconds timeout) {
    std::vector<pollfd> fds{{signals_.fd(), POLLIN, 0}};
    std::vector<Pipe*> pipes;
    for (Member* m : members())
      if (m->pipe && m->pipe->open_now()) {
        fds.push_back({m->pipe->fd(), POLLIN, 0});
        pipes.push_back(m->pipe.get());
      }
    for (Pipe* p : retired_)
      if (p->open_now()) {
        fds.push_back({p->fd(), POLLIN, 0});
        pipes.push_back(p);
      }
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
    if (n <= 0) return std::nullopt;  // nothing, or EINTR
    for (std::size_t i = 1; i < fds.size(); ++i)
      if (fds[i].revents != 0) pipes[i - 1]->drain();
    std::optional<int> stop_signal;
    if (fds[0].revents != 0)
      while (const int signo = signals_.next())
        if (signo != SIGCHLD && !stop_signal) stop_signal = signo;  // SIGCHLD only wakes us up
    return stop_signal;
  }

  /// Reaps `m` if it has ended: passes on its last output and returns how it
  /// ended.
  std::optional<ExitStatus> reap(Member& m) {
    auto status = m.child.poll();
    if (!status) return std::nullopt;
    m.running = false;
    m.pipe->drain(std::size_t{16} << 20);  // what it wrote before it ended; never waits
    return status;
  }

  /// Decides what an unexpected end means. Returns an exit code when the job
  /// must end.
  std::optional<int> on_exit(Member& m, const ExitStatus& status) {
    const bool is_controller = m.index < 0;
    if (is_controller) {
      if (status.success() && (phase_ == Phase::running)) {
        const bool workers_left =
            std::any_of(workers_.begin(), workers_.end(), [](const Member& w) { return w.running; });
        log_.info(m.who(), " ended: ", status.describe(),
                  workers_left ? str_cat("; waiting up to ", seconds_text(options_.end_grace), " for the workers") : "");
        phase_ = Phase::controller_done;
        end_deadline_ = Clock::now() + options_.end_grace;
        return std::nullopt;
      }
      log_.error(m.who(), " ", status.describe(),
                 phase_ == Phase::starting ? " before answering platoon-status"
                 : phase_ == Phase::params ? " before the central parameters were ready"
                                           : "");
      failure_ = str_cat(m.who(), " ", status.describe());
      return kExitFailed;
    }
    if (status.success()) {
      if (phase_ == Phase::params) {
        log_.error(m.who(), " ", status.describe(), " before the central parameters were created");
        failure_ = str_cat(m.who(), " ended before the central parameters were created");
        return kExitTimeout;
      }
      log_.info(m.who(), " finished: ", status.describe());
      return std::nullopt;
    }
    log_.error(m.who(), " ", status.describe(),
               phase_ == Phase::params ? " before the central parameters were ready" : "");
    if (restarts_used_ < options_.restarts && phase_ == Phase::running) {
      // A worker lost while the job is ending would not be let in again: it
      // is a failure like any other (exit 2), as it is without --restart.
      const auto answer = ask_status();
      if (answer && answer->value("ending", false)) {
        log_.error("not restarting ", m.name, ": the job is ending and lets no new worker in");
        failure_ = str_cat(m.who(), " ", status.describe());
        return kExitFailed;
      }
    }
    if (restarts_used_ < options_.restarts && phase_ != Phase::controller_done) {
      ++restarts_used_;
      log_.info("restarting ", m.name, " (restart ", restarts_used_, " of ", options_.restarts, ")");
      retire_pipe(m);
      if (auto end = clear_group(m)) return end;
      if (phase_ == Phase::params)
        if (auto end = wait_until_controller_forgets_workers()) return end;
      if (!start(m)) return kExitUsage;
      return std::nullopt;
    }
    if (options_.restarts > 0 && phase_ != Phase::controller_done)
      log_.error("no restart left (", options_.restarts, " used)");
    failure_ = str_cat(m.who(), " ", status.describe());
    return kExitFailed;
  }

  /// Before worker 0 is restarted in the params phase: waits (bounded) until
  /// the controller has noticed that the worker it asked to create the
  /// central parameters is gone. A new worker registering before that would
  /// not be asked to create them, and would wait for them in vain. Returns an
  /// exit code if a signal ends the job meanwhile.
  std::optional<int> wait_until_controller_forgets_workers() {
    const auto deadline = Clock::now() + kForgetTimeout;
    while (true) {
      const auto answer = ask_status();
      if (answer && answer->value("workers", nlohmann::json::array()).empty()) return std::nullopt;
      if (ask_failed_ || Clock::now() >= deadline) {
        log_.warn(controller_.who(), " still lists a registered worker after ", seconds_text(kForgetTimeout),
                  "; restarting anyway");
        ask_failed_ = false;
        return std::nullopt;
      }
      if (auto signo = wait_and_read(kStatusInterval)) {
        log_.warn("received ", signal_name(*signo), ": stopping the job");
        interrupted_by_ = *signo;
        return 128 + *signo;
      }
    }
  }

  /// Keeps reading a replaced process's pipe until its end of file (a child
  /// of that process may still hold it).
  void retire_pipe(Member& m) {
    if (m.pipe && m.pipe->open_now()) {
      retired_.push_back(m.pipe.get());
      retired_pipes_.push_back(std::move(m.pipe));
    }
  }

  /// Stops every process still running, and what any member left behind in
  /// its process group (a helper it forked): SIGTERM, then SIGKILL after
  /// kStopGrace or at a second Ctrl-C. Reports how each member ended.
  void stop_all() {
    std::vector<Member*> running;
    for (Member* m : members())
      if (m->running || m->child.group_alive()) running.push_back(m);
    if (running.empty()) return;
    std::string names;
    for (Member* m : running)
      names += (names.empty() ? "" : ", ") + m->who() + (m->running ? "" : " (its process group)");
    log_.info("stopping ", running.size(), " process(es) with SIGTERM: ", names);
    for (Member* m : running) m->child.send_signal(SIGTERM);
    const auto deadline = Clock::now() + kStopGrace;
    bool hurry = false;
    const auto report = [&](Member& m) {
      if (auto status = reap(m)) log_.info(m.who(), " stopped: ", status->describe());
    };
    const auto all_gone = [&] {
      return std::none_of(running.begin(), running.end(), [](Member* m) { return m->child.group_alive(); });
    };
    while (true) {
      for (Member* m : running)
        if (m->running) report(*m);
      if (all_gone()) return;
      if (hurry || Clock::now() >= deadline) break;
      if (auto signo = wait_and_read(50ms)) {
        log_.warn("received ", signal_name(*signo), " while stopping: killing now");
        hurry = true;
      }
    }
    for (Member* m : running)
      if (m->child.group_alive()) {
        log_.warn(m->who(), m->running ? "" : "'s process group", " did not stop",
                  hurry ? "" : str_cat(" within ", seconds_text(kStopGrace)), ": sending SIGKILL");
        m->child.send_signal(SIGKILL);
      }
    for (Member* m : running)
      if (m->running) {
        if (m->child.wait_for(5s)) report(*m);
        else log_.error(m->who(), " survived SIGKILL for 5 s");
      }
    const auto kill_deadline = Clock::now() + 5s;
    while (!all_gone() && Clock::now() < kill_deadline) wait_and_read(20ms);
    for (Member* m : running)
      if (m->child.group_alive()) log_.error("the process group of ", m->who(), " survived SIGKILL for 5 s");
  }

  /// Kills what a member that has ended left in its process group, before a
  /// replacement starts, and waits (bounded) until it is gone. Returns an
  /// exit code if a signal ends the job meanwhile.
  std::optional<int> clear_group(Member& m) {
    if (!m.child.group_alive()) return std::nullopt;
    log_.warn(m.who(), " left processes in its group: sending them SIGKILL");
    m.child.send_signal(SIGKILL);
    const auto deadline = Clock::now() + 5s;
    while (m.child.group_alive() && Clock::now() < deadline)
      if (auto signo = wait_and_read(20ms)) {
        log_.warn("received ", signal_name(*signo), ": stopping the job");
        interrupted_by_ = *signo;
        return 128 + *signo;
      }
    if (m.child.group_alive()) log_.error("the process group of ", m.who(), " survived SIGKILL for 5 s");
    return std::nullopt;
  }

  /// Ends the job with `code`: stops what runs, cleans up after a failure or
  /// an interruption, says what happened.
  int finish(int code) {
    stop_all();
    for (Member* m : members())
      if (m->pipe) m->pipe->drain();
    for (Pipe* p : retired_) p->drain();
    if (code != kExitFinished) {
      // Only our own job's segment, and only once our controller is gone:
      // a live controller (one that survived SIGKILL) still owns it.
      if (controller_.running) {
        if (!segment_.empty())
          log_.warn("keeping shared-memory segment ", segment_, ": ", controller_.who(), " is still alive");
      } else if (segment_.empty()) {
        if (controller_.child.pid() > 0)
          log_.warn("the job's shared-memory segment is unknown (the controller never answered)");
      } else if (SharedSegment::remove(segment_)) {
        log_.info("removed shared-memory segment ", segment_);
      } else {
        log_.info("shared-memory segment ", segment_, " is gone");
      }
    }
    if (interrupted_by_ != 0)
      log_.info("interrupted by ", signal_name(interrupted_by_), ": every process stopped; exit code ", code);
    else if (code == kExitFailed)
      log_.error("job failed: ", failure_, "; exit code ", code);
    else if (code != kExitFinished)
      log_.error("job stopped", failure_.empty() ? "" : str_cat(": ", failure_), "; exit code ", code);
    if (restarts_used_ > 0) log_.info(restarts_used_, " worker restart(s) during the job");
    log_.info("logs are in ", run_dir_.string());
    return code;
  }

  Options options_;
  int port_;
  fs::path run_dir_;
  const SignalWatch& signals_;
  Output& output_;
  const Logger& log_;

  Member controller_;
  std::vector<Member> workers_;
  std::optional<ControlClient> client_;  // asks the controller for platoon-status
  std::string job_key_;                  // what the workers register with
  std::vector<std::unique_ptr<Pipe>> retired_pipes_;
  std::vector<Pipe*> retired_;
  Phase phase_ = Phase::starting;
  Clock::time_point end_deadline_{};
  std::string segment_;
  std::string job_id_;  // our controller's job, from its first answer
  std::string failure_;
  int restarts_used_ = 0;
  int interrupted_by_ = 0;
  bool ask_failed_ = false;
  bool foreign_controller_ = false;  // the port answered for another job
};

}  // namespace platoon::launch
