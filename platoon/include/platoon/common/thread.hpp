// Threads that the library starts for itself (the ZAP handler, a worker's
// heartbeat, sync helpers) block every signal: a process-directed signal
// (SIGTERM from a launcher, SIGUSR1 for a profiler) must reach the thread
// that waits for it or the program's own handler, never one of ours, where
// its default action would end the process mid-checkpoint.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace platoon {

/// Starts `fn` on a new std::thread with every signal blocked (the thread
/// inherits the mask; the caller's own mask is unchanged afterwards).
template <class Fn>
std::thread start_thread_without_signals(Fn&& fn) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  struct Restore {
    sigset_t& mask;
    ~Restore() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{previous};
  return std::thread(std::forward<Fn>(fn));
}

}  // namespace platoon
