// A worker of the LSTM example: a row-by-row LSTM classifier (28 steps of 28
// pixels, 128 hidden units by default). See examples/runner/example_worker.hpp.
#include "common/lstm.hpp"
#include "defaults.hpp"

int main(int argc, char** argv) {
  return platoon::examples::run_example_worker(
      argc, argv, platoon::examples::lstm::worker_defaults(), [](std::uint64_t seed, int hidden) {
        return std::make_unique<platoon::examples::Lstm>(seed, hidden > 0 ? hidden : 128);
      });
}
