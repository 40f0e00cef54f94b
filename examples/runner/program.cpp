#include "program.hpp"

#include <cstdio>
#include <exception>
#include <iostream>

#include "flags.hpp"
#include "platoon/common/error.hpp"

namespace platoon::examples {

int run_program(const char* who, const std::function<int()>& body) {
  try {
    return body();
  } catch (const HelpRequested& help) {
    std::cout << help.text;
    return 0;
  } catch (const JobOverError& e) {
    std::cerr << who << ": nothing to do: " << e.what() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << who << ": " << e.what() << "\n";
    return 1;
  }
}

void print_throughput(long minibatches, long samples, double train_seconds) {
  std::printf("trained %ld minibatches (%ld samples) in %.2f s\nthroughput %.1f\n", minibatches, samples,
              train_seconds, train_seconds > 0 ? static_cast<double>(samples) / train_seconds : 0.0);
  std::fflush(stdout);
}

}  // namespace platoon::examples
