#include "logs.hpp"

#include <ctime>

namespace platoon::launch {

fs::path create_run_dir(const fs::path& parent) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", &local);
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw ResourceError(str_cat("cannot create the log folder '", parent.string(), "': ", ec.message()));
  for (int n = 1; n < 1000; ++n) {
    const fs::path run = parent / (n == 1 ? std::string(stamp) : str_cat(stamp, "-", n));
    if (fs::create_directory(run, ec)) return fs::absolute(run);
    if (ec) throw ResourceError(str_cat("cannot create the run folder '", run.string(), "': ", ec.message()));
  }
  throw ResourceError(str_cat("cannot create a run folder in '", parent.string(), "': every name is taken"));
}

}  // namespace platoon::launch
