// The manager's wire format.
//
//   request:  u8 op, then
//     kHello:   the client's serializer name ("binary", "text"); the first request of every
//               client connection (after authentication). The server answers kOk, or kException
//               when it uses another serializer; until a matching hello, kCall and kCreate are
//               refused (the control requests carry no payload and need none).
//     kCall:    u64 id, u16 method length, method, encoded argument tuple (the rest)
//     kCreate:  u16 type-name length, type name, encoded constructor arguments (the rest)
//     kIncref, kDecref: u64 id
//     kShutdown, kCount: nothing
//     kSharedChannel: nothing; the client then sends a memfd with send_handle (shared_channel.h)
//   response: u8 status (kOk, kException), then the encoded result (kCreate: u64 id; kCount:
//             u64 count) or an exception payload (envelope.h's capture_current_exception).
// Integers are little-endian, so that with the text serializer (whose payloads and exception
// payloads depend on no byte order) a request means the same on any machine.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "mproc/errors.h"

namespace mproc::detail::protocol {

enum Op : char {
  kCall = 'M',
  kCreate = 'C',
  kIncref = 'I',
  kDecref = 'D',
  kShutdown = 'S',
  kCount = 'N',
  kSharedChannel = 'H',
  kHello = 'A',
};

enum Status : char { kOk = 'K', kException = 'E' };

// Little-endian from and to host order (nothing to do on the usual hosts).
inline std::uint64_t little_endian(std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}
inline std::uint16_t little_endian(std::uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap16(v);
  return v;
}

inline void put_u64(std::string& out, std::uint64_t v) {
  v = little_endian(v);
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}
inline void put_name(std::string& out, std::string_view name) {
  if (name.size() > 0xffff) throw ValueError("manager: a method or type name over 65535 bytes");
  auto n = little_endian(static_cast<std::uint16_t>(name.size()));
  out.append(reinterpret_cast<const char*>(&n), sizeof(n));
  out.append(name);
}

// Reads a request's fields in order; throws SerializationError when the message is too short.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  std::uint64_t u64() {
    std::uint64_t v = 0;
    std::memcpy(&v, take(sizeof(v)).data(), sizeof(v));
    return little_endian(v);
  }
  std::string_view name() {
    std::uint16_t n = 0;
    std::memcpy(&n, take(sizeof(n)).data(), sizeof(n));
    return take(little_endian(n));
  }
  std::string_view rest() { return std::exchange(rest_, {}); }
  void expect_end() const {
    if (!rest_.empty()) throw SerializationError("manager: trailing bytes in a request");
  }

 private:
  std::string_view take(std::size_t n) {
    if (rest_.size() < n) throw SerializationError("manager: truncated request");
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }
  std::string_view rest_;
};

// A call request without its arguments (the caller appends the encoded argument tuple).
inline std::string call_request(std::uint64_t id, std::string_view method) {
  std::string out;
  out.reserve(64 + method.size());
  out.push_back(kCall);
  put_u64(out, id);
  put_name(out, method);
  return out;
}

inline std::string create_request(std::string_view type_name, std::string_view args) {
  std::string out;
  out.push_back(kCreate);
  put_name(out, type_name);
  out.append(args);
  return out;
}

inline std::string hello_request(std::string_view serializer_name) {
  std::string out(1, kHello);
  out.append(serializer_name);
  return out;
}

inline std::string id_request(Op op, std::uint64_t id) {
  std::string out(1, op);
  put_u64(out, id);
  return out;
}

}  // namespace mproc::detail::protocol
