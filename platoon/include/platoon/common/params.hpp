// How users describe their parameters to platoon: named float32 buffers, in
// order. The same list must be given on every worker of a job; the layout
// derived from it is written into the shared segment's header and checked by
// every worker that attaches.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace platoon {

/// One parameter buffer owned by the user: a name, the address of its first
/// element and its shape (row-major, float32, contiguous). platoon never
/// takes ownership; the buffer must outlive the Soldier that syncs it.
struct ParamView {
  std::string name;
  float* data = nullptr;
  std::vector<std::size_t> shape;

  /// Number of elements: the product of the shape (1 for an empty shape).
  [[nodiscard]] std::size_t size() const;
  /// The buffer as a span of size() floats.
  [[nodiscard]] std::span<float> values() const { return {data, size()}; }
};

/// One entry of a layout: where a parameter lives in the flat vector.
struct LayoutEntry {
  std::string name;
  std::vector<std::size_t> shape;
  std::string dtype = "float32";
  std::size_t offset = 0;  ///< in elements from the start of the flat vector
  std::size_t size = 0;    ///< in elements

  friend bool operator==(const LayoutEntry&, const LayoutEntry&) = default;
};

/// The ordered description of every parameter, as stored in a segment header.
class Layout {
 public:
  Layout() = default;
  /// Builds the layout of `params` in the order given. Throws LayoutError on
  /// an empty name, a duplicate name, a null pointer or a zero-sized buffer.
  static Layout of(std::span<const ParamView> params);

  [[nodiscard]] const std::vector<LayoutEntry>& entries() const { return entries_; }
  /// Total number of float32 elements.
  [[nodiscard]] std::size_t total_size() const { return total_size_; }

  /// The first difference between this (the expected layout, e.g. from the
  /// segment) and `other` (e.g. this worker's), as a sentence naming the
  /// parameter and both shapes; nullopt when they are equal.
  [[nodiscard]] std::optional<std::string> first_difference(const Layout& other) const;

  /// Throws LayoutError with first_difference() when the layouts differ.
  /// `expected_what` and `actual_what` name the two sides in the message.
  void require_same(const Layout& other, const std::string& expected_what,
                    const std::string& actual_what) const;

  [[nodiscard]] nlohmann::json to_json() const;
  /// Parses a layout written by to_json(); throws LayoutError on bad input.
  static Layout from_json(const nlohmann::json& j);

  friend bool operator==(const Layout&, const Layout&) = default;

 private:
  std::vector<LayoutEntry> entries_;
  std::size_t total_size_ = 0;
};

/// "[3, 4]": how shapes are printed in messages.
std::string shape_to_string(const std::vector<std::size_t>& shape);

}  // namespace platoon
