// Parameter layouts: construction errors, comparison messages, JSON round trip.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/common/params.hpp"

using platoon::Layout;
using platoon::LayoutError;
using platoon::ParamView;

TEST_CASE("a layout records names, shapes and offsets in order") {
  std::vector<float> w(12), b(4);
  std::vector<ParamView> params{{"W", w.data(), {3, 4}}, {"b", b.data(), {4}}};
  const Layout layout = Layout::of(params);
  REQUIRE(layout.entries().size() == 2);
  CHECK(layout.entries()[1].offset == 12);
  CHECK(layout.total_size() == 16);
  CHECK(Layout::from_json(layout.to_json()) == layout);
}

TEST_CASE("bad parameter lists are refused with the parameter named") {
  std::vector<float> w(12);
  std::vector<ParamView> dup{{"W", w.data(), {12}}, {"W", w.data(), {12}}};
  CHECK_THROWS_WITH_AS(Layout::of(dup), doctest::Contains("'W' is used twice"), LayoutError);
  std::vector<ParamView> null{{"b", nullptr, {2}}};
  CHECK_THROWS_WITH_AS(Layout::of(null), doctest::Contains("'b'"), LayoutError);
  std::vector<ParamView> empty_shape{{"z", w.data(), {3, 0}}};
  CHECK_THROWS_WITH_AS(Layout::of(empty_shape), doctest::Contains("'z'"), LayoutError);
  CHECK_THROWS_AS(Layout::of(std::vector<ParamView>{}), LayoutError);
}

TEST_CASE("the first difference names the parameter and both shapes") {
  std::vector<float> buf(100);
  std::vector<ParamView> a{{"emb", buf.data(), {10}}, {"W", buf.data(), {3, 4}}, {"b", buf.data(), {4}}};
  std::vector<ParamView> b{{"emb", buf.data(), {10}}, {"W", buf.data(), {4, 3}}, {"b", buf.data(), {4}}};
  const auto diff = Layout::of(a).first_difference(Layout::of(b));
  REQUIRE(diff);
  CHECK(diff->find("'W'") != std::string::npos);
  CHECK(diff->find("[3, 4]") != std::string::npos);
  CHECK(diff->find("[4, 3]") != std::string::npos);
  CHECK_THROWS_WITH_AS(Layout::of(a).require_same(Layout::of(b), "the segment", "this worker"),
                       doctest::Contains("shape [3, 4] in the segment and [4, 3] in this worker"), LayoutError);

  std::vector<ParamView> reordered{{"emb", buf.data(), {10}}, {"b", buf.data(), {4}}, {"W", buf.data(), {3, 4}}};
  CHECK(Layout::of(a).first_difference(Layout::of(reordered))->find("#1 is 'W'") != std::string::npos);
  std::vector<ParamView> shorter{{"emb", buf.data(), {10}}, {"W", buf.data(), {3, 4}}};
  CHECK(Layout::of(a).first_difference(Layout::of(shorter))->find("'b'") != std::string::npos);
  CHECK_FALSE(Layout::of(a).first_difference(Layout::of(a)));
}

TEST_CASE("json_integer takes only integers its type holds") {
  using platoon::json_integer;
  using nlohmann::json;
  CHECK(json_integer<std::size_t>(json(7)) == 7);
  CHECK(json_integer<int>(json(-7)) == -7);
  CHECK(json_integer<std::uint64_t>(json(18446744073709551615ULL)) == 18446744073709551615ULL);
  CHECK(json_integer<std::int64_t>(json::parse("-9223372036854775808")) == INT64_MIN);
  CHECK_THROWS_WITH_AS(static_cast<void>(json_integer<std::size_t>(json(-1))), doctest::Contains("out of range"), json::out_of_range);
  CHECK_THROWS_AS(static_cast<void>(json_integer<int>(json(2147483648LL))), json::out_of_range);
  CHECK_THROWS_AS(static_cast<void>(json_integer<std::int64_t>(json(18446744073709551615ULL))), json::out_of_range);
  CHECK_THROWS_WITH_AS(static_cast<void>(json_integer<std::size_t>(json(1.6e31))), doctest::Contains("must be an integer"),
                       json::type_error);
  CHECK_THROWS_AS(static_cast<void>(json_integer<long>(json(3.0))), json::type_error);
  CHECK_THROWS_AS(static_cast<void>(json_integer<long>(json("3"))), json::type_error);
  CHECK_THROWS_AS(static_cast<void>(json_integer<long>(json(true))), json::type_error);
  CHECK_THROWS_AS(static_cast<void>(json_integer<long>(json())), json::type_error);
  CHECK(platoon::json_integers<std::size_t>(json::parse("[1, 2, 3]")) == std::vector<std::size_t>{1, 2, 3});
  CHECK_THROWS_AS(static_cast<void>(platoon::json_integers<std::size_t>(json::parse("[1, 2.5]"))), json::type_error);
  CHECK_THROWS_AS(static_cast<void>(platoon::json_integers<std::size_t>(json(4))), json::type_error);
}
