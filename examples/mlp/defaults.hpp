// Hyper-parameters of the MLP example (784-256-128-10), shared by its
// controller and worker.
#pragma once

#include "flags.hpp"
#include "sync_data.hpp"

namespace platoon::examples::mlp {

inline ScheduleOptions schedule_defaults() {
  ScheduleOptions s;
  s.minibatches_per_request = 50;  // one request per 50 minibatches keeps control traffic under 1%
  s.valid_every = 500;   // minibatches, all workers together
  s.patience = 20;
  s.max_seconds = 0;     // the job is bounded by --max-time or --max-minibatches
  return s;
}

inline WorkerDefaults worker_defaults() {
  WorkerDefaults d;
  d.batch = 64;
  d.learning_rate = 1e-3;
  d.lr_decay = 0.8;  // per pass over the data
  d.optimizer = "adam";
  d.sync_every = 10;
  d.alpha = 0.5;
  d.schedule = schedule_defaults();
  return d;
}

/// --mode sync: a global batch of 128 (64 per worker with 2 workers).
inline SyncDefaults sync_defaults() {
  SyncDefaults d;
  d.global_batch = 128;
  d.learning_rate = 1e-3;
  d.lr_decay = 0.8;
  d.optimizer = "adam";
  return d;
}

}  // namespace platoon::examples::mlp
