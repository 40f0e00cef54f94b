// The controller of the LSTM example. See examples/runner/example_controller.hpp.
#include "defaults.hpp"
#include "example_controller.hpp"

int main(int argc, char** argv) {
  return platoon::examples::run_example_controller(argc, argv, platoon::examples::lstm::schedule_defaults());
}
