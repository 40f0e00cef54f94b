// The collective layer: operations that every worker of a group calls
// together, in the same order, with the same sizes.
//
//   platoon::Collective& group = soldier.group();
//   group.all_reduce(gradients, platoon::ReduceOp::sum);   // every rank gets the sum
//   group.broadcast(parameters, /*root=*/0);               // every rank gets rank 0's values
//   group.barrier();
//   std::vector<double> all = group.all_gather(mine);       // small values, rank-major
//
// A group is numbered by its epoch: the controller forms epoch 0 from the
// first workers, and a new epoch whenever a worker is lost or joins. Ranks are
// 0..size()-1 within an epoch. Every call has a bound. A peer that dies or
// stalls makes the call fail on every other rank with PeerLostError (naming
// the epoch, the lost rank and its pid) within that bound; the group is then
// broken, and the workers go on in the next epoch (Soldier::regroup()).
//
// Backends: shared memory (ShmCollective, the workers of one host). The
// interface is what an MPI backend (across hosts) or an NCCL backend (GPU
// buffers) implements as well.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace platoon {

/// How all_reduce combines the ranks' values.
enum class ReduceOp {
  sum,   ///< element-wise sum over the ranks
  mean,  ///< the sum divided by the number of ranks
};

/// "sum" or "mean".
const char* to_string(ReduceOp op);

/// Where a rank stands in its group.
struct GroupPosition {
  std::uint64_t epoch = 0;
  int rank = 0;
  int size = 1;
};

/// A group of workers that run collectives together. Not thread-safe: one
/// thread of each rank calls it.
class Collective {
 public:
  /// The largest span all_gather accepts, in values.
  static constexpr std::size_t kMaxGatherValues = 64;

  virtual ~Collective() = default;

  [[nodiscard]] virtual GroupPosition position() const = 0;
  [[nodiscard]] int rank() const { return position().rank; }
  [[nodiscard]] int size() const { return position().size; }
  [[nodiscard]] std::uint64_t epoch() const { return position().epoch; }

  /// The bound of every call that is not given its own.
  [[nodiscard]] virtual std::chrono::milliseconds timeout() const = 0;

  /// Combines `data` over every rank, in place: afterwards every rank holds
  /// the same values, bitwise (the summation order is the same everywhere).
  /// Every rank must pass the same number of values; otherwise every rank
  /// throws Error naming the sizes. Throws PeerLostError if a peer dies or
  /// does not arrive within `timeout`.
  virtual void all_reduce(std::span<float> data, ReduceOp op, std::chrono::milliseconds timeout) = 0;
  void all_reduce(std::span<float> data, ReduceOp op = ReduceOp::sum) { all_reduce(data, op, timeout()); }

  /// Copies rank `root`'s `data` into every other rank's `data`. Same sizes
  /// everywhere, as for all_reduce.
  virtual void broadcast(std::span<float> data, int root, std::chrono::milliseconds timeout) = 0;
  void broadcast(std::span<float> data, int root = 0) { broadcast(data, root, timeout()); }

  /// Bytes from `root` to every rank: the root's `data` replaces the others'
  /// (whatever their size before). For small messages (a JSON reply).
  virtual void broadcast_bytes(std::string& data, int root, std::chrono::milliseconds timeout) = 0;
  void broadcast_bytes(std::string& data, int root = 0) { broadcast_bytes(data, root, timeout()); }

  /// Returns when every rank has called it.
  virtual void barrier(std::chrono::milliseconds timeout) = 0;
  void barrier() { barrier(timeout()); }

  /// Every rank's `values` (at most kMaxGatherValues, the same count on
  /// every rank), concatenated in rank order. Doubles hold integers exactly
  /// up to 2^53: counts of samples and correct answers travel this way.
  virtual std::vector<double> all_gather(std::span<const double> values, std::chrono::milliseconds timeout) = 0;
  std::vector<double> all_gather(std::span<const double> values) { return all_gather(values, timeout()); }

  /// A description for logs: "epoch 3, rank 1 of 2".
  [[nodiscard]] std::string describe() const;
};

}  // namespace platoon
