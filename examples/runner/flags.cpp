#include "flags.hpp"

#include <cstdlib>

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::examples {

Flags::Flags(int argc, char** argv, const std::set<std::string>& known, const std::set<std::string>& switches) {
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (!known.contains(name) && !switches.contains(name)) {
      std::string list;
      for (const auto& k : known) list += " " + k;
      for (const auto& s : switches) list += " " + s;
      throw Error(str_cat("unknown flag '", name, "'; known flags:", list));
    }
    if (switches.contains(name)) {
      values_[name] = "1";
      continue;
    }
    if (i + 1 >= argc) throw Error(str_cat("flag ", name, " needs a value"));
    values_[name] = argv[++i];
  }
}

std::string Flags::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long Flags::get_int(const std::string& name, long fallback) const {
  if (!has(name)) return fallback;
  const std::string& text = values_.at(name);
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') throw Error(str_cat("flag ", name, " needs an integer, got '", text, "'"));
  return value;
}

double Flags::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string& text = values_.at(name);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw Error(str_cat("flag ", name, " needs a number, got '", text, "'"));
  return value;
}

}  // namespace platoon::examples
