// The parameter server and its client, in one process: real ZeroMQ sockets
// over loopback TCP and a real shared segment. What remote syncs compute,
// what the server refuses, and who it lets in.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "platoon/common/error.hpp"
#include "platoon/common/secret.hpp"
#include "platoon/remote/param_server.hpp"
#include "platoon/remote/remote_center.hpp"
#include "platoon/remote/wire.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/sync/sync_rules.hpp"
#include "test_support.hpp"

using platoon::CenterUpdate;
using platoon::Layout;
using platoon::ParamServer;
using platoon::RemoteCenter;
using platoon::SharedSegment;
namespace wire = platoon::wire;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kSize = 1000, kChunk = 128;  // 8 chunks, the last one of 104
constexpr int kWorker = 7;

std::vector<float> ramp(std::size_t n, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(i % 97) - 3.0f;
  return v;
}

Layout layout_of(std::vector<float>& values, const std::string& name = "w") {
  const platoon::ParamView view{name, values.data(), {values.size()}};
  return Layout::of(std::span<const platoon::ParamView>(&view, 1));
}

// A job's center in shared memory and a parameter server in front of it,
// with worker kWorker admitted.
struct ServedCenter {
  platoon::Logger log{"test-server"};
  std::string name = platoon::testing::unique_name("platoon-test-remote");
  std::vector<float> initial = ramp(kSize, 0.25f);
  std::optional<SharedSegment> segment;
  std::optional<ParamServer> server;
  std::string token = platoon::random_secret_hex(16);

  explicit ServedCenter(platoon::CurveServerKeys curve = {}, bool ready = true) {
    segment.emplace(SharedSegment::create(name, "test-job", layout_of(initial), platoon::ProcessId::self(), kChunk));
    std::copy(initial.begin(), initial.end(), segment->values().begin());
    if (ready) segment->mark_ready();
    ParamServer::Options options;
    options.endpoint = "tcp://127.0.0.1:*";
    options.segment_name = name;
    options.curve = std::move(curve);
    options.max_frame_bytes = 64 * 1024;
    server.emplace(std::move(options), log);
    server->admit(kWorker, token);
  }
  ~ServedCenter() {
    server.reset();
    segment.reset();
    SharedSegment::remove(name);
  }

  RemoteCenter::Options client(std::chrono::milliseconds timeout = 5000ms) const {
    RemoteCenter::Options o;
    o.endpoint = server->endpoint();
    o.worker_id = kWorker;
    o.token = token;
    o.timeout = timeout;
    o.ready_timeout = 2000ms;
    return o;
  }

  std::vector<float> center() const { return {segment->values().begin(), segment->values().end()}; }
};

// One remote sync of `rule` over the whole vector, as Soldier does it.
void remote_sync(RemoteCenter& remote, platoon::SyncRule& rule, std::vector<float>& local) {
  rule.begin_sync();
  const std::size_t chunk = remote.chunk_elements();
  remote.sync(
      *rule.center_update(),
      [&](std::size_t c, std::span<float> out) {
        rule.remote_push(std::span<const float>(local).subspan(c * chunk, out.size()), c * chunk, out);
      },
      [&](std::size_t c, std::span<const float> answer) {
        rule.remote_apply(std::span<float>(local).subspan(c * chunk, answer.size()), answer, c * chunk);
      });
}

// A raw peer: sends any frames, reads the reply (status and text), or
// nothing within the bound.
class RawPeer {
 public:
  explicit RawPeer(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  // Sends [empty][frames...].
  void send(const std::vector<std::string>& frames) {
    socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i)
      socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  // The reply's status and payload text; nullopt when none came in time.
  std::optional<std::pair<wire::Status, std::string>> reply(std::chrono::milliseconds timeout = 3000ms) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    do {
      parts.emplace_back();
      (void)socket_.recv(parts.back());
    } while (parts.back().more());
    REQUIRE(parts.size() == 3);
    wire::ReplyHeader h;
    std::string problem;
    REQUIRE(wire::decode(parts[1].data(), parts[1].size(), h, problem));
    return std::make_pair(h.status, parts[2].to_string());
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_;
};

std::string sync_header(std::uint32_t chunk, const std::string& token, int worker = kWorker,
                        CenterUpdate update = {CenterUpdate::Kind::add, 0, 0}) {
  wire::RequestHeader h;
  h.op = wire::Op::sync;
  h.worker_id = static_cast<std::uint32_t>(worker);
  h.sequence = 1;
  h.chunk = chunk;
  h.update = update;
  h.token = token;
  return wire::encode(h);
}

std::string floats_bytes(std::size_t n, float value) {
  std::vector<float> v(n, value);
  return std::string(reinterpret_cast<const char*>(v.data()), n * sizeof(float));
}

}  // namespace

