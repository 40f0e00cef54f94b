#include "platoon/common/params.hpp"

#include <set>

#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

namespace {

// The most float32 elements a layout may hold: their bytes must fit in a
// signed 64-bit file offset.
constexpr std::size_t kMaxElements = std::size_t{1} << 61;

// The product of `shape`; LayoutError naming the parameter when it is too large.
std::size_t checked_count(const std::string& name, const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (const std::size_t dim : shape)
    if (__builtin_mul_overflow(n, dim, &n) || n > kMaxElements)
      throw LayoutError(str_cat("parameter '", name, "' of shape ", shape_to_string(shape), " is too large (over 2^61 ",
                                "elements)"));
  return n;
}

// total += n; LayoutError when the layout grows too large.
void add_elements(std::size_t& total, std::size_t n, const std::string& name) {
  if (__builtin_add_overflow(total, n, &total) || total > kMaxElements)
    throw LayoutError(str_cat("the layout is too large (over 2^61 elements) at parameter '", name, "'"));
}

}  // namespace

std::size_t ParamView::size() const {
  std::size_t n = 1;
  for (std::size_t dim : shape) n *= dim;
  return n;
}

std::string shape_to_string(const std::vector<std::size_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

Layout Layout::of(std::span<const ParamView> params) {
  Layout layout;
  std::set<std::string> names;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const ParamView& p = params[i];
    if (p.name.empty()) throw LayoutError(str_cat("parameter #", i, " has an empty name"));
    if (!names.insert(p.name).second)
      throw LayoutError(str_cat("parameter name '", p.name, "' is used twice (#", i, ")"));
    if (p.data == nullptr) throw LayoutError(str_cat("parameter '", p.name, "' has a null data pointer"));
    const std::size_t n = checked_count(p.name, p.shape);
    if (n == 0)
      throw LayoutError(str_cat("parameter '", p.name, "' has no elements (shape ", shape_to_string(p.shape), ")"));
    layout.entries_.push_back({p.name, p.shape, "float32", layout.total_size_, n});
    add_elements(layout.total_size_, n, p.name);
  }
  if (layout.entries_.empty()) throw LayoutError("the parameter list is empty");
  return layout;
}

std::optional<std::string> Layout::first_difference(const Layout& other) const {
  const std::size_t common = std::min(entries_.size(), other.entries_.size());
  for (std::size_t i = 0; i < common; ++i) {
    const LayoutEntry& a = entries_[i];
    const LayoutEntry& b = other.entries_[i];
    if (a.name != b.name)
      return str_cat("parameter #", i, " is '", a.name, "' ", shape_to_string(a.shape), " in one and '", b.name,
                     "' ", shape_to_string(b.shape), " in the other");
    if (a.shape != b.shape)
      return str_cat("parameter '", a.name, "' has shape ", shape_to_string(a.shape), " in one and ",
                     shape_to_string(b.shape), " in the other");
    if (a.dtype != b.dtype)
      return str_cat("parameter '", a.name, "' has dtype ", a.dtype, " in one and ", b.dtype, " in the other");
  }
  if (entries_.size() != other.entries_.size()) {
    const bool first_longer = entries_.size() > other.entries_.size();
    const LayoutEntry& extra = first_longer ? entries_[common] : other.entries_[common];
    return str_cat("parameter '", extra.name, "' ", shape_to_string(extra.shape), " (#", common, ") exists only in ",
                   first_longer ? "one" : "the other", " (", entries_.size(), " vs ", other.entries_.size(),
                   " parameters)");
  }
  return std::nullopt;
}

void Layout::require_same(const Layout& other, const std::string& expected_what,
                          const std::string& actual_what) const {
  if (auto diff = first_difference(other)) {
    // Name the sides explicitly rather than "one" and "the other".
    std::string text = *diff;
    auto replace = [&text](const std::string& from, const std::string& to) {
      if (auto pos = text.find(from); pos != std::string::npos) text.replace(pos, from.size(), to);
    };
    replace("in one and", "in " + expected_what + " and");
    replace("in the other", "in " + actual_what);
    replace("only in one", "only in " + expected_what);
    replace("only in the other", "only in " + actual_what);
    throw LayoutError("parameter layout mismatch: " + text);
  }
}

nlohmann::json Layout::to_json() const {
  nlohmann::json params = nlohmann::json::array();
  for (const LayoutEntry& e : entries_)
    params.push_back({{"name", e.name}, {"shape", e.shape}, {"dtype", e.dtype}, {"offset", e.offset}});
  return {{"total_size", total_size_}, {"params", params}};
}

Layout Layout::from_json(const nlohmann::json& j) {
  try {
    Layout layout;
    for (const auto& p : j.at("params")) {
      LayoutEntry e;
      e.name = p.at("name").get<std::string>();
      e.shape = json_integers<std::size_t>(p.at("shape"));
      e.dtype = p.at("dtype").get<std::string>();
      e.offset = json_integer<std::size_t>(p.at("offset"));
      e.size = checked_count(e.name, e.shape);
      if (e.offset != layout.total_size_)
        throw LayoutError(str_cat("layout entry '", e.name, "' has offset ", e.offset, ", expected ",
                                  layout.total_size_));
      add_elements(layout.total_size_, e.size, e.name);
      layout.entries_.push_back(std::move(e));
    }
    if (layout.total_size_ != json_integer<std::size_t>(j.at("total_size")))
      throw LayoutError("layout total_size does not match the sum of its parameters");
    return layout;
  } catch (const nlohmann::json::exception& e) {
    throw LayoutError(str_cat("malformed layout description: ", e.what()));
  }
}

}  // namespace platoon
