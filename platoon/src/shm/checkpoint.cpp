#include "platoon/shm/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "platoon/common/checksum.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/file.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

// The float values are written as they lie in memory.
static_assert(std::endian::native == std::endian::little, "checkpoint files are little-endian");

namespace {

constexpr char kMagic[8] = {'P', 'L', 'A', 'T', 'O', 'O', 'N', 'C'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kPrefixBytes = sizeof(kMagic) + 4 + 8;  // magic, version, header length

std::uint64_t fnv1a64(std::string_view bytes) { return fnv1a(bytes.data(), bytes.size()); }

std::string_view as_bytes(std::span<const float> values) {
  return {reinterpret_cast<const char*>(values.data()), values.size_bytes()};
}

template <class T>
void put_le(std::string& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

template <class T>
T get_le(const char* in) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const Layout& layout, std::span<const float> values,
                     const nlohmann::json& metadata) {
  if (values.size() != layout.total_size())
    throw LayoutError(str_cat("cannot save checkpoint ", path, ": ", values.size(), " values given for a layout of ",
                              layout.total_size()));
  const std::string_view data = as_bytes(values);
  const std::string header = nlohmann::json{{"layout", layout.to_json()},
                                            {"count", values.size()},
                                            {"checksum", fnv1a64(data)},
                                            {"metadata", metadata.is_null() ? nlohmann::json::object() : metadata}}
                                 .dump();
  std::string prefix(kMagic, sizeof(kMagic));
  put_le<std::uint32_t>(prefix, kVersion);
  put_le<std::uint64_t>(prefix, header.size());
  write_file_atomically(path, {prefix, header, data}, 0600);
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  auto error = [&path](const auto&... args) { return FileError(str_cat("checkpoint ", path, " ", args...)); };

  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const std::uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (!in || ec) throw error("cannot be read: ", ec ? ec.message() : errno_text(errno));

  char prefix[kPrefixBytes] = {};
  in.read(prefix, kPrefixBytes);
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got >= sizeof(kMagic) && std::memcmp(prefix, kMagic, sizeof(kMagic)) != 0)
    throw error("is not a platoon checkpoint (bad magic)");
  if (got < kPrefixBytes)
    throw error("is truncated: ", file_size, " bytes, shorter than the ", kPrefixBytes, "-byte prefix");
  const auto version = get_le<std::uint32_t>(prefix + sizeof(kMagic));
  if (version != kVersion) throw error("has format version ", version, "; this build reads version ", kVersion);
  const auto header_bytes = get_le<std::uint64_t>(prefix + sizeof(kMagic) + 4);
  if (header_bytes > file_size - kPrefixBytes)
    throw error("is truncated: its header announces ", header_bytes, " bytes but the file has ", file_size,
                " bytes in all");

  std::string header_text(header_bytes, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_bytes));
  if (static_cast<std::uint64_t>(in.gcount()) != header_bytes) throw error("could not be read (header)");

  Checkpoint checkpoint;
  std::size_t count = 0;
  std::uint64_t checksum = 0;
  try {
    const nlohmann::json header = nlohmann::json::parse(header_text);
    checkpoint.layout = Layout::from_json(header.at("layout"));
    count = json_integer<std::size_t>(header.at("count"));
    checksum = json_integer<std::uint64_t>(header.at("checksum"));
    checkpoint.metadata = header.value("metadata", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    throw error("has a malformed header: ", e.what());
  } catch (const LayoutError& e) {
    throw error("has a malformed layout: ", e.what());
  }
  if (count != checkpoint.layout.total_size())
    throw error("is malformed: it holds ", count, " values but its layout has ", checkpoint.layout.total_size());

  const std::uint64_t data_bytes = std::uint64_t{count} * sizeof(float);
  const std::uint64_t expected_size = kPrefixBytes + header_bytes + data_bytes;
  if (file_size < expected_size)
    throw error("is truncated: ", file_size, " bytes, but its header announces ", count, " values (", expected_size,
                " bytes in all)");
  if (file_size > expected_size)
    throw error("is malformed: ", file_size - expected_size, " bytes follow the ", count, " values");

  checkpoint.values.resize(count);
  in.read(reinterpret_cast<char*>(checkpoint.values.data()), static_cast<std::streamsize>(data_bytes));
  if (static_cast<std::uint64_t>(in.gcount()) != data_bytes) throw error("could not be read (data)");
  if (fnv1a64(as_bytes(checkpoint.values)) != checksum)
    throw error("is corrupted: the checksum of its values does not match its header");
  return checkpoint;
}

void load_checkpoint_into(const std::filesystem::path& path, const Layout& expected, std::span<float> values) {
  if (values.size() != expected.total_size())
    throw LayoutError(str_cat("cannot load checkpoint ", path, " into ", values.size(), " values: the layout has ",
                              expected.total_size()));
  Checkpoint checkpoint = load_checkpoint(path);
  checkpoint.layout.require_same(expected, str_cat("the checkpoint ", path), "this job");
  std::copy(checkpoint.values.begin(), checkpoint.values.end(), values.begin());
}

}  // namespace platoon