TEST_CASE("request and reply headers survive encoding, and bad ones are named") {
  wire::RequestHeader h;
  h.op = wire::Op::pull;
  h.worker_id = 12;
  h.sequence = 1ull << 40;
  h.chunk = 3;
  h.update = {CenterUpdate::Kind::weighted, 0.25f, 0.75f};
  h.token = std::string(32, 'a');
  const std::string bytes = wire::encode(h);
  REQUIRE(bytes.size() == wire::kRequestHeaderBytes);
  wire::RequestHeader back;
  std::string problem;
  REQUIRE(wire::decode(bytes.data(), bytes.size(), back, problem));
  CHECK(back.op == h.op);
  CHECK(back.worker_id == 12);
  CHECK(back.sequence == h.sequence);
  CHECK(back.chunk == 3);
  CHECK(back.update.kind == CenterUpdate::Kind::weighted);
  CHECK(back.update.beta == 0.75f);
  CHECK(back.token == h.token);

  CHECK_FALSE(wire::decode(bytes.data(), bytes.size() - 1, back, problem));
  CHECK(problem.find("72 bytes") != std::string::npos);
  std::string wrong = bytes;
  wrong[0] = 'X';
  CHECK_FALSE(wire::decode(wrong.data(), wrong.size(), back, problem));
  CHECK(problem.find("PLTNPS01") != std::string::npos);
  wrong = bytes;
  wrong[8] = 9;
  CHECK_FALSE(wire::decode(wrong.data(), wrong.size(), back, problem));
  CHECK(problem.find("unknown op 9") != std::string::npos);

  const std::string reply = wire::encode(wire::ReplyHeader{wire::Status::busy, 5, 77});
  wire::ReplyHeader r;
  REQUIRE(wire::decode(reply.data(), reply.size(), r, problem));
  CHECK(r.status == wire::Status::busy);
  CHECK(r.chunk == 5);
  CHECK(r.sequence == 77);
}

TEST_CASE("a remote sync computes what the shared-memory rule computes, bit for bit") {
  auto check = [](auto make_rule) {
    ServedCenter served;
    // The same rule and values, once against a plain copy of the center...
    std::vector<float> local_shm = ramp(kSize, -0.5f), center_shm = served.initial;
    auto shm_rule = make_rule();
    shm_rule->attach(kSize);
    shm_rule->init_piece(std::span<const float>(local_shm).first(kSize), 0);
    // ... and once over TCP.
    std::vector<float> local_tcp = local_shm;
    auto tcp_rule = make_rule();
    tcp_rule->attach(kSize);
    tcp_rule->init_piece(std::span<const float>(local_tcp).first(kSize), 0);
    RemoteCenter remote(served.client(), layout_of(local_tcp));
    CHECK(remote.num_chunks() == 8);
    CHECK(remote.chunk_elements() == kChunk);
    for (int round = 0; round < 3; ++round) {
      for (std::size_t i = 0; i < kSize; ++i) {
        local_shm[i] += 0.125f * static_cast<float>(round + 1);
        local_tcp[i] += 0.125f * static_cast<float>(round + 1);
      }
      shm_rule->begin_sync();
      for (std::size_t c = 0; c * kChunk < kSize; ++c) {
        const std::size_t n = std::min(kChunk, kSize - c * kChunk);
        shm_rule->apply(std::span<float>(local_shm).subspan(c * kChunk, n),
                        std::span<float>(center_shm).subspan(c * kChunk, n), c * kChunk);
      }
      remote_sync(remote, *tcp_rule, local_tcp);
    }
    for (std::size_t i = 0; i < kSize; ++i)
      if (local_shm[i] != local_tcp[i]) {
        MESSAGE("first difference at " << i << ": " << local_shm[i] << " vs " << local_tcp[i]);
        break;
      }
    CHECK(std::memcmp(local_shm.data(), local_tcp.data(), kSize * sizeof(float)) == 0);
    const std::vector<float> center_tcp = served.center();
    CHECK(std::memcmp(center_shm.data(), center_tcp.data(), kSize * sizeof(float)) == 0);
    CHECK(center_tcp != served.initial);
    CHECK(served.server->chunks_applied() == 24);
  };
  SUBCASE("EASGD: both halves use the same d") { check([] { return std::make_unique<platoon::EASGD>(0.3f); }); }
  SUBCASE("ASGD") { check([] { return std::make_unique<platoon::ASGD>(); }); }
  SUBCASE("WeightedAverage") { check([] { return std::make_unique<platoon::WeightedAverage>(0.75f, 0.25f); }); }
}

