// CURVE keys for the control channel. The controller binds to 127.0.0.1
// unless told otherwise; binding to any other address requires a server key
// pair and the list of worker public keys allowed in.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace platoon {

/// A CURVE key pair, each key in Z85 text form (40 characters).
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;

  /// Generates a new key pair. Throws ResourceError if ZeroMQ lacks CURVE.
  static CurveKeyPair generate();
  /// Reads a key pair written by save(). Throws FileError naming the file
  /// when it is missing or malformed, or a key is not 40 Z85 characters.
  static CurveKeyPair load(const std::filesystem::path& path);
  /// Writes "public <key>\nsecret <key>\n" atomically with mode 0600.
  /// Throws ResourceError naming the file when it cannot be written.
  void save(const std::filesystem::path& path) const;
};

/// What a worker needs to talk to a CURVE-protected controller. Empty means
/// plain (loopback) connections.
struct CurveClientKeys {
  std::string server_public_key;
  CurveKeyPair client;

  [[nodiscard]] bool enabled() const { return !server_public_key.empty(); }
};

/// What a controller needs to accept CURVE connections.
struct CurveServerKeys {
  CurveKeyPair server;
  std::vector<std::string> allowed_client_public_keys;

  [[nodiscard]] bool enabled() const { return !server.secret_key.empty(); }
};

/// Whether `endpoint` stays on this host (a 127.x or ::1 TCP address,
/// "localhost", ipc:// or inproc://): the only endpoints that platoon binds
/// without CURVE.
bool is_loopback_endpoint(const std::string& endpoint);

}  // namespace platoon
