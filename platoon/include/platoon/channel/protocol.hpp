// The control protocol between workers and the controller.
//
// Wire format (compatible with Platoon's): every request is one ZeroMQ frame
// holding the JSON object
//   {"worker_id": <integer or string>, "req": <any JSON>, "req_info": <optional JSON>,
//    "token": <the worker's session token, from platoon-register>}
// and every reply is one frame holding any JSON value. Requests whose `req` is
// a string starting with "platoon-" belong to the framework; everything else
// goes to Lieutenant::handle_control(). Only "platoon-status" may be sent
// without a "worker_id": anyone who can reach the endpoint (loopback, or a
// CURVE key the job allows) may ask for the job's state. platoon-register
// needs the job key (req_info "job_key", see job_key.hpp), and everything else
// a registered worker's id with the session token its registration returned:
// a request in a worker's name without that worker's token changes nothing.
//
// An error is replied as {"platoon_error": {"kind": ..., "message": ...}};
// Soldier::send_req() turns it into a platoon::ProtocolError.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace platoon::protocol {

/// Framework requests.
inline constexpr std::string_view kRegister = "platoon-register";        ///< worker joins; learns id, job, first
inline constexpr std::string_view kParamsReady = "platoon-params-ready"; ///< first worker: center initialized
inline constexpr std::string_view kStatus = "platoon-status";            ///< anyone: job state (launcher, tools)
inline constexpr std::string_view kDone = "platoon-done";                ///< worker leaves the job
inline constexpr std::string_view kHeartbeat = "platoon-heartbeat";      ///< worker is alive
/// Synchronous groups: a worker asks to be placed in the next epoch
/// (req_info {after_epoch, slot, slot_elements, lost_rank?}); the reply is
/// {"wait": true}, {"job_over": true} or its place {epoch, rank, size, segment}.
inline constexpr std::string_view kGroupJoin = "platoon-group-join";
/// Rank 0 asks handle_control() on behalf of its group (req_info {epoch,
/// req, req_info}); the reply is {"reply": ...} or {"regroup": true} when
/// workers wait to join or the epoch is being replaced.
inline constexpr std::string_view kGroupRequest = "platoon-group-request";

/// The prefix reserved for framework requests.
inline constexpr std::string_view kFrameworkPrefix = "platoon-";

/// The default limit on the size of one request, in bytes.
inline constexpr std::size_t kDefaultMaxMessageBytes = std::size_t{1} << 20;

/// Bytes of randomness in a session token (sent as twice as many hex digits).
inline constexpr std::size_t kTokenBytes = 16;

/// The deepest nesting of arrays and objects a request may have.
inline constexpr std::size_t kMaxNestingDepth = 64;

/// A parsed request.
struct Request {
  nlohmann::json worker_id;  ///< null when absent
  nlohmann::json req;
  nlohmann::json req_info;  ///< null when absent
  std::string token;        ///< the sender's session token, "" when absent

  /// The framework request name ("platoon-..."), or empty for a user request.
  [[nodiscard]] std::string framework_name() const;
};

/// Parses and validates one request frame. Throws platoon::ProtocolError
/// saying what is wrong: larger than `max_bytes`, nested deeper than
/// kMaxNestingDepth, not JSON, not an object, no "req", a "worker_id" that is
/// neither an integer nor a string, a "token" that is not a string of at most
/// 2·kTokenBytes characters, or an unexpected key. A missing
/// "worker_id" is left null: whether the request needs one is the
/// controller's call.
Request parse_request(std::string_view frame, std::size_t max_bytes = kDefaultMaxMessageBytes);

/// `value` as JSON text for a log line or an error message: at most
/// `max_chars` characters (then "... (N characters)"), invalid UTF-8 replaced.
std::string quote(const nlohmann::json& value, std::size_t max_chars = 200);

/// The longest worker name platoon-register accepts.
inline constexpr std::size_t kMaxWorkerNameChars = 64;

/// Why `name` cannot name a worker ("is longer than 64 characters", "holds a
/// character that is not printable ASCII"), or "" when it can. The empty
/// name is allowed: it means none.
std::string worker_name_problem(std::string_view name);

/// How logs call a worker: "worker 4", or "worker 4 (worker-1)" when it has
/// a name.
std::string worker_label(int worker_id, std::string_view name);

/// Serializes a request into one frame; an empty `token` is left out.
std::string encode_request(const nlohmann::json& worker_id, const nlohmann::json& req,
                           const nlohmann::json& req_info = nullptr, std::string_view token = {});

/// The error reply for `kind` (a short tag, e.g. "bad-request") and `message`.
nlohmann::json error_reply(std::string_view kind, std::string_view message);

/// Whether `reply` is an error reply.
bool is_error_reply(const nlohmann::json& reply);

/// The message of an error reply: "<kind>: <message>".
std::string error_text(const nlohmann::json& reply);

}  // namespace platoon::protocol
