// Hyper-parameters of the LSTM example (row by row, 28 steps of 28 pixels),
// shared by its controller and worker.
#pragma once

#include "flags.hpp"
#include "sync_data.hpp"

namespace platoon::examples::lstm {

inline ScheduleOptions schedule_defaults() {
  ScheduleOptions s;
  s.minibatches_per_request = 50;  // one request per 50 minibatches keeps control traffic under 1%
  s.valid_every = 1000;  // minibatches, all workers together
  s.patience = 10;
  return s;
}

inline WorkerDefaults worker_defaults() {
  WorkerDefaults d;
  d.batch = 64;
  d.learning_rate = 2e-3;
  d.lr_decay = 0.85;  // per pass over the data
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
  d.learning_rate = 2e-3;
  d.lr_decay = 0.85;
  d.optimizer = "adam";
  return d;
}

}  // namespace platoon::examples::lstm
