// A worker of the MLP example (784-256-128-10) on Fashion-MNIST, and the
// template to copy for your own model. Two modes, each one function that
// reads top to bottom (data, model, Soldier, init, loop, sync, validate,
// close); the helpers they call are in examples/runner/.
//
//   mlp_worker [--mode easgd] [--port 5567] [--batch 64] [--lr 0.001] [--sync-every 10] [--alpha 0.5] ...
//   mlp_worker --standalone ...   (the same training without platoon: the reference)
//   mlp_worker --mode sync [--port 5567] [--batch 128] [--optimizer adam] [--weight-decay W] ...
//
// --mode easgd (the default) is Platoon's elastic averaging: every worker
// trains its own copy of the model and, every --sync-every minibatches,
// moves it and the job's center in shared memory towards each other. The
// controller (mlp_controller) hands out minibatches and validations.
//
// --mode sync is synchronous data parallelism: every worker computes the
// gradient of its slice of one global minibatch (the same size whatever the
// number of workers), one all-reduce averages them, and every worker applies
// the same update, so all replicas stay identical. The controller
// (mlp_controller --group-size N) decides, through rank 0, when the group
// trains, validates and stops.
//
// --help lists every flag with its default.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "common/mlp.hpp"
#include "defaults.hpp"
#include "easgd_support.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/json_number.hpp"
#include "platoon/soldier.hpp"
#include "platoon/sync/update_rules.hpp"
#include "program.hpp"
#include "progress.hpp"
#include "sync_data.hpp"

