#include "platoon/remote/wire.hpp"

#include <bit>
#include <cstring>

#include "platoon/common/log.hpp"

namespace platoon::wire {

static_assert(std::endian::native == std::endian::little, "the wire format is little-endian, as this host must be");

namespace {

template <class T>
void put(std::string& out, std::size_t at, T value) {
  std::memcpy(out.data() + at, &value, sizeof value);
}

template <class T>
T get(const unsigned char* in, std::size_t at) {
  T value;
  std::memcpy(&value, in + at, sizeof value);
  return value;
}

bool check_magic(const unsigned char* bytes) { return std::memcmp(bytes, kMagic.data(), kMagic.size()) == 0; }

}  // namespace

std::string_view status_name(Status status) {
  switch (status) {
    case Status::ok: return "ok";
    case Status::bad_request: return "bad request";
    case Status::unauthorized: return "unauthorized";
    case Status::layout_mismatch: return "layout mismatch";
    case Status::not_ready: return "not ready";
    case Status::busy: return "busy";
  }
  return "unknown status";
}

std::string encode(const RequestHeader& h) {
  std::string out(kRequestHeaderBytes, '\0');
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  put(out, 8, static_cast<std::uint32_t>(h.op));
  put(out, 12, h.worker_id);
  put(out, 16, h.sequence);
  put(out, 24, h.chunk);
  put(out, 28, static_cast<std::uint32_t>(h.update.kind));
  put(out, 32, h.update.alpha);
  put(out, 36, h.update.beta);
  std::memcpy(out.data() + 40, h.token.data(), std::min(h.token.size(), kTokenChars));
  return out;
}

std::string encode(const ReplyHeader& h) {
  std::string out(kReplyHeaderBytes, '\0');
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  put(out, 8, static_cast<std::uint32_t>(h.status));
  put(out, 12, h.chunk);
  put(out, 16, h.sequence);
  return out;
}

bool decode(const void* data, std::size_t size, RequestHeader& h, std::string& problem) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (size != kRequestHeaderBytes) {
    problem = str_cat("a request header has ", kRequestHeaderBytes, " bytes, this one ", size);
    return false;
  }
  if (!check_magic(bytes)) {
    problem = "a request header must start with PLTNPS01";
    return false;
  }
  const auto op = get<std::uint32_t>(bytes, 8);
  if (op < static_cast<std::uint32_t>(Op::hello) || op > static_cast<std::uint32_t>(Op::pull)) {
    problem = str_cat("unknown op ", op);
    return false;
  }
  h.op = static_cast<Op>(op);
  h.worker_id = get<std::uint32_t>(bytes, 12);
  h.sequence = get<std::uint64_t>(bytes, 16);
  h.chunk = get<std::uint32_t>(bytes, 24);
  h.update.kind = static_cast<CenterUpdate::Kind>(get<std::uint32_t>(bytes, 28));
  h.update.alpha = get<float>(bytes, 32);
  h.update.beta = get<float>(bytes, 36);
  h.token.assign(reinterpret_cast<const char*>(bytes) + 40, kTokenChars);
  return true;
}

bool decode(const void* data, std::size_t size, ReplyHeader& h, std::string& problem) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (size != kReplyHeaderBytes) {
    problem = str_cat("a reply header has ", kReplyHeaderBytes, " bytes, this one ", size);
    return false;
  }
  if (!check_magic(bytes)) {
    problem = "a reply header must start with PLTNPS01";
    return false;
  }
  const auto status = get<std::uint32_t>(bytes, 8);
  if (status > static_cast<std::uint32_t>(Status::busy)) {
    problem = str_cat("unknown status ", status);
    return false;
  }
  h.status = static_cast<Status>(status);
  h.chunk = get<std::uint32_t>(bytes, 12);
  h.sequence = get<std::uint64_t>(bytes, 16);
  return true;
}

}  // namespace platoon::wire
