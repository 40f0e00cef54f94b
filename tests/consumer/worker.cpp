// The smallest useful worker: one parameter, EASGD every 5 minibatches.
#include <platoon/soldier.hpp>

#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  platoon::Soldier soldier(std::atoi(argv[1]));
  std::vector<float> w(16, 1.0f);
  soldier.init_shared_params({{"w", w.data(), {4, 4}}}, std::make_unique<platoon::EASGD>(0.5f));
  int step = 0;
  while (soldier.send_req("next") == "train") {
    for (float& x : w) x -= 0.01f;
    if (++step % 5 == 0) soldier.sync_params();
  }
  soldier.close();
}