namespace {

using nlohmann::json;
using namespace platoon;
using namespace platoon::examples;
using Clock = std::chrono::steady_clock;

// --hidden H: layers of H and H/2 units (0: 256 and 128).
std::unique_ptr<Mlp> make_model(std::uint64_t seed, int hidden) {
  return std::make_unique<Mlp>(seed, hidden > 0 ? hidden : 256, hidden > 0 ? hidden / 2 : 128);
}

int easgd_main(int argc, char** argv) {
  const WorkerFlags flags = parse_worker_flags(argc, argv, mlp::worker_defaults());

  // Data: this worker's own copy of Fashion-MNIST, the last 5000 training
  // images set aside for validation.
  const LocalData data = load_local_data(flags.data, flags.train_limit);
  check_batch_fits(static_cast<std::size_t>(flags.batch), data.train.size());

  // Model and update rule. Every worker starts from the same seed; the
  // center is made from the first worker's values.
  const std::unique_ptr<Mlp> model = make_model(flags.seed, flags.hidden);
  const std::unique_ptr<UpdateRule> rule = make_update_rule(flags.optimizer, static_cast<float>(flags.learning_rate));
  if (flags.standalone) return run_standalone(flags, *model, *rule, data);

  // Soldier: joins the job.
  Soldier::Options options;
  options.endpoint = flags.endpoint;
  options.sync_threads = flags.sync_threads;
  Soldier soldier(options);

  // Init: the first worker creates the center from its values, the others
  // start from the center.
  soldier.init_shared_params(model->param_views(), std::make_unique<EASGD>(static_cast<float>(flags.alpha)));
  // Every worker shuffles its own way.
  const std::uint64_t order_seed = flags.seed * 1000 + static_cast<std::uint64_t>(soldier.worker_id());
  MinibatchStream stream(*model, *rule, data, static_cast<std::size_t>(flags.batch), order_seed,
                         static_cast<float>(flags.clip_norm), flags.lr_decay);
  // Validation and test look at the center through a scratch model, so this
  // worker's own progress is never thrown away.
  CenterEvaluator center(soldier, make_model(flags.seed, flags.hidden));

  // Loop: ask the controller what to do; report the minibatches trained
  // with the next request. Throughput counts everything but validations:
  // training, syncs and requests, so that it shows what platoon costs.
  // Progress lines (samples/s, time syncing) go to the log for platoon-plot.
  ProgressLog progress(soldier.log(), flags.progress_every);
  long minibatches = 0, unreported = 0;
  double valid_seconds = 0;
  const auto started = Clock::now();
  while (true) {
    const json what = soldier.send_req("next", {{"done", unreported}});
    unreported = 0;
    const std::string action = what.at("action").get<std::string>();
    if (action == "stop") break;

    if (action == "valid") {
      // Validate: the center on the validation images, then this worker's
      // own model, for the log.
      const auto v0 = Clock::now();
      const double accuracy = center.accuracy(data.set.train_images, data.set.train_labels, data.valid);
      soldier.send_req({{"valid_error", 1.0 - accuracy}});
      soldier.log().info(local_validation_line(
          accuracy_on(*model, data.set.train_images, data.set.train_labels, data.valid)));
      valid_seconds += std::chrono::duration<double>(Clock::now() - v0).count();
      continue;
    }
    if (action != "train") throw ProtocolError(str_cat("unexpected answer from the controller: ", what.dump()));

    // Train; sync with the center every --sync-every minibatches.
    const long k = json_integer<long>(what.at("minibatches"));
    for (long i = 0; i < k; ++i) {
      stream.step();
      if (++minibatches % flags.sync_every == 0) progress.time_sync([&] { soldier.sync_params(); });
    }
    progress.trained(k, k * flags.batch);
    unreported = k;
  }
  const double train_seconds = std::chrono::duration<double>(Clock::now() - started).count() - valid_seconds;

  // Close: the center gets this worker's last progress; the last worker to
  // finish tests the center.
  soldier.sync_params();
  if (soldier.send_req({{"finished", true}}).value("test", false))
    soldier.send_req({{"test_accuracy", center.accuracy(data.set.test_images, data.set.test_labels)}});
  soldier.close();
  print_throughput(minibatches, stream.samples(), train_seconds);
  return 0;
}

int sync_main(int argc, char** argv) {
  const SyncFlags flags = parse_sync_flags(argc, argv, mlp::sync_defaults());

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
  const std::unique_ptr<Mlp> model_ptr = make_model(flags.seed, flags.hidden);
  Mlp& model = *model_ptr;
  const std::unique_ptr<UpdateRule> rule = make_update_rule(flags.optimizer, flags.learning_rate, flags.weight_decay);
  rule->attach(model.num_params());

  // Init: rank 0's parameters, optimizer state and progress reach everyone.
  // The parameters of the best validation so far are state too, so that a
  // worker joining later tests the same ones (--test-on best).
  std::vector<float> best_params(flags.test_best ? model.num_params() : 0);
  Soldier::GroupState state{model.param_views(), rule->state(), {{"step", 0}, {"best_saved", false}}};
  if (flags.test_best) state.state.emplace_back(best_params);
  if (!soldier.init_group(state)) return 0;
  const std::span<float> grad = soldier.gradients();  // in shared memory: reduced in place

  // Loop: rank 0 asks the controller for the whole group; every rank gets
  // the same answer.
  Batch batch;
  ProgressLog progress(soldier.log(), flags.progress_every);
  long done = 0, samples = 0, steps = 0;
  bool job_over = false;
  const auto started = Clock::now();
  double valid_seconds = 0;
  while (!job_over) {
    const json what = soldier.send_req_collective("next", {{"done", done}});
    done = 0;
    if (what.is_null() || what.at("action") == "stop") break;

    if (what.at("action") == "valid") {
      // Validate: each rank classifies its slice; the counts are summed exactly.
      const auto v0 = Clock::now();
      try {
        const double accuracy = sliced_accuracy(soldier.group(), model, data.train, split.valid);
        const json answer = soldier.send_req_collective({{"valid_error", 1.0 - accuracy}});
        if (flags.test_best && answer.value("best", false)) {
          std::copy(model.params().begin(), model.params().end(), best_params.begin());
          state.progress["best_saved"] = true;
        }
      } catch (const PeerLostError&) {
        if (!soldier.regroup()) break;
        soldier.send_req_collective({{"valid_error", nullptr}});  // abandoned; the next one will tell
      }
      valid_seconds += std::chrono::duration<double>(Clock::now() - v0).count();
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
        progress.time_sync([&] { soldier.all_reduce(grad, ReduceOp::sum); });
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
      progress.trained(1, static_cast<long>(batch.size()));
    }
  }
  const double train_seconds =
      std::chrono::duration<double>(Clock::now() - started).count() - valid_seconds;

  // Close: the test set, sliced like validation, on the parameters early
  // stopping picked (the same on every rank); rank 0 reports it.
  const bool tests_best = state.progress.value("best_saved", false);
  if (tests_best) std::copy(best_params.begin(), best_params.end(), model.params().begin());
  try {
    const double test = sliced_accuracy(soldier.group(), model, data.test, all_indices(data.test.count));
    soldier.send_req_collective({{"test_accuracy", test}, {"parameters", tests_best ? "best validation" : "final"}});
  } catch (const Error& e) {
    soldier.log().warn("no test accuracy: ", e.what());
  }
  soldier.close();
  print_throughput(steps, samples, train_seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // --mode picks the loop and its flags; each parser checks --mode's value.
  return run_program("worker", [&] {
    return worker_mode(argc, argv) == "sync" ? sync_main(argc, argv) : easgd_main(argc, argv);
  });
}
