// The non-template half of mproc/serialize.h: the archive classes' instantiation (Boost's own
// binary archives are instantiated in libboost_serialization; ours, derived from the same
// templates, are instantiated here) and the error messages.
#include "mproc/serialize.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <boost/archive/detail/archive_serializer_map.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>

namespace boost::archive {
template class detail::archive_serializer_map<mproc::detail::IArchive>;
template class detail::archive_serializer_map<mproc::detail::OArchive>;
}  // namespace boost::archive

namespace mproc::detail {

namespace {
// A count of items whose size on the wire is not known (user types may write nothing) may exceed
// the bytes left by at most this much.
constexpr std::size_t kUnknownSizeSlack = 1 << 16;
}  // namespace

std::string demangle(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  if (status != 0 || !name) return type.name();
  // Shorten what the reader did not write: std::string's full name and default allocators.
  std::string s = name.get();
  const std::string_view kString =
      "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";
  for (std::size_t at; (at = s.find(kString)) != std::string::npos;) {
    s.replace(at, kString.size(), "std::string");
  }
  const std::string_view kAlloc = ", std::allocator<";
  for (std::size_t at; (at = s.find(kAlloc)) != std::string::npos;) {
    std::size_t end = at + kAlloc.size();
    for (int depth = 1; end < s.size() && depth > 0; ++end) {
      depth += s[end] == '<' ? 1 : s[end] == '>' ? -1 : 0;
    }
    s.erase(at, end - at);
  }
  for (std::size_t at; (at = s.find(" >")) != std::string::npos;) s.erase(at, 1);
  return s;
}

void throw_decode_error(const std::type_info& expected, std::string_view why) {
  std::string msg = "cannot decode a ";
  msg += demangle(expected);
  msg += ": ";
  msg += why;
  throw SerializationError(msg);
}

void throw_encode_error(const std::type_info& type, std::string_view why) {
  std::string msg = "cannot encode a ";
  msg += demangle(type);
  msg += ": ";
  msg += why;
  throw SerializationError(msg);
}

std::string_view check_header(std::string_view bytes, unsigned char tag, std::uint32_t fp,
                              const std::type_info& expected) {
  if (bytes.size() < kHeaderSize) {
    throw_decode_error(expected, "message of " + std::to_string(bytes.size()) +
                                     " bytes is shorter than its header");
  }
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  if (b(0) != kTagRaw && b(0) != kTagBoost) {
    throw_decode_error(expected, "not an mproc message (unknown format tag)");
  }
  const std::uint32_t got =
      b(1) | (std::uint32_t{b(2)} << 8) | (std::uint32_t{b(3)} << 16) | (std::uint32_t{b(4)} << 24);
  if (got != fp) throw_decode_error(expected, "the message holds a value of another type");
  if (b(0) != tag) throw_decode_error(expected, "wrong encoding for this type");
  return bytes.substr(kHeaderSize);
}

// Constructing the archive here instantiates (from the .ipp included above) the one out-of-line
// member of basic_binary_iarchive it needs, load_override(class_name_type&); init(), which reads a
// header through a streambuf we do not have, is never called (no_header).
IArchive::IArchive(std::string_view bytes)
    : Base(kArchiveFlags), pos_(bytes.data()), end_(bytes.data() + bytes.size()) {}

IArchive::~IArchive() = default;

void IArchive::throw_truncated() { throw CorruptMessage("truncated message"); }

void IArchive::throw_corrupt(const char* why) { throw CorruptMessage(why); }

std::size_t IArchive::load_count(std::size_t min_item_size) {
  std::uint64_t n = 0;
  load_bytes(&n, sizeof n);
  const std::size_t left = remaining();
  const bool fits = min_item_size == 0 ? n <= left + kUnknownSizeSlack : n <= left / min_item_size;
  if (!fits) throw CorruptMessage("item count larger than the message can hold");
  return static_cast<std::size_t>(n);
}

bool IArchive::load_flag() {
  unsigned char c = 0;
  load_bytes(&c, 1);
  if (c > 1) throw CorruptMessage("invalid bool");
  return c == 1;
}

void IArchive::load(std::string& s) {
  std::uint64_t n = 0;
  load_bytes(&n, sizeof n);
  if (n > remaining()) throw_truncated();
  s.resize(static_cast<std::size_t>(n));
  if (n != 0) load_binary(s.data(), static_cast<std::size_t>(n));
}

void IArchive::load(std::wstring& s) {
  std::uint64_t n = 0;
  load_bytes(&n, sizeof n);
  if (n > remaining() / sizeof(wchar_t)) throw_truncated();
  s.resize(static_cast<std::size_t>(n));
  if (n != 0) load_binary(s.data(), static_cast<std::size_t>(n) * sizeof(wchar_t));
}

IArchive::NestingGuard::NestingGuard(IArchive& ar) : ar_(ar) {
  if (ar_.depth_ >= kMaxNesting) throw CorruptMessage("nested too deeply");
  ++ar_.depth_;
}

}  // namespace mproc::detail
