// The worker of the Fashion-MNIST examples: trains a model on its own copy
// of the parameters and syncs them with the job's center by EASGD every N
// minibatches (see example_controller.hpp for the protocol). With
// --standalone it trains alone, taking the same decisions locally: the
// reference for measuring what platoon costs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/model.hpp"
#include "schedule.hpp"

namespace platoon::examples {

/// Hyper-parameter defaults of one example.
struct WorkerDefaults {
  int batch = 64;
  double learning_rate = 1e-3;
  double lr_decay = 1.0;  ///< learning rate factor after each pass over the data
  std::string optimizer = "adam";
  int sync_every = 10;
  double alpha = 0.5;
  double clip_norm = 0;
  ScheduleOptions schedule;  ///< used by --standalone
};

/// Builds the model; `hidden` is the --hidden flag (0 when absent).
using ModelFactory = std::function<std::unique_ptr<Model>(std::uint64_t seed, int hidden)>;

/// main() of an example worker. Returns the process exit code.
int run_example_worker(int argc, char** argv, const WorkerDefaults& defaults, const ModelFactory& make_model);

}  // namespace platoon::examples