TEST_CASE("EASGD over TCP conserves center + local exactly") {
  ServedCenter served;
  std::vector<float> local = ramp(kSize, 2.0f);
  RemoteCenter remote(served.client(), layout_of(local));
  platoon::EASGD rule(0.5f);
  std::vector<double> before(kSize);
  for (std::size_t i = 0; i < kSize; ++i) before[i] = double(local[i]) + double(served.initial[i]);
  remote_sync(remote, rule, local);
  const std::vector<float> center = served.center();
  for (std::size_t i = 0; i < kSize; ++i) CHECK(double(local[i]) + double(center[i]) == doctest::Approx(before[i]).epsilon(1e-6));
  CHECK(center != served.initial);
}

TEST_CASE("pull reads the center; hello names a layout that differs") {
  ServedCenter served;
  std::vector<float> local(kSize, 0.0f);
  RemoteCenter remote(served.client(), layout_of(local));
  remote.pull([&](std::size_t c, std::span<const float> v) { std::copy(v.begin(), v.end(), local.begin() + c * kChunk); });
  CHECK(local == served.initial);

  std::vector<float> other(kSize, 0.0f);
  try {
    RemoteCenter wrong(served.client(), layout_of(other, "weights"));
    FAIL("a different layout was accepted");
  } catch (const platoon::LayoutError& e) {
    CHECK(std::string(e.what()).find("weights") != std::string::npos);
  }
  std::vector<float> shorter(kSize - 1, 0.0f);
  CHECK_THROWS_AS(RemoteCenter(served.client(), layout_of(shorter)), platoon::LayoutError);
}

TEST_CASE("only admitted workers with their token are served") {
  ServedCenter served;
  std::vector<float> local(kSize, 0.0f);
  RemoteCenter::Options wrong_token = served.client();
  wrong_token.token = platoon::random_secret_hex(16);
  try {
    RemoteCenter remote(wrong_token, layout_of(local));
    FAIL("a wrong token was served");
  } catch (const platoon::ErrorReply& e) {
    CHECK(e.kind() == "unauthorized");
    CHECK(std::string(e.what()).find(served.server->endpoint()) != std::string::npos);
  }
  RemoteCenter remote(served.client(), layout_of(local));
  served.server->dismiss(kWorker);  // left, or lost
  platoon::ASGD rule;
  rule.attach(kSize);
  CHECK_THROWS_AS(remote_sync(remote, rule, local), platoon::ErrorReply);
  CHECK(served.center() == served.initial);
}

TEST_CASE("a center that does not exist yet is waited for, within a bound") {
  ServedCenter served({}, /*ready=*/false);
  std::vector<float> local(kSize, 0.0f);
  RemoteCenter::Options options = served.client();
  options.ready_timeout = 200ms;
  try {
    RemoteCenter remote(options, layout_of(local));
    FAIL("a center that is not ready was used");
  } catch (const platoon::ErrorReply& e) {
    CHECK(e.kind() == "not-ready");
  }
  options.ready_timeout = 5000ms;
  std::thread ready([&] {
    std::this_thread::sleep_for(100ms);
    served.segment->mark_ready();
  });
  RemoteCenter remote(options, layout_of(local));
  ready.join();
  CHECK(remote.num_chunks() == 8);
}

