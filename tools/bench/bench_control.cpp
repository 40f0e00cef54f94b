// The control-channel figures: Soldier::send_req round trips to a served
// controller, against a bare ZeroMQ REQ -> ROUTER echo of the same request
// bytes, with 1 and 8 client threads.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <exception>
#include <functional>
#include <optional>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bench_common.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/channel/job_key.hpp"
#include "platoon/channel/protocol.hpp"

namespace platoon::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Load {
  std::vector<double> latencies_us;  // of every timed request, every client
  double wall_s = 0.0;               // summed over the blocks: first client's start to last one's end
  std::size_t requests = 0;
  [[nodiscard]] double rps() const { return double(requests) / wall_s; }
};

// One client: set up (may throw), then one round trip (may throw).
struct Client {
  std::function<void()> round_trip;
};

// Two systems measured the same way, taking turns so that both see the same
// load of the machine: `clients` threads each build one client of each
// system and make `warmup` untimed round trips with each; then, block after
// block, all time `per_block` round trips of system 0, then all of system 1.
std::array<Load, 2> run_loads(int clients, int warmup, int blocks, int per_block,
                              const std::array<std::function<Client()>, 2>& make) {
  std::barrier barrier(clients);
  const auto n = static_cast<std::size_t>(clients);
  const auto nb = static_cast<std::size_t>(blocks);
  using Times = std::vector<std::vector<Clock::time_point>>;  // [block][client]
  std::array<std::vector<std::vector<double>>, 2> latencies;  // [system][client]
  std::array<Times, 2> starts, ends;                          // [system]
  for (std::size_t sys = 0; sys < 2; ++sys) {
    latencies[sys].resize(n);
    starts[sys].assign(nb, std::vector<Clock::time_point>(n));
    ends[sys].assign(nb, std::vector<Clock::time_point>(n));
  }
  std::vector<std::exception_ptr> errors(n);
  auto body = [&](std::size_t c) {
    std::array<std::optional<Client>, 2> client;
    try {
      for (std::size_t sys = 0; sys < 2; ++sys) {
        client[sys].emplace(make[sys]());
        for (int i = 0; i < warmup; ++i) client[sys]->round_trip();
      }
    } catch (...) {
      errors[c] = std::current_exception();
    }
    for (std::size_t b = 0; b < nb; ++b) {
      for (std::size_t sys = 0; sys < 2; ++sys) {
        barrier.arrive_and_wait();
        starts[sys][b][c] = Clock::now();
        if (!errors[c]) {
          try {
            for (int i = 0; i < per_block; ++i) {
              const auto t0 = Clock::now();
              client[sys]->round_trip();
              latencies[sys][c].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
          } catch (...) {
            errors[c] = std::current_exception();
          }
        }
        ends[sys][b][c] = Clock::now();
      }
    }
    barrier.arrive_and_wait();  // no client leaves while the others are measured
  };
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < n; ++c) threads.emplace_back(body, c);
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  std::array<Load, 2> loads;
  for (std::size_t sys = 0; sys < 2; ++sys) {
    for (const auto& l : latencies[sys])
      loads[sys].latencies_us.insert(loads[sys].latencies_us.end(), l.begin(), l.end());
    loads[sys].requests = loads[sys].latencies_us.size();
    for (std::size_t b = 0; b < nb; ++b)
      loads[sys].wall_s +=
          std::chrono::duration<double>(*std::max_element(ends[sys][b].begin(), ends[sys][b].end()) -
                                        *std::min_element(starts[sys][b].begin(), starts[sys][b].end()))
              .count();
  }
  return loads;
}

// A ROUTER on a thread that sends every request back as it came.
class EchoRouter {
 public:
  EchoRouter() : router_(context_, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoRouter() {
    stop_.store(true);
    thread_.join();
  }
  EchoRouter(const EchoRouter&) = delete;
  EchoRouter& operator=(const EchoRouter&) = delete;
  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }

 private:
  void serve() {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop_.load()) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      std::vector<zmq::message_t> frames;
      while (zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        zmq::send_multipart(router_, frames);
        frames.clear();
      }
    }
  }

  zmq::context_t context_;
  zmq::socket_t router_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The bare echo (system 0) and Soldier::send_req to a served BenchController
// (system 1), measured in turns.
std::array<Load, 2> bare_and_ours(int clients, int warmup, int blocks, int per_block) {
  EchoRouter echo;
  BenchController controller;
  ServedController served(controller);
  const std::string payload = protocol::encode_request(0, "bench");  // the bytes a Soldier sends
  // Each bare client has a context (an I/O thread) of its own, as each
  // Soldier's ControlClient has: the same threads as separate processes.
  struct BareReq {
    zmq::context_t context{1};
    zmq::socket_t socket{context, zmq::socket_type::req};
  };
  auto bare = [&] {
    auto req = std::make_shared<BareReq>();
    req->socket.set(zmq::sockopt::linger, 0);
    req->socket.set(zmq::sockopt::rcvtimeo, 10000);  // bounded: a lost reply is an error, not a hang
    req->socket.connect(echo.endpoint());
    return Client{[req, payload, endpoint = echo.endpoint()] {
      req->socket.send(zmq::buffer(payload), zmq::send_flags::none);
      zmq::message_t reply;
      if (!req->socket.recv(reply)) throw TimeoutError(str_cat("no echo from ", endpoint, " within 10000 ms"));
    }};
  };
  auto ours = [&] {
    auto soldier = std::make_shared<Soldier>(soldier_options(served.endpoint()));
    return Client{[soldier] { (void)soldier->send_req("bench"); }};
  };
  return run_loads(clients, warmup, blocks, per_block, {bare, ours});
}

}  // namespace

