// Command-line flags of the example programs: "--name value" pairs and
// "--name" switches, with clear errors for unknown names and bad values.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace platoon::examples {

class Flags {
 public:
  /// Parses argv[1..]. `switches` are the flags that take no value. Throws
  /// platoon::Error for a flag not in `known` or a value that is missing.
  Flags(int argc, char** argv, const std::set<std::string>& known, const std::set<std::string>& switches);

  [[nodiscard]] bool has(const std::string& name) const { return values_.contains(name); }
  /// The value of `name`, or `fallback` when absent. Throws platoon::Error
  /// naming the flag when the value does not parse.
  [[nodiscard]] std::string get(const std::string& name, const std::string& fallback) const;
  [[nodiscard]] long get_int(const std::string& name, long fallback) const;
  [[nodiscard]] double get_double(const std::string& name, double fallback) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace platoon::examples
