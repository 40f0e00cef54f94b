// What every example program's main() shares: how it ends, and the last
// lines a worker prints.
#pragma once

#include <functional>

namespace platoon::examples {

/// Runs `body`, the program proper, and returns its exit code: what `body`
/// returns, 0 after printing the help when it throws HelpRequested, 0 after
/// saying so when the job was over before this worker joined
/// (JobOverError), and 1 after printing "<who>: <what went wrong>" to stderr
/// for any other exception (bad usage, a missing file, a lost controller).
int run_program(const char* who, const std::function<int()>& body);

/// The last lines of every example worker ("trained N minibatches (S
/// samples) in T s", "throughput X"), which platoon-bench reads.
void print_throughput(long minibatches, long samples, double train_seconds);

}  // namespace platoon::examples
