// Errors raised by platoon.
//
// Two kinds of failure are kept apart on purpose:
//  - Recoverable conditions (a peer gone, a timeout, a bad message, a layout
//    mismatch, a broken file) are exceptions of one family rooted at
//    platoon::Error. Each carries the values involved in its message.
//  - Broken invariants inside platoon are programming errors and go through
//    PLATOON_ENFORCE, which throws platoon::InternalError with the location.
#pragma once

#include <stdexcept>
#include <string>

namespace platoon {

/// Root of every exception platoon throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A wait ran past its bound (a controller that does not answer, a lock that
/// is never released). The message names the endpoint or object and the time.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// A message that does not follow the control protocol, or an error reply
/// received from the controller.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

/// An error reply from the controller. kind() is the reply's short tag:
/// "bad-request", "not-registered", "handler-error", ...
class ErrorReply : public ProtocolError {
 public:
  ErrorReply(std::string kind, const std::string& message) : ProtocolError(message), kind_(std::move(kind)) {}
  [[nodiscard]] const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
};

/// Two workers disagree on the parameter layout, or a segment's header does
/// not describe what the caller expects. The message names the parameter.
class LayoutError : public Error {
 public:
  using Error::Error;
};

/// A system resource (shared memory, socket, file, process) could not be
/// created, opened or used. The message names the resource.
class ResourceError : public Error {
 public:
  using Error::Error;
};

/// A data or checkpoint file that is missing, truncated or malformed.
/// The message names the file.
class FileError : public Error {
 public:
  using Error::Error;
};

/// A peer of the job (the controller, another worker) is gone.
class PeerLostError : public Error {
 public:
  using Error::Error;
};

/// A worker came too late: its job had ended, or was ending, before it could
/// register. Nothing is lost; the example workers exit 0 with the message.
class JobOverError : public Error {
 public:
  using Error::Error;
};

/// A broken invariant inside platoon: a bug, not a user or peer error.
class InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_internal(const char* condition, const char* file, int line,
                                 const std::string& message);
}  // namespace detail

}  // namespace platoon

/// Checks an internal invariant; throws platoon::InternalError when it fails.
#define PLATOON_ENFORCE(condition, message)                                       \
  do {                                                                            \
    if (!(condition)) {                                                           \
      ::platoon::detail::throw_internal(#condition, __FILE__, __LINE__, (message)); \
    }                                                                             \
  } while (false)
