// Integers read from JSON that came from outside: control messages, segment
// tables of contents, checkpoint headers.
//
// nlohmann's get<T>() converts any number to any arithmetic T without a
// check: 3.7 becomes 3, -1 becomes SIZE_MAX, and a float too large for T is
// undefined behaviour. Every count, offset, id and epoch platoon reads goes
// through json_integer<T>() instead, which accepts only an integer that T
// holds and otherwise throws a nlohmann::json exception, the family the
// callers already turn into their own errors.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace platoon {

/// The integer `value` holds, as a T. Throws nlohmann::json::type_error when
/// `value` is not an integer (a float, a string, a bool, null), and
/// nlohmann::json::out_of_range when it is one that T cannot represent.
template <std::integral T>
  requires(!std::same_as<T, bool>)
[[nodiscard]] T json_integer(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (std::in_range<T>(u)) return static_cast<T>(u);
  } else if (value.is_number_integer()) {
    const auto s = value.get<std::int64_t>();
    if (std::in_range<T>(s)) return static_cast<T>(s);
  } else {
    throw nlohmann::json::type_error::create(
        302, std::string("type must be an integer, but is ") + value.type_name() + " (" + value.dump() + ")", &value);
  }
  throw nlohmann::json::out_of_range::create(406, "integer " + value.dump() + " is out of range here", &value);
}

/// json_integer<T>() of `object[key]`, or `fallback` when `object` has no
/// `key` (the checked counterpart of nlohmann's value(key, fallback)).
template <std::integral T>
  requires(!std::same_as<T, bool>)
[[nodiscard]] T json_integer_or(const nlohmann::json& object, const char* key, T fallback) {
  if (!object.is_object() || !object.contains(key)) return fallback;
  return json_integer<T>(object.at(key));
}

/// The integers of the JSON array `value`, each checked as json_integer<T>()
/// does. Throws nlohmann::json::type_error when `value` is not an array.
template <std::integral T>
  requires(!std::same_as<T, bool>)
[[nodiscard]] std::vector<T> json_integers(const nlohmann::json& value) {
  if (!value.is_array())
    throw nlohmann::json::type_error::create(
        302, std::string("type must be an array of integers, but is ") + value.type_name(), &value);
  std::vector<T> out;
  out.reserve(value.size());
  for (const nlohmann::json& element : value) out.push_back(json_integer<T>(element));
  return out;
}

}  // namespace platoon
