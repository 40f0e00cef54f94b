// The remote figures: workers syncing over TCP through the controller's
// parameter server, each against a reference measured in the same run.
//
//   remote_sync_{1M,10M}    ms per Soldier::sync_params() (EASGD) of a worker
//                           syncing over loopback TCP; reference: a bare
//                           ZeroMQ transfer of the same bytes both ways
//                           (DEALER to a ROUTER echo, the same chunks and
//                           window, copied in and out of float arrays).
//   remote_sync_10M_curve   the same with CURVE on; reference: the same bare
//                           transfer, plain (so the ratio shows what
//                           encryption and the server cost together).
//   remote_rps_4w           syncs per second of 4 remote workers of 1M
//                           parameters syncing at once, summed; reference: 1
//                           worker alone. ratio = theirs together / one alone.
//   remote_rate_limited_share  the share of wall time a remote worker on a
//                           slow link (5 ms more per sync) spends syncing
//                           under RateLimited(0.1), with 2 ms minibatches;
//                           ratio = the value itself (<= 0.1).
#include <atomic>
#include <cstring>
#include <map>
#include <thread>
#include <zmq.hpp>

#include "bench_common.hpp"
#include "platoon/channel/security.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::bench {

namespace {

using Clock = std::chrono::steady_clock;

// A job with a parameter server on loopback, and its center (of `size`
// floats) created by a shared-memory worker that then stays idle.
class RemoteJob {
 public:
  RemoteJob(std::size_t size, std::size_t chunk_elements, bool curve)
      : controller_(options(curve)), served_(controller_), center_values_(size, 1.0f) {
    Soldier::Options o = soldier_options(served_.endpoint(), 1, chunk_elements);
    o.curve = client_keys();
    creator_.emplace(o);
    creator_->init_shared_params({{"w", center_values_.data(), {size}}}, std::make_unique<EASGD>(0.5f));
  }
  ~RemoteJob() {
    if (creator_) creator_->close();
  }

  /// A worker that syncs over TCP.
  [[nodiscard]] Soldier::Options remote_options() const {
    Soldier::Options o = soldier_options(served_.endpoint());
    o.transport = Soldier::Options::Transport::tcp;
    o.curve = client_keys();
    return o;
  }

 private:
  Lieutenant::Options options(bool curve) {
    Lieutenant::Options o = bench_controller_options();
    o.param_server_endpoint = "tcp://127.0.0.1:*";
    if (curve) {
      server_keys_ = CurveKeyPair::generate();
      worker_keys_ = CurveKeyPair::generate();
      o.curve = CurveServerKeys{server_keys_, {worker_keys_.public_key}};
    }
    return o;
  }
  [[nodiscard]] CurveClientKeys client_keys() const {
    if (server_keys_.public_key.empty()) return {};
    return CurveClientKeys{server_keys_.public_key, worker_keys_};
  }

  CurveKeyPair server_keys_, worker_keys_;
  BenchController controller_;
  ServedController served_;
  std::vector<float> center_values_;
  std::optional<Soldier> creator_;
};

// The reference: a ROUTER that echoes every message back, on a thread.
class EchoServer {
 public:
  EchoServer() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;
  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }

 private:
  void serve() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop_) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      zmq::message_t id, body;
      (void)socket_.recv(id);
      (void)socket_.recv(body);
      socket_.send(id, zmq::send_flags::sndmore);
      socket_.send(body, zmq::send_flags::none);
    }
  }
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The reference: `size` floats out and back through a bare ZeroMQ DEALER
// and a ROUTER echo, in chunks of `chunk` with `window` in flight, copied
// from and into float arrays, as a program sending an array would.
class BareTransfer {
 public:
  BareTransfer(std::size_t size, std::size_t chunk, std::size_t window)
      : socket_(context_, zmq::socket_type::dealer), out_(size, 1.5f), back_(size, 0.0f), chunk_(chunk),
        window_(window) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(echo_.endpoint());
  }
  /// One transfer both ways; its ms.
  double once() {
    const std::size_t size = out_.size(), chunks = (size + chunk_ - 1) / chunk_;
    const auto t0 = Clock::now();
    std::size_t sent = 0, received = 0;
    while (received < chunks) {
      while (sent < chunks && sent - received < window_) {
        const std::size_t n = std::min(chunk_, size - sent * chunk_);
        zmq::message_t m(n * sizeof(float));
        std::memcpy(m.data(), out_.data() + sent * chunk_, n * sizeof(float));
        socket_.send(m, zmq::send_flags::none);
        ++sent;
      }
      zmq::message_t m;
      (void)socket_.recv(m);
      std::memcpy(back_.data() + received * chunk_, m.data(), m.size());
      ++received;
    }
    return ms_between(t0, Clock::now());
  }

 private:
  EchoServer echo_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::vector<float> out_, back_;
  std::size_t chunk_, window_;
};