std::vector<Record> bench_control(const Settings& settings, const std::vector<std::string>& figures) {
  const bool quick = settings.quick;
  const int warmup = quick ? 50 : 300;
  const int blocks = quick ? 4 : 10;
  const int one = quick ? 100 : 600;  // requests per block of the single client
  const int each = quick ? 15 : 150;  // requests per block of each of 8 clients
  const auto wanted = [&](const char* f) { return std::find(figures.begin(), figures.end(), f) != figures.end(); };
  std::vector<Record> records;

  if (wanted("control_p50") || wanted("control_p99") || wanted("control_rps_1w")) {
    auto [bare, ours] = bare_and_ours(1, warmup, blocks, one);
    const double bare_p50 = percentile(bare.latencies_us, 50), ours_p50 = percentile(ours.latencies_us, 50);
    const double bare_p99 = percentile(bare.latencies_us, 99), ours_p99 = percentile(ours.latencies_us, 99);
    // One record of the single-client run.
    auto record = [&](const char* figure, double value, double reference, double ratio, const char* unit,
                      const char* better, std::string detail) {
      Record r;
      r.figure = figure;
      r.value = value;
      r.reference = reference;
      r.ratio = ratio;
      r.unit = unit;
      r.better = better;
      r.detail = std::move(detail);
      r.extra = {{"requests", ours.requests}, {"clients", 1}};
      records.push_back(r);
    };
    if (wanted("control_p50"))
      record("control_p50", ours_p50, bare_p50, ours_p50 / bare_p50, "us", "lower",
             str_cat("Soldier::send_req round trip, 1 worker, median of ", ours.requests,
                     "; reference: bare REQ->ROUTER echo of the same ", protocol::encode_request(0, "bench").size(),
                     " bytes"));
    if (wanted("control_p99"))
      record("control_p99", ours_p99, bare_p99, ours_p99, "us", "< 1000",
             "99th percentile of the same round trips; ratio = the value itself");
    if (wanted("control_rps_1w"))
      record("control_rps_1w", ours.rps(), bare.rps(), ours.rps() / bare.rps(), "req/s", "higher",
             "round trips per second, 1 client thread, one after the other");
  }
  if (wanted("control_p50_ipc")) {
    // The same Soldier round trip over ipc:// and over loopback TCP, in turns.
    BenchController tcp_controller, ipc_controller;
    ServedController tcp(tcp_controller);
    ServedController ipc(ipc_controller, private_ipc_endpoint(str_cat("bench-", ::getpid())));
    const auto soldier_at = [](const std::string& endpoint) {
      return [endpoint] {
        auto soldier = std::make_shared<Soldier>(soldier_options(endpoint));
        return Client{[soldier] { (void)soldier->send_req("bench"); }};
      };
    };
    auto [over_tcp, over_ipc] = run_loads(1, warmup, blocks, one, {soldier_at(tcp.endpoint()), soldier_at(ipc.endpoint())});
    Record r;
    r.figure = "control_p50_ipc";
    r.value = percentile(over_ipc.latencies_us, 50);
    r.reference = percentile(over_tcp.latencies_us, 50);
    r.ratio = r.value / r.reference;
    r.unit = "us";
    r.better = "lower";
    r.detail = str_cat("Soldier::send_req round trip over ", ipc.endpoint(),
                       " (in the user's 0700 folder), median; reference: the same over loopback TCP (control_p50)");
    r.extra = {{"requests", over_ipc.requests}, {"clients", 1}};
    records.push_back(r);
  }
  if (wanted("control_rps_8w")) {
    auto [bare, ours] = bare_and_ours(8, warmup / 4, blocks, each);
    Record r;
    r.figure = "control_rps_8w";
    r.value = ours.rps();
    r.reference = bare.rps();
    r.ratio = ours.rps() / bare.rps();
    r.unit = "req/s";
    r.better = "higher";
    r.detail = "round trips per second over 8 client threads (8 Soldiers) against one controller thread";
    r.extra = {{"requests", ours.requests},
               {"clients", 8},
               {"p50_us", percentile(ours.latencies_us, 50)},
               {"reference_p50_us", percentile(bare.latencies_us, 50)}};
    records.push_back(r);
  }
  return records;
}

}  // namespace platoon::bench
