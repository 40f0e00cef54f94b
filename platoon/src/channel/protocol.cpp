#include "platoon/channel/protocol.hpp"

#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon::protocol {

std::string Request::framework_name() const {
  if (req.is_string()) {
    const auto& name = req.get_ref<const std::string&>();
    if (name.starts_with(kFrameworkPrefix)) return name;
  }
  return {};
}

Request parse_request(std::string_view frame, std::size_t max_bytes) {
  if (frame.size() > max_bytes)
    throw ProtocolError(str_cat("request of ", frame.size(), " bytes exceeds the limit of ", max_bytes, " bytes"));
  nlohmann::json j;
  try {
    // The nesting is bounded while parsing: everything that walks the value
    // later (dump, compare) recurses, and a deep one would exhaust the stack.
    j = nlohmann::json::parse(frame, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > static_cast<int>(kMaxNestingDepth))
        throw ProtocolError(str_cat("request is nested deeper than ", kMaxNestingDepth, " levels"));
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    throw ProtocolError(str_cat("request is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) throw ProtocolError(str_cat("request must be a JSON object, got ", j.type_name()));
  Request r;
  for (auto& [key, value] : j.items()) {
    if (key == "worker_id") r.worker_id = std::move(value);
    else if (key == "req") r.req = std::move(value);
    else if (key == "req_info") r.req_info = std::move(value);
    else if (key == "token") {
      if (!value.is_string() || value.get_ref<const std::string&>().size() > 2 * kTokenBytes)
        throw ProtocolError(str_cat("request 'token' must be a string of at most ", 2 * kTokenBytes, " characters"));
      r.token = value.get<std::string>();
    }
    else throw ProtocolError(str_cat("request has an unexpected key '", key, "'"));
  }
  if (!j.contains("req")) throw ProtocolError("request lacks 'req'");
  if (!(r.worker_id.is_null() || r.worker_id.is_number_integer() || r.worker_id.is_string()))
    throw ProtocolError(str_cat("request 'worker_id' must be an integer or a string, got ", r.worker_id.type_name()));
  return r;
}

std::string quote(const nlohmann::json& value, std::size_t max_chars) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() <= max_chars) return text;
  const std::size_t total = text.size();
  text.resize(max_chars);
  return str_cat(text, "... (", total, " characters)");
}

std::string worker_name_problem(std::string_view name) {
  if (name.size() > kMaxWorkerNameChars) return str_cat("is longer than ", kMaxWorkerNameChars, " characters");
  for (const char c : name)
    if (c < 0x20 || c > 0x7e) return "holds a character that is not printable ASCII";
  return "";
}

std::string worker_label(int worker_id, std::string_view name) {
  return name.empty() ? str_cat("worker ", worker_id) : str_cat("worker ", worker_id, " (", name, ")");
}

std::string encode_request(const nlohmann::json& worker_id, const nlohmann::json& req,
                           const nlohmann::json& req_info, std::string_view token) {
  nlohmann::json j = {{"worker_id", worker_id}, {"req", req}};
  if (!req_info.is_null()) j["req_info"] = req_info;
  if (!token.empty()) j["token"] = token;
  return j.dump();
}

nlohmann::json error_reply(std::string_view kind, std::string_view message) {
  return {{"platoon_error", {{"kind", kind}, {"message", message}}}};
}

bool is_error_reply(const nlohmann::json& reply) {
  return reply.is_object() && reply.size() == 1 && reply.contains("platoon_error") &&
         reply["platoon_error"].is_object();
}

std::string error_text(const nlohmann::json& reply) {
  const auto& e = reply.at("platoon_error");
  return str_cat(e.value("kind", "error"), ": ", e.value("message", "(no message)"));
}

}  // namespace platoon::protocol
