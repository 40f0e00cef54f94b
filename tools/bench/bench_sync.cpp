// The sync figures: real Soldiers, each on its own thread, attached to a real
// segment served by a controller on a thread of this process, against the
// same arithmetic as one fused loop over private memory.
#include <algorithm>
#include <array>
#include <barrier>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>

#include "bench_common.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"
#include "platoon/sync/sync_policy.hpp"
#include "platoon/sync/sync_rules.hpp"

namespace platoon::bench {

namespace {

using Clock = std::chrono::steady_clock;

// The reference: EASGD's arithmetic in one fused pass over two private
// arrays, 16 bytes per element. Not inlined, so that the compiler cannot
// specialize it for the caller's sizes.
[[gnu::noinline]] void fused_easgd(float* __restrict local, float* __restrict center, std::size_t n, float alpha) {
  for (std::size_t i = 0; i < n; ++i) {
    const float d = alpha * (local[i] - center[i]);
    local[i] -= d;
    center[i] += d;
  }
}

// The fused loop cut in `threads` contiguous parts, run at once.
void fused_easgd_threads(float* local, float* center, std::size_t n, float alpha, std::size_t threads) {
  if (threads <= 1) return fused_easgd(local, center, n, alpha);
  std::vector<std::thread> helpers;
  const std::size_t part = (n + threads - 1) / threads;
  for (std::size_t t = 1; t < threads; ++t) {
    const std::size_t from = std::min(n, t * part), to = std::min(n, from + part);
    helpers.emplace_back([=] { fused_easgd(local + from, center + from, to - from, alpha); });
  }
  fused_easgd(local, center, std::min(n, part), alpha);
  for (auto& h : helpers) h.join();
}

// A buffer of floats aligned to a cache line, as numeric libraries allocate
// them, filled with `value` (so that every page is touched before timing).
class AlignedFloats {
 public:
  AlignedFloats() = default;
  AlignedFloats(std::size_t n, float value)
      : data_(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {
    if (!data_) throw ResourceError(str_cat("cannot allocate ", n, " floats"));
    std::fill_n(data_.get(), n, value);
  }
  [[nodiscard]] float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
};

struct Scenario {
  std::string figure;
  std::size_t params;
  int workers;
  std::size_t sync_threads;
  int reps;
};

// The time one worker spent in one measured phase.
struct Span {
  Clock::time_point start, end;
};

// Per worker: spans[rep][0] the reference, spans[rep][1] ours.
using WorkerSpans = std::vector<std::array<Span, 2>>;

// Runs `s`: every worker, on its own thread, sets up a Soldier and a private
// pair of arrays; then, rep by rep, every worker runs the reference and every
// worker syncs, in turns (each turn starts on a barrier; who goes first
// alternates). Errors are collected, never left to break the barrier.
Record run_scenario(const Scenario& s, const Settings& settings) {
  const float alpha = 0.5f;
  BenchController controller;
  ServedController served(controller);
  std::barrier barrier(s.workers);
  std::vector<WorkerSpans> spans(static_cast<std::size_t>(s.workers), WorkerSpans(static_cast<std::size_t>(s.reps)));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(s.workers));
  std::vector<double> first_sync_ms(static_cast<std::size_t>(s.workers));

