// The parameter server's wire format: binary frames, little-endian, no JSON
// for numbers. Every message has two ZeroMQ frames, a fixed header and a
// payload.
//
// Request header, kRequestHeaderBytes = 72:
//   0  magic "PLTNPS01"          8 bytes
//   8  op (Op)                    u32
//  12  worker id                  u32   (from platoon-register)
//  16  sequence                   u64   (echoed in the reply)
//  24  chunk                      u32
//  28  center update kind         u32   (CenterUpdate::Kind; sync only)
//  32  alpha                      f32
//  36  beta                       f32
//  40  session token              32 ASCII hex characters (from platoon-register)
// Payload: hello: this worker's layout as JSON text; sync: the chunk's pushed
// values, float32, exactly the chunk's size; pull: empty.
//
// Reply header, kReplyHeaderBytes = 24:
//   0  magic "PLTNPS01"          8 bytes
//   8  status (Status)            u32
//  12  chunk                      u32
//  16  sequence                   u64
// Payload: ok to hello: {"chunk_elements", "num_chunks", "total_size"} as
// JSON; ok to sync: the answer (CenterUpdate); ok to pull: the chunk's
// central values; any other status: the reason, as text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "platoon/sync/sync_rules.hpp"

namespace platoon::wire {

inline constexpr std::string_view kMagic = "PLTNPS01";
inline constexpr std::size_t kRequestHeaderBytes = 72;
inline constexpr std::size_t kReplyHeaderBytes = 24;
inline constexpr std::size_t kTokenChars = 32;

enum class Op : std::uint32_t {
  hello = 1,  ///< check the layout, learn the chunking
  sync = 2,   ///< push one chunk, get the answer of its CenterUpdate
  pull = 3,   ///< read one chunk of the center
};

enum class Status : std::uint32_t {
  ok = 0,
  bad_request = 1,      ///< a malformed frame, an unknown chunk, a wrong size
  unauthorized = 2,     ///< not a registered worker, or a wrong session token
  layout_mismatch = 3,  ///< hello: the layouts differ (the text names how)
  not_ready = 4,        ///< the center does not exist yet
  busy = 5,             ///< a chunk lock could not be taken in time
};

/// "ok", "bad request", ...: for messages.
std::string_view status_name(Status status);

struct RequestHeader {
  Op op = Op::hello;
  std::uint32_t worker_id = 0;
  std::uint64_t sequence = 0;
  std::uint32_t chunk = 0;
  CenterUpdate update;
  std::string token;  ///< kTokenChars characters
};

struct ReplyHeader {
  Status status = Status::ok;
  std::uint32_t chunk = 0;
  std::uint64_t sequence = 0;
};

/// The kRequestHeaderBytes bytes of `header`. A token of another length is
/// cut or padded with zeros (and then refused by the server).
std::string encode(const RequestHeader& header);
/// The kReplyHeaderBytes bytes of `header`.
std::string encode(const ReplyHeader& header);

/// Reads a request header. Returns the problem (wrong size, wrong magic, an
/// unknown op) in `problem` and false; never throws, never reads past `size`.
bool decode(const void* data, std::size_t size, RequestHeader& header, std::string& problem);
/// Reads a reply header, as decode() above.
bool decode(const void* data, std::size_t size, ReplyHeader& header, std::string& problem);

}  // namespace platoon::wire