// remote_sync_*: a remote worker's sync_params() of `size` floats against
// the bare transfer of the same bytes, taking turns, medians of each.
Record sync_record(const std::string& figure, std::size_t size, std::size_t chunk, bool curve, int repetitions) {
  const std::size_t window = Soldier::Options{}.tcp_window;
  BareTransfer bare(size, chunk, window);
  RemoteJob job(size, chunk, curve);
  std::vector<float> params(size, 2.0f);
  Soldier remote(job.remote_options());
  remote.init_shared_params({{"w", params.data(), {size}}}, std::make_unique<EASGD>(0.5f));
  (void)bare.once();  // both connected and warm
  remote.sync_params();
  std::vector<double> ours, theirs;
  for (int r = 0; r < repetitions; ++r) {
    theirs.push_back(bare.once());
    const auto t0 = Clock::now();
    remote.sync_params();
    ours.push_back(ms_between(t0, Clock::now()));
  }
  remote.close();
  Record rec;
  rec.figure = figure;
  rec.reference = median(theirs);
  rec.value = median(ours);
  rec.ratio = rec.value / rec.reference;
  rec.unit = "ms";
  rec.better = "lower";
  const double gbps = 2.0 * double(size) * sizeof(float) / (rec.value * 1e6);
  rec.extra = {{"size", size}, {"chunk_elements", chunk}, {"window", window}, {"curve", curve},
               {"gb_per_s_both_ways", gbps}};
  rec.detail = str_cat(figure, ": ", size, " floats in chunks of ", chunk, ", window ", window,
                       curve ? ", CURVE" : "", ": ", gbps, " GB/s both ways; reference = bare ZeroMQ echo of the same "
                       "bytes (plain), taking turns");
  return rec;
}

// Syncs per second of `workers` remote workers of `size` floats, syncing
// as fast as they can for `duration`, summed.
double remote_syncs_per_s(std::size_t size, int workers, std::chrono::milliseconds duration) {
  RemoteJob job(size, SharedSegment::kDefaultChunkElements, false);
  std::vector<std::vector<float>> params(workers, std::vector<float>(size, 2.0f));
  std::vector<std::unique_ptr<Soldier>> soldiers;
  for (int w = 0; w < workers; ++w) {
    soldiers.push_back(std::make_unique<Soldier>(job.remote_options()));
    soldiers.back()->init_shared_params({{"w", params[w].data(), {size}}}, std::make_unique<EASGD>(0.5f));
  }
  std::atomic<bool> go{false};
  std::vector<long> counts(workers, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      while (!go.load()) std::this_thread::yield();
      const auto end = Clock::now() + duration;
      while (Clock::now() < end) {
        soldiers[w]->sync_params();
        ++counts[w];
      }
    });
  const auto t0 = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& s : soldiers) s->close();
  long total = 0;
  for (long c : counts) total += c;
  return double(total) / seconds;
}

// EASGD behind a slow link: every sync takes `extra` longer.
class SlowLinkRule final : public SyncRule {
 public:
  SlowLinkRule(float alpha, std::chrono::nanoseconds extra) : inner_(alpha), extra_(extra) {}
  [[nodiscard]] std::string describe() const override {
    return str_cat(inner_.describe(), " over a link ", extra_.count() / 1000, " us slower per sync");
  }
  void begin_sync() override {
    inner_.begin_sync();
    std::this_thread::sleep_for(extra_);  // waiting on the network, not computing
  }
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override {
    inner_.apply(local, central, offset);
  }
  [[nodiscard]] std::optional<CenterUpdate> center_update() const override { return inner_.center_update(); }
  void remote_apply(std::span<float> local, std::span<const float> d, std::size_t offset) override {
    inner_.remote_apply(local, d, offset);
  }

 private:
  EASGD inner_;
  std::chrono::nanoseconds extra_;
};

Record remote_rate_limited(const Settings& settings) {
  using namespace std::chrono_literals;
  RemoteJob job(4096, SharedSegment::kDefaultChunkElements, false);
  std::vector<float> params(4096, 2.0f);
  Soldier remote(job.remote_options());
  remote.init_shared_params({{"w", params.data(), {params.size()}}}, std::make_unique<SlowLinkRule>(0.5f, 5ms));
  if (!remote.remote()) throw Error("remote_rate_limited_share: the worker does not sync over TCP");
  Record rec = rate_limited_record(settings, remote, "remote_rate_limited_share",
                                   " over TCP with a link 5 ms slower per sync");
  remote.close();
  return rec;
}

}  // namespace

std::vector<Record> bench_remote(const Settings& settings, const std::vector<std::string>& figures) {
  std::vector<Record> records;
  const int repetitions = settings.quick ? 5 : 15;
  for (const std::string& f : figures) {
    if (f == "remote_sync_1M") records.push_back(sync_record(f, 1u << 20, settings.chunk_elements, false, repetitions));
    if (f == "remote_sync_10M")
      records.push_back(sync_record(f, 10'000'000, settings.chunk_elements, false, repetitions));
    if (f == "remote_sync_10M_curve")
      records.push_back(sync_record(f, 10'000'000, settings.chunk_elements, true, repetitions));
    if (f == "remote_rps_4w") {
      const auto duration = std::chrono::milliseconds(settings.quick ? 400 : 3000);
      const std::size_t size = 1u << 20;
      Record rec;
      rec.figure = f;
      rec.reference = remote_syncs_per_s(size, 1, duration);
      rec.value = remote_syncs_per_s(size, 4, duration);
      rec.ratio = rec.value / rec.reference;
      rec.unit = "syncs/s";
      rec.better = "higher";
      rec.extra = {{"size", size}, {"workers", 4}};
      rec.detail = str_cat("remote_rps_4w: 4 remote workers of ", size, " floats: ", rec.value,
                           " syncs/s together against ", rec.reference, " for one alone");
      records.push_back(rec);
    }
    if (f == "remote_rate_limited_share") records.push_back(remote_rate_limited(settings));
  }
  return records;
}

}  // namespace platoon::bench
