// Secrets: random values from the operating system, compared in constant
// time. Used for the job key and the workers' session tokens.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace platoon {

/// `bytes` random bytes from the operating system's source (getrandom), as
/// 2·`bytes` lowercase hex digits. Throws ResourceError when the source
/// fails.
std::string random_secret_hex(std::size_t bytes);

/// Whether `a` equals `b`, in a time that depends on their lengths only, not
/// on where they first differ.
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace platoon
