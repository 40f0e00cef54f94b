#include "launch_support.hpp"

#include <cctype>

#include "platoon/common/log.hpp"

namespace platoon::launch {

std::vector<std::string> split_command(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // "" is a word of its own, so track it apart from word.empty()
  std::size_t i = 0;
  const auto unterminated = [&](char quote) {
    return UsageError(str_cat("unterminated ", quote, " quote in command '", command, "'"));
  };
  while (i < command.size()) {
    const char c = command[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      const std::size_t end = command.find('\'', i + 1);
      if (end == std::string_view::npos) throw unterminated('\'');
      word.append(command.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      ++i;
      while (true) {
        if (i >= command.size()) throw unterminated('"');
        const char d = command[i];
        if (d == '"') break;
        if (d == '\\' && i + 1 < command.size()) {
          const char next = command[i + 1];
          if (next == '\n') {  // a line continuation disappears
            i += 2;
            continue;
          }
          if (next == '\\' || next == '"' || next == '$' || next == '`') {
            word += next;
            i += 2;
            continue;
          }
        }
        word += d;
        ++i;
      }
      in_word = true;
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= command.size())
        throw UsageError(str_cat("trailing backslash in command '", command, "'"));
      if (command[i + 1] != '\n') word += command[i + 1];
      in_word = in_word || command[i + 1] != '\n';
      i += 2;
    } else {
      word += c;
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::vector<std::string> with_port(std::vector<std::string> argv, int port) {
  static constexpr std::string_view kPlaceholder = "{port}";
  const std::string value = std::to_string(port);
  bool replaced = false;
  for (std::string& arg : argv) {
    for (std::size_t at = arg.find(kPlaceholder); at != std::string::npos;
         at = arg.find(kPlaceholder, at + value.size())) {
      arg.replace(at, kPlaceholder.size(), value);
      replaced = true;
    }
  }
  if (!replaced) {
    argv.emplace_back("--port");
    argv.push_back(value);
  }
  return argv;
}

bool starts_with_timestamp(std::string_view line) {
  // YYYY-MM-DDTHH:MM:SS
  static constexpr std::string_view kPattern = "dddd-dd-ddTdd:dd:dd";
  if (line.size() < kPattern.size()) return false;
  for (std::size_t i = 0; i < kPattern.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(line[i])) != 0;
    if (kPattern[i] == 'd' ? !digit : line[i] != kPattern[i]) return false;
  }
  std::size_t i = kPattern.size();
  if (i < line.size() && (line[i] == '.' || line[i] == ',')) {
    const std::size_t start = ++i;
    while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])) != 0) ++i;
    if (i == start) return false;
  }
  if (i == line.size()) return false;
  if (line[i] == 'Z') return true;
  if (line[i] == '+' || line[i] == '-')  // +HH:MM or +HHMM
    return i + 3 <= line.size() && std::isdigit(static_cast<unsigned char>(line[i + 1])) != 0 &&
           std::isdigit(static_cast<unsigned char>(line[i + 2])) != 0;
  return false;
}

std::string stamped(std::string_view line) {
  if (starts_with_timestamp(line)) return std::string(line);
  return str_cat(utc_timestamp(), " ", line);
}

void LineSplitter::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    const std::size_t take = newline == std::string_view::npos ? bytes.size() : newline;
    const std::size_t room = max_line_ - partial_.size();
    if (take >= room) {  // the line is too long: pass on a full piece
      partial_.append(bytes.substr(0, room));
      bytes.remove_prefix(room);
      if (take == room && newline != std::string_view::npos) bytes.remove_prefix(1);
      sink_(partial_);
      partial_.clear();
      continue;
    }
    partial_.append(bytes.substr(0, take));
    if (newline == std::string_view::npos) return;
    bytes.remove_prefix(take + 1);
    sink_(partial_);
    partial_.clear();
  }
}

void LineSplitter::finish() {
  if (partial_.empty()) return;
  sink_(partial_);
  partial_.clear();
}

std::string shell_quote(std::string_view word) {
  const bool safe = !word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                           "0123456789_-+=/.,:@%") == std::string_view::npos;
  if (safe) return std::string(word);
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace platoon::launch
