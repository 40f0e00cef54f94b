#include "platoon/channel/security.hpp"

#include <zmq.h>

#include <cstdint>
#include <fstream>
#include <sstream>

#include "platoon/common/file.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/log.hpp"

namespace platoon {

namespace {

constexpr std::size_t kZ85KeyChars = 40;

bool is_z85_key(const std::string& key) {
  std::uint8_t binary[32];
  return key.size() == kZ85KeyChars && zmq_z85_decode(binary, key.c_str()) != nullptr;
}

}  // namespace

CurveKeyPair CurveKeyPair::generate() {
  if (!zmq_has("curve")) throw ResourceError("cannot generate a CURVE key pair: this libzmq was built without CURVE");
  char public_key[kZ85KeyChars + 1];
  char secret_key[kZ85KeyChars + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0)
    throw ResourceError(str_cat("cannot generate a CURVE key pair: ", zmq_strerror(zmq_errno())));
  return {public_key, secret_key};
}

CurveKeyPair CurveKeyPair::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw FileError(str_cat("cannot read CURVE key file ", path));
  CurveKeyPair keys;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string name, key, extra;
    if (!(fields >> name)) continue;  // blank line
    if (!(fields >> key) || (fields >> extra) || (name != "public" && name != "secret"))
      throw FileError(
          str_cat("CURVE key file ", path, " line ", number, ": expected 'public <key>' or 'secret <key>'"));
    if (!is_z85_key(key))
      throw FileError(str_cat("CURVE key file ", path, " line ", number, ": the ", name, " key is not ", kZ85KeyChars,
                              " Z85 characters (", key.size(), " characters)"));
    (name == "public" ? keys.public_key : keys.secret_key) = key;
  }
  if (keys.public_key.empty() || keys.secret_key.empty())
    throw FileError(
        str_cat("CURVE key file ", path, " lacks its ", keys.public_key.empty() ? "public" : "secret", " key"));
  char derived[kZ85KeyChars + 1];
  if (zmq_has("curve") && zmq_curve_public(derived, keys.secret_key.c_str()) == 0 && keys.public_key != derived)
    throw FileError(str_cat("CURVE key file ", path, ": the public key does not belong to the secret key"));
  return keys;
}

void CurveKeyPair::save(const std::filesystem::path& path) const {
  write_file_atomically(path, {str_cat("public ", public_key, "\nsecret ", secret_key, "\n")}, 0600);
}

bool is_loopback_endpoint(const std::string& endpoint) {
  return endpoint.starts_with("tcp://127.") || endpoint.starts_with("tcp://localhost:") ||
         endpoint.starts_with("tcp://[::1]:") || endpoint.starts_with("inproc://") ||
         endpoint.starts_with("ipc://");
}

}  // namespace platoon
