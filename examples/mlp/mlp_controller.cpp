// The controller of the MLP example. See examples/runner/example_controller.hpp.
//   mlp_controller [--port 5567] [--max-time S] [--max-minibatches N] [--valid-every N]
//                  [--patience N] [--target-accuracy A] [--checkpoint PATH] [--resume PATH]
#include "defaults.hpp"
#include "example_controller.hpp"

int main(int argc, char** argv) {
  return platoon::examples::run_example_controller(argc, argv, platoon::examples::mlp::schedule_defaults());
}
