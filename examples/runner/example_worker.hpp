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
#include "flags.hpp"
#include "schedule.hpp"

namespace platoon::examples {

/// Builds the model; `hidden` is the --hidden flag (0 when absent).
using ModelFactory = std::function<std::unique_ptr<Model>(std::uint64_t seed, int hidden)>;

/// main() of an example worker (its flags: parse_worker_flags()). Returns
/// the process exit code: 0 done (or --help), 1 bad usage or an error.
int run_example_worker(int argc, char** argv, const WorkerDefaults& defaults, const ModelFactory& make_model);

}  // namespace platoon::examples
