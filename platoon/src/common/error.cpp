#include "platoon/common/error.hpp"

#include "platoon/common/log.hpp"

namespace platoon::detail {

void throw_internal(const char* condition, const char* file, int line, const std::string& message) {
  throw InternalError(str_cat("platoon internal error at ", file, ":", line, ": ", condition,
                              " does not hold: ", message));
}

}  // namespace platoon::detail
