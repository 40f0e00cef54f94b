// What README.md promises about the center, checked in one process (one
// thread per rank): corrupted headers are refused, segments are owner-only,
// several sync threads give exact EASGD, a job that ends takes no new worker,
// cleanup = false keeps the center, and the lock and params bounds expire.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "platoon/channel/control_client.hpp"
#include "platoon/common/error.hpp"
#include "platoon/process/child_process.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/shm/shm_object.hpp"
#include "platoon/soldier.hpp"
#include "soldier_support.hpp"
#include "test_support.hpp"

using nlohmann::json;
using platoon::SharedSegment;
using platoon::Soldier;
using platoon::str_cat;
using platoon::testing::eventually;
using platoon::testing::ServedController;
using namespace std::chrono_literals;

namespace {

using EndingController = platoon::testing::EndOnRequestController;

Soldier::Options options_for(const ServedController& served) {
  return platoon::testing::soldier_options_for(served);
}

std::unique_ptr<platoon::SyncRule> easgd() { return std::make_unique<platoon::EASGD>(0.5f); }

// Removes a segment that a test keeps on purpose, whatever happens.
struct RemoveAtEnd {
  std::string name;
  ~RemoveAtEnd() { SharedSegment::remove(name); }
};

// Mode bits of /dev/shm/<name>.
mode_t shm_mode(const std::string& name) {
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("a segment whose header's magic, version or checksum is corrupted is refused, naming the fault") {
  EndingController controller;
  ServedController served(controller);
  std::vector<float> center(10, 1.5f), joiner_values(10);
  Soldier first(options_for(served));
  first.init_shared_params({{"w", center.data(), {10}}}, easgd());
  const std::string name = SharedSegment::name_for_job(first.job_id());

  platoon::ShmObject raw = platoon::ShmObject::open(name, true);
  auto* bytes = static_cast<unsigned char*>(raw.data());
  std::uint64_t layout_offset = 0;
  std::memcpy(&layout_offset, bytes + 64, sizeof layout_offset);  // the header's layout_offset
  const std::string layout_text(reinterpret_cast<const char*>(bytes) + layout_offset, 200);
  const std::size_t name_at = layout_text.find(R"("w")");
  REQUIRE(name_at != std::string::npos);

  struct Fault {
    const char* what;
    std::size_t offset;
    const char* message;
  };
  // Each fault alone: the magic; the format version (1 becomes 0); a field
  // only the checksum covers (created_unix_ms, at byte 48); and the layout
  // text itself ("w" becomes "v"), which the checksum covers too.
  for (const Fault& fault : {Fault{"magic", 0, "bad magic"}, Fault{"version", 8, "format version 0"},
                             Fault{"creation time", 48, "checksum mismatch"},
                             Fault{"layout text", layout_offset + name_at + 1, "checksum mismatch"}}) {
    const std::string what = fault.what;
    CAPTURE(what);
    bytes[fault.offset] ^= 0x01;
    Soldier joiner(options_for(served));
    CHECK_THROWS_WITH_AS(joiner.init_shared_params({{"w", joiner_values.data(), {10}}}, easgd()),
                         doctest::Contains(fault.message), platoon::LayoutError);
    CHECK_THROWS_WITH_AS(SharedSegment::attach(name, platoon::Layout::of(std::vector<platoon::ParamView>{{"w", joiner_values.data(), {10}}}), 1s),
                         doctest::Contains(name.c_str()), platoon::LayoutError);
    CHECK(SharedSegment::inspect(name).problem.find(fault.message) != std::string::npos);
    bytes[fault.offset] ^= 0x01;
  }
  // Restored, the same segment is accepted again.
  Soldier joiner(options_for(served));
  joiner.init_shared_params({{"w", joiner_values.data(), {10}}}, easgd());
  CHECK(joiner_values[9] == 1.5f);
}

TEST_CASE("shared-memory segments are created readable by their owner only (0600), whatever the umask") {
  std::vector<float> w(16);
  const platoon::Layout layout = platoon::Layout::of(std::vector<platoon::ParamView>{{"w", w.data(), {16}}});
  const std::string segment = SharedSegment::name_for_job(platoon::testing::unique_name("mode"));
  const std::string object = platoon::testing::unique_name("platoon-mode-object");
  RemoveAtEnd remove_segment{segment}, remove_object{object};
  const mode_t previous = ::umask(0);  // nothing narrows the mode but platoon itself
  {
    auto created = SharedSegment::create(segment, "mode-job", layout, platoon::ProcessId::self());
    auto plain = platoon::ShmObject::create(object, 4096);  // group segments, slots, shared data
  }
  ::umask(previous);
  CHECK(shm_mode(segment) == 0600);
  CHECK(shm_mode(object) == 0600);
}

TEST_CASE("sync_params on several sync threads is exact EASGD on every chunk, also with two workers at once") {
  EndingController controller;
  ServedController served(controller);
  constexpr std::size_t kSize = 1000;  // 16 chunks of 64, the last one short
  auto options = options_for(served);
  options.chunk_elements = 64;
  options.sync_threads = 4;
  std::vector<float> a(kSize), b(kSize);
  for (std::size_t j = 0; j < kSize; ++j) a[j] = float(j % 13);
  const std::vector<float> start = a;
  Soldier first(options);
  first.init_shared_params({{"x", a.data(), {kSize}}}, easgd());
  Soldier second(options);
  second.init_shared_params({{"x", b.data(), {kSize}}}, easgd());
  REQUIRE(b == start);

  // One sync: local c + 8 against center c, alpha 0.5: both become c + 4
  // (exact in float), on every element of every chunk.
  for (std::size_t j = 0; j < kSize; ++j) b[j] = start[j] + 8.0f;
  second.sync_params();
  {
    auto guard = second.lock();
    const auto center = second.central_values();
    for (std::size_t j = 0; j < kSize; ++j) {
      CAPTURE(j);
      REQUIRE(b[j] == start[j] + 4.0f);
      REQUIRE(center[j] == start[j] + 4.0f);
    }
  }

  // Both workers sync concurrently, each on its 4 threads: EASGD conserves
  // center + locals, so the sum is the start plus every step's progress.
  std::vector<float>* locals[2] = {&a, &b};
  Soldier* soldiers[2] = {&first, &second};
  constexpr int kSteps = 40;
  platoon::testing::run_ranks(2, [&](int r) {
    for (int step = 0; step < kSteps; ++step) {
      for (float& v : *locals[r]) v += 0.01f * float(r + 1);
      soldiers[r]->sync_params();
    }
  });
  auto guard = first.lock();
  const auto center = first.central_values();
  for (std::size_t j = 0; j < kSize; ++j) {
    CAPTURE(j);
    const double before = 3.0 * start[j] + 8.0;  // a = c, b = c + 4, center = c + 4
    const double total = double(center[j]) + a[j] + b[j];
    REQUIRE(total == doctest::Approx(before + kSteps * 0.01 * (1 + 2)).epsilon(1e-5));
  }
}

TEST_CASE("after end_job() a worker that registers is refused, and the job ends when the others leave") {
  EndingController controller;
  ServedController served(controller);
  Soldier first(options_for(served));
  CHECK(first.send_req("end") == "ok");
  CHECK_THROWS_WITH_AS(Soldier{options_for(served)}, doctest::Contains("no new worker may join"),
                       platoon::JobOverError);
  CHECK_FALSE(served.finished());  // the first worker is still there
  first.close();
  CHECK(eventually([&] { return served.finished(); }, 10s));  // the refused one is not waited for
  served.rethrow();
}

namespace {
// A loopback port that nothing listens on (bound to port 0, then closed).
int unused_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}
}  // namespace

TEST_CASE("a worker whose known controller process is gone stops registering at once, with JobOverError") {
  // A controller process that has ended (and been reaped), on a port where
  // nothing listens: without the process to watch, registering would wait
  // for the whole timeout.
  platoon::ChildProcess gone = platoon::ChildProcess::spawn({"/bin/true"}, {});
  const platoon::ProcessId controller = platoon::ProcessId::of(gone.pid());
  REQUIRE(gone.wait_for(10s).has_value());
  Soldier::Options options;
  options.endpoint = platoon::loopback_endpoint(unused_loopback_port());
  options.timeout = 30s;
  options.controller_process = controller;
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains("ended before this worker could register"),
                       platoon::JobOverError);
  CHECK(std::chrono::steady_clock::now() - started < 10s);  // far below the 30 s timeout

