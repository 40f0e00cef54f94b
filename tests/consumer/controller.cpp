// The smallest useful controller: train 20 minibatches per worker, then stop.
#include <platoon/lieutenant.hpp>

#include <iostream>
#include <map>

class Controller : public platoon::Lieutenant {
 protected:
  nlohmann::json handle_control(const nlohmann::json& req, const platoon::WorkerInfo& worker,
                                const nlohmann::json&) override {
    if (req != "next") throw std::runtime_error("unknown request " + req.dump());
    if (++given_[worker.id] <= 20) return "train";
    end_job();
    return "stop";
  }

 private:
  std::map<int, int> given_;
};

int main() {
  Controller controller;
  controller.init_control(0);
  std::cout << controller.port() << std::endl;  // the test reads the port
  controller.serve();
}