  auto worker = [&](int w) {
    std::exception_ptr& error = errors[static_cast<std::size_t>(w)];
    // Every buffer is written before timing, so that no page is touched for the first time then.
    AlignedFloats local, ref_local, ref_center;
    std::optional<Soldier> soldier;
    try {
      local = AlignedFloats(s.params, 1.0f + float(w));
      ref_local = AlignedFloats(s.params, 1.0f + float(w));
      ref_center = AlignedFloats(s.params, 0.5f);
      soldier.emplace(soldier_options(served.endpoint(), s.sync_threads, settings.chunk_elements));
      soldier->init_shared_params({{"w", local.data(), {s.params}}}, std::make_unique<EASGD>(alpha));
      const auto first = Clock::now();
      soldier->sync_params();  // warm: the pages of this mapping, the pool's threads
      first_sync_ms[static_cast<std::size_t>(w)] = ms_between(first, Clock::now());
      fused_easgd_threads(ref_local.data(), ref_center.data(), s.params, alpha, s.sync_threads);
    } catch (...) {
      error = std::current_exception();
    }
    for (int r = 0; r < s.reps; ++r) {
      for (int turn = 0; turn < 2; ++turn) {
        const int which = (r + turn) % 2;  // who goes first alternates: no bias from the order
        barrier.arrive_and_wait();
        Span& span = spans[static_cast<std::size_t>(w)][static_cast<std::size_t>(r)][static_cast<std::size_t>(which)];
        span.start = Clock::now();
        if (!error) {
          try {
            if (which == 0)
              fused_easgd_threads(ref_local.data(), ref_center.data(), s.params, alpha, s.sync_threads);
            else
              soldier->sync_params();
          } catch (...) {
            error = std::current_exception();
          }
        }
        span.end = Clock::now();
      }
    }
    barrier.arrive_and_wait();  // nobody leaves the job while another still syncs
    soldier.reset();
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < s.workers; ++w) threads.emplace_back(worker, w);
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);

  // A phase lasts from the first worker's start to the last worker's end.
  // paired[r]: ours / reference within rep r (the two ran back to back).
  std::vector<double> ours, reference, paired;
  for (int r = 0; r < s.reps; ++r) {
    for (int which = 0; which < 2; ++which) {
      Clock::time_point first = Clock::time_point::max(), last = Clock::time_point::min();
      for (const auto& ws : spans) {
        first = std::min(first, ws[static_cast<std::size_t>(r)][static_cast<std::size_t>(which)].start);
        last = std::max(last, ws[static_cast<std::size_t>(r)][static_cast<std::size_t>(which)].end);
      }
      (which == 0 ? reference : ours).push_back(ms_between(first, last));
    }
    paired.push_back(ours.back() / reference.back());
  }
  const double ours_min = *std::min_element(ours.begin(), ours.end());
  const double ref_min = *std::min_element(reference.begin(), reference.end());
  // A worker's first sync also maps in the center's pages (minor page faults).
  const double first_sync_max = *std::max_element(first_sync_ms.begin(), first_sync_ms.end());
  Record rec;
  rec.figure = s.figure;
  rec.value = median(ours);
  rec.reference = median(reference);
  rec.ratio = rec.value / rec.reference;
  rec.unit = "ms";
  rec.better = "lower";
  const double bytes = 16.0 * double(s.params) * double(s.workers);
  const double gbps = bytes / (rec.value * 1e6), ref_gbps = bytes / (rec.reference * 1e6);
  const double rate = double(s.params) * double(s.workers) / (rec.value * 1e-3);
  rec.extra = {{"params", s.params},
               {"workers", s.workers},
               {"sync_threads", s.sync_threads},
               {"reps", s.reps},
               {"gbps", gbps},
               {"reference_gbps", ref_gbps},
               {"min_ms", ours_min},
               {"reference_min_ms", ref_min},
               {"params_syncs_per_s", rate},
               {"chunk_elements", settings.chunk_elements},
               {"paired_ratio_median", median(paired)},
               {"first_sync_ms", first_sync_max}};
  rec.detail =
      str_cat(s.workers, " worker", s.workers > 1 ? "s" : "", " x ", s.params, " params, sync_threads ", s.sync_threads,
              ": ", static_cast<int>(gbps * 10) / 10.0, " GB/s vs ", static_cast<int>(ref_gbps * 10) / 10.0,
              " GB/s; ms per ", s.workers > 1 ? "round (every worker syncs once)" : "sync", ", median of ", s.reps,
              "; best ", ours_min, " vs ", ref_min, " ms; slowest first sync ", first_sync_max, " ms");
  return rec;
}

std::optional<Scenario> scenario_for(const std::string& figure, bool quick) {
  const std::size_t M = 1'000'000;
  if (figure == "easgd_sync_1M_1w") return Scenario{figure, M, 1, 1, quick ? 30 : 201};
  if (figure == "easgd_sync_1M_2w") return Scenario{figure, M, 2, 1, 20};
  if (figure == "easgd_sync_1M_4w") return Scenario{figure, M, 4, 1, 10};
  if (figure == "easgd_sync_10M_1w") return Scenario{figure, 10 * M, 1, 1, 101};
  if (figure == "easgd_sync_50M_1w") return Scenario{figure, 50 * M, 1, 1, 21};
  if (figure == "easgd_sync_50M_1w_2t") return Scenario{figure, 50 * M, 1, 2, 21};
  if (figure == "easgd_sync_10M_2w") return Scenario{figure, 10 * M, 2, 1, 41};
  if (figure == "easgd_sync_10M_4w") return Scenario{figure, 10 * M, 4, 1, 21};
  return std::nullopt;
}

// EASGD made slow on purpose: every sync first spins for `extra`.
class SlowRule final : public SyncRule {
 public:
  SlowRule(float alpha, std::chrono::nanoseconds extra) : inner_(alpha), extra_(extra) {}
  [[nodiscard]] std::string describe() const override {
    return str_cat(inner_.describe(), " + ", extra_.count() / 1000, " us per sync");
  }
  void begin_sync() override {
    inner_.begin_sync();
    busy_wait(extra_);
  }
  void apply(std::span<float> local, std::span<float> central, std::size_t offset) override {
    inner_.apply(local, central, offset);
  }

