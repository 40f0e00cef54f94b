// The shared-memory collective, one thread per rank: results against a
// serial sum in rank order (bitwise), every path (small, large, registered,
// larger than a slot), agreement checks, and a peer that never arrives.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/common/error.hpp"
#include "platoon/shm/shm_object.hpp"
#include "test_support.hpp"
#include "thread_group.hpp"

using namespace platoon;
using platoon::testing::run_ranks;
using platoon::testing::ThreadGroup;
using platoon::testing::unique_name;

namespace {

float value_of(int rank, std::size_t i) {
  // Values of mixed magnitude and sign, so that the summation order shows.
  const std::uint64_t x = (static_cast<std::uint64_t>(rank) * 2654435761u + i * 40503u) % 100003u;
  return (static_cast<float>(x) - 50000.0f) * (rank % 2 == 0 ? 1e-3f : 7.1e-1f);
}

// The inputs are stored first, as the ranks store theirs: a value computed
// and added in one expression could be fused (FMA) and round differently.
std::vector<float> serial_sum(int ranks, std::size_t n, ReduceOp op) {
  std::vector<std::vector<float>> inputs(ranks, std::vector<float>(n));
  for (int r = 0; r < ranks; ++r)
    for (std::size_t i = 0; i < n; ++i) inputs[r][i] = value_of(r, i);
  std::vector<float> sum(n);
  for (std::size_t i = 0; i < n; ++i) {
    float s = inputs[0][i];
    for (int r = 1; r < ranks; ++r) s += inputs[r][i];
    sum[i] = op == ReduceOp::mean ? s / static_cast<float>(ranks) : s;
  }
  return sum;
}

bool bitwise_equal(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

void check_all_reduce(int ranks, std::size_t n, std::size_t slot_elements, bool registered, ReduceOp op) {
  CAPTURE(ranks);
  CAPTURE(n);
  CAPTURE(slot_elements);
  CAPTURE(registered);
  ThreadGroup group(ranks, slot_elements);
  const std::vector<float> expected = serial_sum(ranks, n, op);
  std::vector<std::vector<float>> results(ranks);
  run_ranks(ranks, [&](int rank) {
    auto c = group.attach(rank);
    std::vector<float> own(n);
    std::span<float> data(own);
    if (registered) data = c->registered_buffer().subspan(0, n);
    for (std::size_t i = 0; i < n; ++i) data[i] = value_of(rank, i);
    c->all_reduce(data, op);
    results[rank].assign(data.begin(), data.end());
  });
  for (int r = 0; r < ranks; ++r) {
    CAPTURE(r);
    CHECK(bitwise_equal(results[r], expected));
  }
}

}  // namespace

TEST_CASE("all_reduce equals the serial sum in rank order, bitwise, on every rank") {
  const std::size_t sizes[] = {0, 1, 7, 1023, (std::size_t{1} << 20) + 3, 5'000'000};
  for (const int ranks : {1, 2, 3, 8})
    for (const std::size_t n : sizes) check_all_reduce(ranks, n, std::max<std::size_t>(n, 1), false, ReduceOp::sum);
}

TEST_CASE("all_reduce of a registered buffer reduces in place, small and large") {
  for (const int ranks : {2, 3})
    for (const std::size_t n : {std::size_t{1023}, std::size_t{1} << 20, std::size_t{3'000'001}})
      check_all_reduce(ranks, n, n, true, ReduceOp::sum);
}

TEST_CASE("all_reduce mean, and data larger than a slot goes through in rounds") {
  check_all_reduce(3, 1000, 1000, false, ReduceOp::mean);
  check_all_reduce(3, 2'000'000, 2'000'000, false, ReduceOp::mean);
  check_all_reduce(2, 100'003, 4096, false, ReduceOp::sum);      // small rounds
  check_all_reduce(3, 3'000'000, 600'000, false, ReduceOp::sum);  // large rounds
}

TEST_CASE("broadcast, broadcast_bytes, barrier and all_gather") {
  const int ranks = 3;
  ThreadGroup group(ranks, 1000);
  run_ranks(ranks, [&](int rank) {
    auto c = group.attach(rank);
    std::vector<float> v(2500, static_cast<float>(rank));  // larger than a slot
    c->broadcast(v, 2);
    for (float x : v) REQUIRE(x == 2.0f);

    std::string message = rank == 1 ? std::string(10'000, 'x') + "end" : "ignored";
    c->broadcast_bytes(message, 1);
    CHECK(message.size() == 10'003);
    CHECK(message.ends_with("xend"));

    c->barrier();
    const double mine[2] = {static_cast<double>(rank), 10.0 * rank};
    const std::vector<double> all = c->all_gather(mine);
    REQUIRE(all.size() == 6);
    for (int k = 0; k < ranks; ++k) {
      CHECK(all[2 * k] == k);
      CHECK(all[2 * k + 1] == 10.0 * k);
    }
    CHECK(c->position().epoch == 7);
    CHECK(c->describe() == str_cat("epoch 7, rank ", rank, " of 3"));
  });
}

TEST_CASE("ranks that disagree on the size all get an error naming both sizes") {
  ThreadGroup group(2, 100);
  std::vector<std::string> errors(2);
  run_ranks(2, [&](int rank) {
    auto c = group.attach(rank);
    std::vector<float> v(rank == 0 ? 10 : 12, 1.0f);
    try {
      c->all_reduce(v);
    } catch (const Error& e) {
      errors[rank] = e.what();
    }
    CHECK(c->broken());
  });
  for (const std::string& e : errors) {
    CAPTURE(e);
    CHECK(e.find("epoch 7") != std::string::npos);
    CHECK(e.find("rank 0 passed 10 values, rank 1 passed 12") != std::string::npos);
  }
}

TEST_CASE("a rank outside the group, or at another process's rank, is refused") {
  ThreadGroup group(2, 10);
  CHECK_THROWS_WITH_AS(ShmCollective::attach(group.name, 2, group.slots[0]), doctest::Contains("outside group epoch 7"),
                       Error);
  CHECK_THROWS_WITH_AS(ShmCollective::attach(group.name, -1, group.slots[0]), doctest::Contains("outside group epoch 7"),
                       Error);
  CHECK_THROWS_WITH_AS(ShmCollective::attach(group.name, 0, group.slots[1]), doctest::Contains("names slot"), Error);
  const std::string other = unique_name("platoon-test-group");
  GroupSegment foreign =
      GroupSegment::create(other, "job", 1, {{ProcessId{1, 1}, group.slots[0].name(), 10}}, ProcessId::self());
  CHECK_THROWS_WITH_AS(ShmCollective::attach(other, 0, group.slots[0]), doctest::Contains("not part of that group"),
                       Error);
  GroupSegment::remove(other);
  CHECK_THROWS_AS(ShmCollective::attach(unique_name("platoon-test-missing"), 0, group.slots[0]), ResourceError);
  CHECK_THROWS_AS(group.attach(0, std::chrono::milliseconds(0)), Error);
  // A slot smaller than the group says.
  const std::string small = unique_name("platoon-test-group");
  ShmObject tiny = create_slot(small + ".slot", 4, ProcessId::self());
  GroupSegment lying = GroupSegment::create(small, "job", 1, {{ProcessId::self(), tiny.name(), 1000}}, ProcessId::self());
  CHECK_THROWS_WITH_AS(ShmCollective::attach(small, 0, tiny), doctest::Contains("has 4 floats, the group says 1000"), LayoutError);
  GroupSegment::remove(small);
  ShmObject::remove(tiny.name());
}

TEST_CASE("a peer that never arrives breaks the group on every rank within the bound") {
  const int ranks = 3;
  ThreadGroup group(ranks, 100);
  std::vector<std::string> errors(ranks);
  std::vector<double> waited_ms(ranks);
  run_ranks(ranks, [&](int rank) {
    auto c = group.attach(rank, std::chrono::milliseconds(300));
    std::vector<float> v(50, 1.0f);
    c->all_reduce(v);  // everyone arrives once
    if (rank == 2) return;  // then rank 2 stalls for good
    const auto started = std::chrono::steady_clock::now();
    try {
      c->all_reduce(v);
    } catch (const PeerLostError& e) {
      errors[rank] = e.what();
    }
    waited_ms[rank] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    // Every later call fails at once.
    CHECK_THROWS_AS(c->barrier(), PeerLostError);
  });
  for (int r = 0; r < 2; ++r) {
    CAPTURE(errors[r]);
    CHECK(errors[r].find("rank 2 (pid ") != std::string::npos);
    CHECK(errors[r].find("epoch 7") != std::string::npos);
    CHECK(waited_ms[r] < 300 * 20);  // bounded: the no-progress limit plus scheduling, never a hang
  }
  CHECK(group.segment->lost_rank() == 2);
}

TEST_CASE("a retired epoch releases a waiting rank at once") {
  ThreadGroup group(2, 10);
  auto c = group.attach(0, std::chrono::seconds(60));
  std::thread retire([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    group.segment->retire();
  });
  CHECK_THROWS_WITH_AS(c->barrier(), doctest::Contains("epoch 7 is over"), PeerLostError);
  retire.join();
}

TEST_CASE("a corrupted group header is refused") {
  ThreadGroup group(2, 10);
  auto mapping = ShmObject::open(group.name, true);
  auto* bytes = static_cast<unsigned char*>(mapping.data());
  CHECK(group_header_problem(bytes, mapping.size()).empty());
  CHECK(group_header_problem(bytes, 100).find("smaller than its header") != std::string::npos);
  bytes[32] ^= 0xff;  // the epoch: checksummed, and no size
  CHECK(group_header_problem(bytes, mapping.size()).find("checksum") != std::string::npos);
  CHECK_THROWS_WITH_AS(group.attach(0), doctest::Contains("checksum"), LayoutError);
  bytes[32] ^= 0xff;
  bytes[53] ^= 0x10;  // the ranks' offset: the structure is checked before the checksum
  CHECK(group_header_problem(bytes, mapping.size()).find("out of bounds") != std::string::npos);
  bytes[53] ^= 0x10;
  CHECK(group_header_problem(bytes, mapping.size()).empty());
  bytes[0] = 'X';
  CHECK(group_header_problem(bytes, mapping.size()).find("bad magic") != std::string::npos);
}
