// The tiny hand-written binary format of envelopes and exception payloads: little-endian
// integers and size-prefixed strings, read with a bounds check before every access. Cheaper than
// a Boost archive per envelope, and a corrupt message becomes a SerializationError, never a read
// out of bounds.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "mproc/errors.h"

namespace mproc::detail::wire {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

inline void put_u32(std::string& out, std::uint32_t v) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(bytes, 4);
}

inline void put_u64(std::string& out, std::uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(bytes, 8);
}

inline void put_string(std::string& out, std::string_view s, const char* what) {
  if (s.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw SerializationError(std::string(what) + " longer than 4 GiB");
  }
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

// Reads from a byte string; `what` names the message in errors ("call envelope").
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : bytes_(bytes), what_(what) {}

  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }

  std::uint32_t u32() {
    std::string_view b = take(4);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(b[i])} << (8 * i);
    return v;
  }

  std::uint64_t u64() {
    std::string_view b = take(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(b[i])} << (8 * i);
    return v;
  }

  std::string_view string() { return take(u32()); }

  std::string_view rest() {
    std::string_view r = bytes_;
    bytes_ = {};
    return r;
  }

  void expect_end() {
    if (!bytes_.empty()) fail("has trailing bytes");
  }

  [[noreturn]] void fail(const char* problem) const {
    throw SerializationError(std::string("corrupt ") + what_ + ": " + problem);
  }

 private:
  std::string_view take(std::size_t n) {
    if (n > bytes_.size()) fail("truncated");
    std::string_view r = bytes_.substr(0, n);
    bytes_.remove_prefix(n);
    return r;
  }

  std::string_view bytes_;
  const char* what_;
};

}  // namespace mproc::detail::wire