  // The same from platoon-launch's variable; a malformed one is named.
  options.controller_process = {};
  ::setenv("PLATOON_CONTROLLER_PROCESS", controller.to_string().c_str(), 1);
  CHECK_THROWS_AS(Soldier{options}, platoon::JobOverError);
  ::setenv("PLATOON_CONTROLLER_PROCESS", "12x", 1);
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains("PLATOON_CONTROLLER_PROCESS=12x"), platoon::Error);
  ::unsetenv("PLATOON_CONTROLLER_PROCESS");
}

TEST_CASE("a worker pointed at a port where nothing listens fails within 6 s, saying so") {
  Soldier::Options options;
  options.endpoint = platoon::loopback_endpoint(unused_loopback_port());
  REQUIRE(options.timeout >= 60s);  // the default request bound is not what ends it
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(Soldier{options}, doctest::Contains(str_cat("nothing listens at ", options.endpoint).c_str()),
                       platoon::TimeoutError);
  CHECK(std::chrono::steady_clock::now() - started < 6s);

  // The bound is the Soldier's to set.
  options.connect_timeout = 300ms;
  const auto again = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(Soldier{options}, platoon::TimeoutError);
  CHECK(std::chrono::steady_clock::now() - again < 3s);
}

TEST_CASE("a controller that accepted the connection but is slow is waited for the whole request timeout") {
  // A socket that accepts connections and never answers.
  zmq::context_t context;
  zmq::socket_t silent(context, zmq::socket_type::router);
  silent.set(zmq::sockopt::linger, 0);
  silent.bind("tcp://127.0.0.1:*");
  const std::string endpoint = silent.get(zmq::sockopt::last_endpoint);
  platoon::ControlClient client(endpoint, 1500ms, {}, 200ms);
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(client.request(0, "next"), doctest::Contains("did not answer"), platoon::TimeoutError);
  CHECK(std::chrono::steady_clock::now() - started >= 1400ms);  // not cut short at the connect bound
}

