// libFuzzer target: arbitrary bytes as control requests to a controller.
// Every input must produce a JSON reply (an error reply for bad input) and
// never crash, hang or leak. Requests go through the same path as serve():
// Lieutenant::handle_frame(). The job key is fixed (64 zeros) so that inputs
// can register; "@token@" in an input stands for the registered worker's
// session token, so that inputs reach what only a registered worker may ask.
#include <cstddef>
#include <cstdint>
#include <string>
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
    options.job_key = std::string(64, '0');
    options.write_job_key_file = false;
    return options;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A fresh controller per input keeps runs independent; one registered worker
  // lets inputs reach handle_control and the worker-only framework requests.
  FuzzController controller;
  const nlohmann::json registered = nlohmann::json::parse(controller.handle_frame(platoon::protocol::encode_request(
      "fuzz:1", "platoon-register", {{"pid", 1}, {"host", "fuzz"}, {"job_key", std::string(64, '0')}})));
  if (!registered.contains("token")) __builtin_trap();
  std::string frame(reinterpret_cast<const char*>(data), size);
  const std::string placeholder = "@token@", token = registered["token"].get<std::string>();
  for (std::size_t at = frame.find(placeholder); at != std::string::npos; at = frame.find(placeholder, at + token.size()))
    frame.replace(at, placeholder.size(), token);
  const std::string reply = controller.handle_frame(frame);
  const nlohmann::json parsed = nlohmann::json::parse(reply);  // must always be JSON
  if (parsed.is_discarded()) __builtin_trap();
  return 0;
}
