// libFuzzer target: arbitrary bytes as a parameter server request (header
// frame and payload frame), answered by a real ParamServer in front of a
// real segment, exactly as its serving threads answer; and as a reply
// header, read the way RemoteCenter reads one.
//
// Input: byte 0 holds flags: bit 0 puts the admitted worker's id and token
// into the header (so the fuzzer reaches past the authorization), bit 1
// cuts the header at 72 bytes, else byte 1 gives its length. The rest is
// the header, then the payload.
//
// Every input must get a reply; a refused one must leave the center
// bit-for-bit untouched.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "platoon/common/log.hpp"
#include "platoon/remote/param_server.hpp"
#include "platoon/remote/wire.hpp"
#include "platoon/shm/shared_segment.hpp"

namespace {

constexpr std::size_t kSize = 1000, kChunk = 128;
constexpr int kWorker = 7;
const std::string kToken(32, 'f');

// The segment and the server, made once for the whole run and removed at
// exit (libFuzzer calls the target many times in one process).
struct Served {
  platoon::Logger log{"fuzz-server"};
  std::string name = platoon::str_cat("platoon-fuzz-remote-", ::getpid());
  std::vector<float> values = std::vector<float>(kSize, 1.0f);
  std::optional<platoon::SharedSegment> segment;
  std::optional<platoon::ParamServer> server;

  Served() {
    platoon::SharedSegment::remove(name);
    const platoon::ParamView view{"w", values.data(), {kSize}};
    segment.emplace(platoon::SharedSegment::create(name, "fuzz", platoon::Layout::of(std::span(&view, 1)),
                                                   platoon::ProcessId::self(), kChunk));
    std::copy(values.begin(), values.end(), segment->values().begin());
    segment->mark_ready();
    platoon::ParamServer::Options options;
    options.endpoint = platoon::str_cat("inproc://fuzz-remote-", ::getpid());
    options.segment_name = name;
    server.emplace(std::move(options), log);
    server->admit(kWorker, kToken);
  }
  ~Served() {
    server.reset();
    segment.reset();
    platoon::SharedSegment::remove(name);
  }
};

Served& served() {
  static Served s;  // the fuzz harness's one piece of state, shared by every input
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  Served& s = served();
  const std::uint8_t flags = data[0];
  const std::size_t header_size = (flags & 2) ? platoon::wire::kRequestHeaderBytes : data[1];
  const std::size_t start = (flags & 2) ? 1 : 2;
  if (start > size) return 0;
  std::string header(reinterpret_cast<const char*>(data + start), std::min(header_size, size - start));
  const std::string payload(reinterpret_cast<const char*>(data + start + header.size()), size - start - header.size());
  if ((flags & 1) && header.size() == platoon::wire::kRequestHeaderBytes) {
    const std::uint32_t id = kWorker;
    std::memcpy(header.data() + 12, &id, sizeof id);
    std::memcpy(header.data() + 40, kToken.data(), kToken.size());
  }

  const std::vector<float> before(s.segment->values().begin(), s.segment->values().end());
  const auto [reply, answer] = s.server->handle_request(header, payload);
  if (reply.status != platoon::wire::Status::ok &&
      std::memcmp(before.data(), s.segment->values().data(), kSize * sizeof(float)) != 0)
    std::abort();  // a refused request changed the center
  // Keep the center finite and bounded, so later inputs keep meaning something.
  if (reply.status == platoon::wire::Status::ok)
    std::copy(s.values.begin(), s.values.end(), s.segment->values().begin());

  // The same bytes as a reply header.
  platoon::wire::ReplyHeader read;
  std::string problem;
  (void)platoon::wire::decode(data, size, read, problem);
  return 0;
}
