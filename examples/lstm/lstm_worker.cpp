// A worker of the LSTM example on Fashion-MNIST: a row-by-row LSTM
// classifier (28 steps of 28 pixels, 128 hidden units by default).
//
//   lstm_worker --mode sync  [--port 5567] [--batch 128] [--lr 0.002] [--optimizer adam]
//              [--weight-decay W] [--lr-decay 0.85] [--clip-norm 0] [--seed 1] [--hidden 128]
//              [--data DIR] [--train-limit N]
//   lstm_worker [--mode easgd] [--port 5567 | --standalone] ...   (see examples/runner/example_worker.hpp)
//
// --mode sync is synchronous data parallelism, and this file is its
// template: copy it to train your own model. Every worker computes the
// gradient of its slice of one global minibatch (the same size whatever the
// number of workers), one all-reduce averages them, and every worker applies
// the same update, so all replicas stay identical. The controller
// (lstm_controller --group-size N) decides, through rank 0, when the group
// trains, validates and stops.
#include <cmath>
#include <cstdio>
#include <numeric>
#include <iostream>

#include "common/lstm.hpp"
#include "sync_data.hpp"
#include "defaults.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/soldier.hpp"
#include "platoon/sync/update_rules.hpp"

namespace {

using nlohmann::json;
using namespace platoon;
using namespace platoon::examples;

int sync_main(int argc, char** argv) {
  const SyncFlags flags = parse_sync_flags(argc, argv, lstm::sync_defaults());

  // Soldier: joins the job (the data below is shared per job and host).
  Soldier::Options options;
  options.endpoint = flags.endpoint;
  Soldier soldier(options);

  // Data: the host's one copy of Fashion-MNIST in shared memory, and the
  // global minibatches that every rank cuts the same way.
  const SharedFashionMnist data = map_shared_fashion_mnist(soldier, flags.data);
  const TrainValidSplit split = split_train_valid(data.train.count, 5000, flags.train_limit);
  GlobalBatches batches(split.train, flags.global_batch, flags.seed);

  // Model and update rule; their state is what a joining worker receives.
  Lstm model(flags.seed, flags.hidden > 0 ? flags.hidden : 128);
  const std::unique_ptr<UpdateRule> rule = make_update_rule(flags.optimizer, flags.learning_rate, flags.weight_decay);
  rule->attach(model.num_params());

  // Init: rank 0's parameters, optimizer state and progress reach everyone.
  Soldier::GroupState state{model.param_views(), rule->state(), {{"step", 0}}};
  if (!soldier.init_group(state)) return 0;
  const std::span<float> grad = soldier.gradients();  // in shared memory: reduced in place

  // Loop: rank 0 asks the controller for the whole group; every rank gets
  // the same answer.
  Batch batch;
  long done = 0, samples = 0, steps = 0;
  bool job_over = false;
  const auto started = std::chrono::steady_clock::now();
  double valid_seconds = 0;
  while (!job_over) {
    const json what = soldier.send_req_collective("next", {{"done", done}});
    done = 0;
    if (what.is_null() || what.at("action") == "stop") break;

    if (what.at("action") == "valid") {
      // Validate: each rank classifies its slice; the counts are summed exactly.
      const auto v0 = std::chrono::steady_clock::now();
      try {
        const double accuracy = sliced_accuracy(soldier.group(), model, data.train, split.valid);
        soldier.send_req_collective({{"valid_error", 1.0 - accuracy}});
      } catch (const PeerLostError&) {
        if (!soldier.regroup()) break;
        soldier.send_req_collective({{"valid_error", nullptr}});  // abandoned; the next one will tell
      }
      valid_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - v0).count();
      continue;
    }

    for (long k = json_integer<long>(what.at("minibatches")); k > 0; --k) {
      const long step = json_integer<long>(state.progress["step"]);
      const GroupPosition where = soldier.group_position();
      // This rank's part of global minibatch `step`, weighted by its share of
      // the global batch: the sum over the ranks is the global mean.
      gather_rows(data.train, batches.slice(step, where.rank, where.size), batch);
      if (batch.size() > 0) {
        model.loss_and_grad(batch.images.data(), batch.labels.data(), batch.size(), grad);
        const float share = static_cast<float>(batch.size()) / static_cast<float>(flags.global_batch);
        for (float& g : grad) g *= share;
      } else {
        std::fill(grad.begin(), grad.end(), 0.0f);
      }

      // Sync: one all-reduce of the flat gradient, then the same update on
      // every rank. A lost peer: the group goes on in a new epoch and redoes
      // this step from rank 0's state.
      try {
        soldier.all_reduce(grad, ReduceOp::sum);
      } catch (const PeerLostError& e) {
        soldier.log().warn("step ", step, ": ", e.what());
        job_over = !soldier.regroup();
        break;  // ask the controller again
      }
      if (flags.clip_norm > 0) platoon::clip_grad_norm(grad, flags.clip_norm);
      rule->set_learning_rate(flags.learning_rate *
                              static_cast<float>(std::pow(flags.lr_decay, batches.pass_of(step))));
      rule->step(model.params(), grad);
      state.progress["step"] = step + 1;
      ++done;
      ++steps;
      samples += batch.size();
    }
  }
  const double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() - valid_seconds;

  // Close: the test set, sliced like validation; rank 0 reports it.
  try {
    const double test = sliced_accuracy(soldier.group(), model, data.test, all_indices(data.test.count));
    soldier.send_req_collective({{"test_accuracy", test}});
  } catch (const Error& e) {
    soldier.log().warn("no test accuracy: ", e.what());
  }
  soldier.close();
  print_throughput(steps, samples, train_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // --mode picks the loop and its parser; the EASGD loop lives in the
  // shared runner. Each parser checks --mode's value itself.
  const std::string mode = worker_mode(argc, argv);
  if (mode != "sync")
    return run_example_worker(argc, argv, lstm::worker_defaults(),
                              [](std::uint64_t seed, int hidden) {
      return std::make_unique<Lstm>(seed, hidden > 0 ? hidden : 128);
    });
  try {
    return sync_main(argc, argv);
  } catch (const HelpRequested& help) {
    std::cout << help.text;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "worker: " << e.what() << "\n";
    return 1;
  }
}