 private:
  EASGD inner_;
  std::chrono::nanoseconds extra_;
};

}  // namespace

std::vector<Record> bench_sync(const Settings& settings, const std::vector<std::string>& figures) {
  std::vector<Record> records;
  for (const std::string& figure : figures) {
    auto s = scenario_for(figure, settings.quick);
    if (!s) throw std::logic_error(str_cat("no sync scenario for ", figure));
    if (figure.find("_2t") == std::string::npos) s->sync_threads = settings.sync_threads;
    records.push_back(run_scenario(*s, settings));
  }
  return records;
}

Record rate_limited_record(const Settings& settings, Soldier& soldier, const std::string& figure,
                          const std::string& setting) {
  using namespace std::chrono_literals;
  const double maximum_rate = 0.1;
  const auto compute = 2ms;
  const auto duration = settings.quick ? 500ms : 3000ms;
  RateLimited policy(maximum_rate);
  std::chrono::nanoseconds computing{0};
  const auto start = Clock::now();
  while (Clock::now() - start < duration) {
    const auto c0 = Clock::now();
    busy_wait(compute);
    computing += Clock::now() - c0;
    policy.maybe_sync([&] { soldier.sync_params(); });
  }
  const double wall_ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();

  const double syncing_ns = double(policy.time_syncing().count());
  const double mean_sync_ns = syncing_ns / double(policy.syncs());
  const double mean_compute_ns = double(computing.count()) / double(policy.minibatches());
  Record rec;
  rec.figure = figure;
  rec.value = syncing_ns / wall_ns;
  rec.reference = mean_sync_ns / (mean_sync_ns + mean_compute_ns);  // every_n = 1: a sync after each minibatch
  rec.ratio = rec.value;
  rec.unit = "share";
  rec.better = str_cat("<= ", maximum_rate);
  rec.extra = {
      {"maximum_rate", maximum_rate},       {"minibatches", policy.minibatches()},      {"syncs", policy.syncs()},
      {"mean_sync_ms", mean_sync_ns / 1e6}, {"mean_compute_ms", mean_compute_ns / 1e6}, {"wall_s", wall_ns / 1e9}};
  rec.detail = str_cat("RateLimited(", maximum_rate, ")", setting, ": ", policy.syncs(), " syncs of ",
                       mean_sync_ns / 1e6, " ms in ", policy.minibatches(), " minibatches of ", mean_compute_ns / 1e6,
                       " ms; reference = share with a sync after every minibatch");
  return rec;
}

Record bench_rate_limited(const Settings& settings) {
  using namespace std::chrono_literals;
  BenchController controller;
  ServedController served(controller);
  std::vector<float> params(4096, 1.0f);
  Soldier soldier(soldier_options(served.endpoint()));
  soldier.init_shared_params({{"w", params.data(), {params.size()}}}, std::make_unique<SlowRule>(0.5f, 5ms));
  Record rec = rate_limited_record(settings, soldier, "rate_limited_share", "");
  soldier.close();
  return rec;
}

}  // namespace platoon::bench
