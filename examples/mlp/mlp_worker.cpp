// A worker of the MLP example (784-256-128-10). See examples/runner/example_worker.hpp.
//   mlp_worker [--port 5567 | --standalone] [--data DIR] [--batch 64] [--lr 0.001]
//              [--sync-every 10] [--alpha 0.5] [--train-limit N]
#include "common/mlp.hpp"
#include "defaults.hpp"

int main(int argc, char** argv) {
  return platoon::examples::run_example_worker(
      argc, argv, platoon::examples::mlp::worker_defaults(), [](std::uint64_t seed, int hidden) {
        return std::make_unique<platoon::examples::Mlp>(seed, hidden > 0 ? hidden : 256, hidden > 0 ? hidden / 2 : 128);
      });
}
