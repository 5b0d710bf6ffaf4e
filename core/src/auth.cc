// Python's connection handshake (multiprocessing/connection.py): each side proves it knows the
// authkey by returning the HMAC of a random challenge. Python 3.11 sends a 20-byte challenge and
// expects a raw HMAC-MD5; Python 3.12+ prefixes the challenge with "{sha256}" (and the response
// with the digest name), and treats a 20-byte challenge or a 16-byte response as the legacy form.
// We deliver the legacy challenge (so that 3.11 peers can answer) and accept both forms.
#include <array>
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "mproc/connection.h"
#include "mproc/errors.h"
#include "mproc/listener.h"

namespace mproc {
namespace {

constexpr std::string_view kChallenge = "#CHALLENGE#";
constexpr std::string_view kWelcome = "#WELCOME#";
constexpr std::string_view kFailure = "#FAILURE#";
constexpr std::size_t kLegacyMessageLength = 20;  // Python's MD5-only challenge
constexpr std::size_t kMd5DigestLength = 16;
constexpr std::int64_t kMaxMessage = 256;  // Python's "reject large message"

const EVP_MD* digest_named(std::string_view name) {
  if (name == "md5") return EVP_md5();
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha3_256") return EVP_sha3_256();
  if (name == "sha3_384") return EVP_sha3_384();
  return nullptr;
}

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view message) {
  static const unsigned char kNoKey = 0;  // a null key means "reuse the last one" to OpenSSL
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  const void* key_ptr = key.empty() ? &kNoKey : static_cast<const void*>(key.data());
  if (HMAC(md, key_ptr, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &len) == nullptr)
    throw AuthenticationError("cannot compute the HMAC (digest unavailable)");
  return std::string(reinterpret_cast<const char*>(out.data()), len);
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Splits "{name}payload" into the digest and the payload; a legacy message (Python's lengths 16 and
// 20, no prefix) gives MD5 and `legacy = true`. Returns nullptr for anything else.
const EVP_MD* digest_and_payload(std::string_view message, std::string_view& payload,
                                 std::string& name, bool& legacy) {
  legacy = false;
  if (message.size() == kLegacyMessageLength || message.size() == kMd5DigestLength) {
    legacy = true;
    payload = message;
    name = "md5";
    return EVP_md5();
  }
  if (message.empty() || message[0] != '{') return nullptr;
  auto close = message.find('}', 1);
  if (close == std::string_view::npos || close > 21) return nullptr;
  name = std::string(message.substr(1, close - 1));
  payload = message.substr(close + 1);
  return digest_named(name);
}

std::string recv_handshake_message(Connection& connection) {
  try {
    return connection.recv_bytes(kMaxMessage);
  } catch (const std::system_error& e) {
    if (e.code().value() == EMSGSIZE)
      throw AuthenticationError("handshake message too long (over 256 bytes)");
    throw;
  }
}

}  // namespace

void deliver_challenge(Connection& connection, std::string_view authkey) {
  std::array<unsigned char, kLegacyMessageLength> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1)
    throw AuthenticationError("cannot get random bytes for the challenge");
  std::string message(reinterpret_cast<const char*>(random.data()), random.size());
  connection.send_bytes(std::string(kChallenge) + message);
  std::string response;
  try {
    response = recv_handshake_message(connection);
  } catch (const AuthenticationError&) {
    connection.send_bytes(kFailure);
    throw;
  }
  std::string_view mac;
  std::string name;
  bool legacy = false;
  const EVP_MD* md = digest_and_payload(response, mac, name, legacy);
  if (md == nullptr || !equal_in_constant_time(hmac(md, authkey, message), mac)) {
    connection.send_bytes(kFailure);
    throw AuthenticationError("digest received was wrong");
  }
  connection.send_bytes(kWelcome);
}

void answer_challenge(Connection& connection, std::string_view authkey) {
  std::string message = recv_handshake_message(connection);
  if (message.compare(0, kChallenge.size(), kChallenge) != 0)
    throw AuthenticationError("protocol error: expected a challenge");
  std::string_view challenge = std::string_view(message).substr(kChallenge.size());
  if (challenge.size() < kLegacyMessageLength)
    throw AuthenticationError("challenge too short: " + std::to_string(challenge.size()) +
                              " bytes");
  std::string_view payload;
  std::string name;
  bool legacy = false;
  const EVP_MD* md = digest_and_payload(challenge, payload, name, legacy);
  if (md == nullptr) throw AuthenticationError("challenge with an unsupported digest");
  // The MAC covers the whole challenge, prefix included, so a peer cannot downgrade the digest.
  std::string mac = hmac(md, authkey, challenge);
  connection.send_bytes(legacy ? mac : "{" + name + "}" + mac);
  std::string response = recv_handshake_message(connection);
  if (response != kWelcome) throw AuthenticationError("digest sent was rejected");
}

}  // namespace mproc