TEST_CASE("no parameter server: the client's error names the endpoint, within its bound") {
  std::vector<float> local(kSize, 0.0f);
  RemoteCenter::Options options;
  options.endpoint = "tcp://127.0.0.1:9";  // discard: nothing listens
  options.worker_id = 1;
  options.token = std::string(32, '0');
  options.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  try {
    RemoteCenter remote(options, layout_of(local));
    FAIL("no server, yet no error");
  } catch (const platoon::TimeoutError& e) {
    CHECK(std::string(e.what()).find("tcp://127.0.0.1:9") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("bad frames of every kind are refused, touch nothing, while another worker keeps syncing") {
  ServedCenter served;
  // The good worker: ASGD with every value moved by +1 before each sync, so
  // the center gains exactly +1 per sync, and a refused frame that changed
  // anything would show.
  constexpr int kSyncs = 100;
  std::atomic<bool> good_failed{false};
  std::thread good([&] {
    try {
      std::vector<float> local = served.initial;
      RemoteCenter remote(served.client(), layout_of(local));
      platoon::ASGD rule;
      rule.attach(kSize);
      rule.init_piece(std::span<const float>(local).first(kSize), 0);
      for (int s = 0; s < kSyncs; ++s) {
        for (float& v : local) v += 1.0f;
        remote_sync(remote, rule, local);
      }
    } catch (const std::exception& e) {
      MESSAGE("the good worker failed: " << e.what());
      good_failed = true;
    }
  });

  struct Bad {
    const char* what;
    std::vector<std::string> frames;
    wire::Status expected;
    const char* reason;
  };
  const std::string token = served.token;
  std::string wrong_magic = sync_header(0, token);
  wrong_magic[3] = 'x';
  std::string unknown_op = sync_header(0, token);
  unknown_op[8] = 42;
  const std::string chunk0 = floats_bytes(kChunk, 1.0f);
  const std::vector<Bad> bad = {
      {"a header alone", {sync_header(0, token)}, wire::Status::bad_request, "2 frames"},
      {"three frames", {sync_header(0, token), chunk0, chunk0}, wire::Status::bad_request, "2 frames"},
      {"a short header", {sync_header(0, token).substr(0, 10), chunk0}, wire::Status::bad_request, "72 bytes"},
      {"a long header", {sync_header(0, token) + "x", chunk0}, wire::Status::bad_request, "72 bytes"},
      {"a wrong magic", {wrong_magic, chunk0}, wire::Status::bad_request, "PLTNPS01"},
      {"an unknown op", {unknown_op, chunk0}, wire::Status::bad_request, "unknown op"},
      {"an unknown chunk", {sync_header(8, token), chunk0}, wire::Status::bad_request, "chunk 8 does not exist"},
      {"a huge chunk number", {sync_header(0xffffffffu, token), chunk0}, wire::Status::bad_request, "does not exist"},
      {"a short payload", {sync_header(0, token), floats_bytes(kChunk - 1, 1.0f)}, wire::Status::bad_request,
       "the chunk has 512"},
      {"a long payload", {sync_header(0, token), floats_bytes(kChunk + 1, 1.0f)}, wire::Status::bad_request,
       "the chunk has 512"},
      {"an odd payload", {sync_header(0, token), chunk0 + "x"}, wire::Status::bad_request, "the chunk has 512"},
      {"an unknown update", {sync_header(0, token, kWorker, {static_cast<CenterUpdate::Kind>(9), 0, 0}), chunk0},
       wire::Status::bad_request, "unknown center update kind 9"},
      {"a NaN alpha",
       {sync_header(0, token, kWorker, {CenterUpdate::Kind::elastic, std::numeric_limits<float>::quiet_NaN(), 0}),
        chunk0},
       wire::Status::bad_request, "non-finite"},
      {"alpha 2 for EASGD", {sync_header(0, token, kWorker, {CenterUpdate::Kind::elastic, 2.0f, 0}), chunk0},
       wire::Status::bad_request, "outside (0, 1]"},
      {"an unregistered worker", {sync_header(0, token, 99), chunk0}, wire::Status::unauthorized, "worker 99"},
      {"a wrong token", {sync_header(0, platoon::random_secret_hex(16)), chunk0}, wire::Status::unauthorized,
       "session token"},
      {"an empty token", {sync_header(0, ""), chunk0}, wire::Status::unauthorized, "session token"},
  };
  RawPeer peer(served.server->endpoint());
  for (const Bad& b : bad) {
    INFO(b.what);
    peer.send(b.frames);
    const auto reply = peer.reply();
    REQUIRE(reply);
    CHECK(reply->first == b.expected);
    CHECK(reply->second.find(b.reason) != std::string::npos);
  }
  // A hello with a malformed layout.
  wire::RequestHeader hello;
  hello.op = wire::Op::hello;
  hello.worker_id = kWorker;
  hello.token = token;
  peer.send({wire::encode(hello), "{not json"});
  auto reply = peer.reply();
  REQUIRE(reply);
  CHECK(reply->first == wire::Status::bad_request);
  CHECK(reply->second.find("layout is malformed") != std::string::npos);

  // A frame over the limit is dropped as it arrives, with its connection:
  // no reply, and the server goes on.
  RawPeer flooder(served.server->endpoint());
  flooder.send({sync_header(0, token), std::string(128 * 1024, 'x')});
  CHECK_FALSE(flooder.reply(300ms));

  good.join();
  CHECK_FALSE(good_failed.load());
  CHECK(served.server->refused() == bad.size() + 1);
  // Only the good worker's syncs reached the center: +1 per sync, exactly.
  const std::vector<float> center = served.center();
  for (std::size_t i = 0; i < kSize; ++i) CHECK(center[i] == served.initial[i] + float(kSyncs));
}

TEST_CASE("a parameter server off loopback needs CURVE; with it, only allowed keys get in") {
  platoon::Logger log{"test-server"};
  ParamServer::Options plain;
  plain.endpoint = "tcp://192.0.2.1:5570";  // refused before anything is bound
  plain.segment_name = "platoon-none";
  try {
    ParamServer server(plain, log);
    FAIL("bound off loopback without CURVE");
  } catch (const platoon::Error& e) {
    CHECK(std::string(e.what()).find("without CURVE") != std::string::npos);
    CHECK(std::string(e.what()).find("192.0.2.1") != std::string::npos);
  }

  const platoon::CurveKeyPair server_keys = platoon::CurveKeyPair::generate();
  const platoon::CurveKeyPair allowed = platoon::CurveKeyPair::generate();
  const platoon::CurveKeyPair stranger = platoon::CurveKeyPair::generate();
  ServedCenter served(platoon::CurveServerKeys{server_keys, {allowed.public_key}});
  std::vector<float> local = served.initial;

  RemoteCenter::Options good = served.client();
  good.curve = platoon::CurveClientKeys{server_keys.public_key, allowed};
  RemoteCenter remote(good, layout_of(local));
  platoon::ASGD rule;
  rule.attach(kSize);
  rule.init_piece(std::span<const float>(local).first(kSize), 0);
  for (float& v : local) v += 1.0f;
  remote_sync(remote, rule, local);
  CHECK(served.center()[0] == served.initial[0] + 1.0f);

  RemoteCenter::Options outsider = served.client(300ms);  // with the token, but not the key
  outsider.curve = platoon::CurveClientKeys{server_keys.public_key, stranger};
  CHECK_THROWS_AS(RemoteCenter(outsider, layout_of(local)), platoon::TimeoutError);
  RemoteCenter::Options no_curve = served.client(300ms);
  CHECK_THROWS_AS(RemoteCenter(no_curve, layout_of(local)), platoon::TimeoutError);
  CHECK(served.center()[0] == served.initial[0] + 1.0f);
}

TEST_CASE("a center whose chunks exceed the server's frame limit is refused at hello, naming both sizes") {
  platoon::Logger log{"test-server"};
  const std::string name = platoon::testing::unique_name("platoon-test-remote-big");
  std::vector<float> values(kSize, 1.0f);
  SharedSegment segment = SharedSegment::create(name, "test-job", layout_of(values), platoon::ProcessId::self(), kSize);
  segment.mark_ready();
  ParamServer::Options options;
  options.endpoint = "tcp://127.0.0.1:*";
  options.segment_name = name;
  options.max_frame_bytes = 1024;  // the chunk has 4000 bytes
  ParamServer server(options, log);
  server.admit(kWorker, std::string(32, 'a'));
  RemoteCenter::Options client;
  client.endpoint = server.endpoint();
  client.worker_id = kWorker;
  client.token = std::string(32, 'a');
  client.timeout = 5000ms;
  try {
    RemoteCenter remote(client, layout_of(values));
    FAIL("a chunk over the frame limit was accepted");
  } catch (const platoon::ErrorReply& e) {
    CHECK(e.kind() == "bad-request");
    CHECK(std::string(e.what()).find("4000 bytes") != std::string::npos);
    CHECK(std::string(e.what()).find("1024") != std::string::npos);
  }
  SharedSegment::remove(name);
}
