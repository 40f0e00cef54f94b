// The checksum of platoon's headers and files: 64-bit FNV-1a. It guards
// against corruption and mistakes, not against an adversary (see the
// README's security notes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace platoon {

/// FNV-1a's initial value.
inline constexpr std::uint64_t kFnv1aOffset = 14695981039346656037ull;

/// FNV-1a (64-bit) of the `n` bytes at `data`, continuing from `hash`
/// (kFnv1aOffset to start), so that several ranges chain into one value.
std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t hash = kFnv1aOffset);

}  // namespace platoon
