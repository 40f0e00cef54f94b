#include "platoon/common/checksum.hpp"

namespace platoon {

std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t hash) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace platoon
