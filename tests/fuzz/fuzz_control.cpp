// libFuzzer target: arbitrary bytes as control requests to a controller.
// Every input must produce a JSON reply (an error reply for bad input) and
// never crash, hang or leak. Requests go through the same path as serve():
// Lieutenant::handle_frame().
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "platoon/lieutenant.hpp"
#include "platoon/channel/protocol.hpp"

namespace {

class FuzzController : public platoon::Lieutenant {
 public:
  FuzzController() : Lieutenant(make_options()) {}

 protected:
  nlohmann::json handle_control(const nlohmann::json& req, const platoon::WorkerInfo& worker,
                                const nlohmann::json& req_info) override {
    if (req == "end") end_job();
    if (req == "throw") throw std::runtime_error("handler error");
    return {{"req", req}, {"worker", worker.id}, {"info", req_info}};
  }

 private:
  static Options make_options() {
    Options options;
    options.handle_signals = false;
    options.job_id = "fuzz";
    options.max_message_bytes = 4096;
    options.reclaim_dead_segments = false;
    return options;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A fresh controller per input keeps runs independent; one registered worker
  // lets inputs reach handle_control and the worker-only framework requests.
  FuzzController controller;
  (void)controller.handle_frame(
      R"({"worker_id": "fuzz:1", "req": "platoon-register", "req_info": {"pid": 1, "host": "fuzz"}})");
  const std::string reply = controller.handle_frame(std::string_view(reinterpret_cast<const char*>(data), size));
  const nlohmann::json parsed = nlohmann::json::parse(reply);  // must always be JSON
  if (parsed.is_discarded()) __builtin_trap();
  return 0;
}