TEST_CASE("init_shared_params(..., cleanup = false) keeps the center after its worker and the job are gone") {
  EndingController controller;
  ServedController served(controller);
  std::vector<float> w(8, 2.5f);
  std::string name;
  {
    Soldier worker(options_for(served));
    worker.init_shared_params({{"w", w.data(), {8}}}, easgd(), /*cleanup=*/false);
    name = SharedSegment::name_for_job(worker.job_id());
    worker.send_req("end");
  }  // the Soldier's destructor leaves the job
  RemoveAtEnd remove{name};
  REQUIRE(eventually([&] { return served.finished(); }, 10s));  // serve() returned by itself
  served.rethrow();
  const platoon::SegmentInfo info = SharedSegment::inspect(name);
  INFO(info.problem);
  REQUIRE(info.problem.empty());
  CHECK(info.ready);
  const SharedSegment kept = SharedSegment::attach(name, *info.layout, 1s);
  for (float v : kept.values()) CHECK(v == 2.5f);
}

namespace {
// Holds every lock of a segment on a thread of its own (as another worker
// would) until destroyed.
class LockHolder {
 public:
  LockHolder(const std::string& name, const platoon::Layout& layout) {
    std::promise<void> held;
    auto held_future = held.get_future();
    thread_ = std::thread([this, name, layout, held = std::move(held)]() mutable {
      try {
        const SharedSegment segment = SharedSegment::attach(name, layout, 5s);
        const platoon::SegmentLock lock = segment.lock_all(5s, platoon::Logger("holder"));
        held.set_value();
        release_.get_future().wait();
      } catch (...) {
        held.set_exception(std::current_exception());
      }
    });
    try {
      held_future.get();  // bounded: attach and lock_all are
    } catch (...) {
      thread_.join();
      throw;
    }
  }
  ~LockHolder() {
    release_.set_value();
    thread_.join();
  }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

 private:
  std::promise<void> release_;
  std::thread thread_;
};

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}
}  // namespace

TEST_CASE("lock_timeout expires with a TimeoutError naming the holder, after the configured wait") {
  EndingController controller;
  ServedController served(controller);
  std::vector<float> a(100, 1.0f), b(100);
  Soldier first(options_for(served));
  first.init_shared_params({{"x", a.data(), {100}}}, easgd());
  auto options = options_for(served);
  options.lock_timeout = 300ms;
  options.timeout = 30s;  // no other bound may end the wait in its place
  Soldier second(options);
  second.init_shared_params({{"x", b.data(), {100}}}, easgd());
  LockHolder holder(SharedSegment::name_for_job(first.job_id()), platoon::Layout::of(std::vector<platoon::ParamView>{{"x", a.data(), {100}}}));

  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(second.sync_params(), doctest::Contains(("still held by pid " + std::to_string(::getpid())).c_str()),
                       platoon::TimeoutError);
  // Not before the bound (less a few ms: the deadline is on another clock,
  // kept in whole milliseconds), nor long after it.
  const auto at_least = options.lock_timeout * 9 / 10;
  auto waited = since(start);
  CHECK(waited >= at_least);
  CHECK(waited < options.lock_timeout + 10s);  // generous: a loaded machine, not a measure
  start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS((void)second.lock(), doctest::Contains("is still held by pid"), platoon::TimeoutError);
  waited = since(start);
  CHECK(waited >= at_least);
  CHECK(waited < options.lock_timeout + 10s);
}

TEST_CASE("params_timeout expires with a TimeoutError when the first worker never creates the center") {
  EndingController controller;
  ServedController served(controller);
  Soldier creator(options_for(served));  // told to create the center, and never does
  REQUIRE(creator.first());
  auto options = options_for(served);
  options.params_timeout = 300ms;
  options.timeout = 30s;  // no other bound may end the wait in its place
  Soldier waiting(options);
  std::vector<float> x(10);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(waiting.init_shared_params({{"x", x.data(), {10}}}, easgd()),
                       doctest::Contains("were not created within 300 ms"), platoon::TimeoutError);
  const auto waited = since(start);
  CHECK(waited >= options.params_timeout);
  CHECK(waited < options.params_timeout + 10s);
}
