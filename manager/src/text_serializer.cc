#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "mproc/manager_serializer.h"

namespace mproc {
namespace {

void put_decimal(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// Writes `value` after its one-letter kind; a Reference has no text form.
void write(const Object& value, std::string& out) {
  switch (value.kind()) {
    case Object::Kind::kNone:
      out += 'N';
      return;
    case Object::Kind::kBool:
      out += value.as_bool() ? 'T' : 'F';
      return;
    case Object::Kind::kInt: {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value.as_int());
      out += 'i';
      out.append(buf, end);
      out += ';';
      return;
    }
    case Object::Kind::kFloat: {
      const double d = value.as_float();
      out += 'f';
      if (std::isnan(d)) {
        out += "nan";  // the sign and payload of a NaN are not kept (Python's repr drops them too)
      } else {
        char buf[32];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
        out.append(buf, end);
      }
      out += ';';
      return;
    }
    case Object::Kind::kStr: {
      const std::string& s = value.as_str();
      out += 's';
      put_decimal(out, s.size());
      out += ':';
      out += s;
      return;
    }
    case Object::Kind::kBytes: {
      static constexpr char kHex[] = "0123456789abcdef";
      const std::string& b = value.as_bytes();
      out += 'b';
      put_decimal(out, b.size());
      out += ':';
      for (unsigned char c : b) {
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
      }
      return;
    }
    case Object::Kind::kList:
    case Object::Kind::kTuple: {
      const Object::List& items = value.is_list() ? value.as_list() : value.as_tuple();
      out += value.is_list() ? 'l' : 't';
      put_decimal(out, items.size());
      out += ':';
      for (const Object& x : items) write(x, out);
      return;
    }
    case Object::Kind::kDict: {
      const Dict& d = value.as_dict();
      out += 'd';
      put_decimal(out, d.size());
      out += ':';
      for (std::size_t i = 0; i < d.size(); ++i) {
        write(d.keys()[i], out);
        write(d.values()[i], out);
      }
      return;
    }
    case Object::Kind::kReference:
      throw SerializationError(
          "the manager's text serializer cannot carry a proxy (a nested proxy, Object kind "
          "Reference): use Serializer::kBinary");
  }
  throw SerializationError("encode_text: an Object of unknown kind");
}

[[noreturn]] void corrupt(std::string_view why) {
  throw SerializationError("decode_text: not a text-serialized value: " + std::string(why));
}

class TextReader {
 public:
  explicit TextReader(std::string_view text) : pos_(text.data()), end_(text.data() + text.size()) {}

  [[nodiscard]] bool at_end() const noexcept { return pos_ == end_; }

  Object value(int depth) {
    if (depth > detail::kMaxNesting) corrupt("nested too deeply");
    switch (next()) {
      case 'N':
        return Object();
      case 'T':
        return Object(true);
      case 'F':
        return Object(false);
      case 'i':
        return Object(integer());
      case 'f':
        return Object(floating());
      case 's':
        return Object(std::string(take(count(1))));
      case 'b':
        return Object(Bytes{hex(count(2))});
      case 'l':
        return Object::list(items(depth));
      case 't':
        return Object::tuple(items(depth));
      case 'd':
        return dict(depth);
      default:
        corrupt("unknown kind letter");
    }
  }

 private:
  char next() {
    if (pos_ == end_) corrupt("truncated");
    return *pos_++;
  }
  void expect(char c) {
    if (next() != c) corrupt(std::string("expected '") + c + "'");
  }
  std::string_view take(std::size_t n) {
    std::string_view out(pos_, n);  // n was checked against the bytes left by count()
    pos_ += n;
    return out;
  }

  // A length or count followed by ':', of items each at least `min_bytes` long: it must fit in
  // the bytes left, so a corrupt count never makes a large allocation.
  std::size_t count(std::size_t min_bytes) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(pos_, end_, n);
    if (ec != std::errc() || p == pos_) corrupt("bad length");
    pos_ = p;
    expect(':');
    if (n > static_cast<std::uint64_t>(end_ - pos_) / min_bytes) corrupt("length past the end");
    return static_cast<std::size_t>(n);
  }

  std::int64_t integer() {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(pos_, end_, v);
    if (ec != std::errc() || p == pos_) corrupt("bad int");
    pos_ = p;
    expect(';');
    return v;
  }

  double floating() {
    double v = 0;
    auto [p, ec] = std::from_chars(pos_, end_, v);
    if (ec != std::errc() || p == pos_) corrupt("bad float");
    pos_ = p;
    expect(';');
    return v;
  }

  std::string hex(std::size_t n) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      corrupt("bad hex digit in bytes");
    };
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
      const int hi = digit(pos_[2 * i]);
      out[i] = static_cast<char>((hi << 4) | digit(pos_[2 * i + 1]));
    }
    pos_ += 2 * n;
    return out;
  }

  Object::List items(int depth) {
    const std::size_t n = count(1);
    Object::List out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(value(depth + 1));
    return out;
  }

  Object dict(int depth) {
    const std::size_t n = count(2);
    Dict d;
    for (std::size_t i = 0; i < n; ++i) {
      Object key = value(depth + 1);
      Object v = value(depth + 1);
      try {
        d.set(std::move(key), std::move(v));
      } catch (const TypeError& e) {
        corrupt(e.what());  // an unhashable key
      }
    }
    return Object(std::move(d));
  }

  const char* pos_;
  const char* end_;
};

}  // namespace

std::string_view serializer_name(Serializer serializer) noexcept {
  switch (serializer) {
    case Serializer::kBinary:
      return "binary";
    case Serializer::kText:
      return "text";
  }
  return "unknown";
}

void encode_text_into(const Object& value, std::string& out) {
  const std::size_t before = out.size();
  try {
    write(value, out);
  } catch (...) {
    out.resize(before);
    throw;
  }
}

std::string encode_text(const Object& value) {
  std::string out;
  write(value, out);
  return out;
}

Object decode_text(std::string_view text) {
  TextReader in(text);
  Object value = in.value(0);
  if (!in.at_end()) corrupt("trailing bytes");
  return value;
}

namespace detail {

void throw_not_text_portable(const std::type_info& type) {
  throw SerializationError("the manager's text serializer cannot carry " + demangle(type) +
                           ": it carries only types with an Object form (see "
                           "mproc/manager_serializer.h); use Serializer::kBinary");
}

void throw_text_mismatch(const std::type_info& type, const std::exception& why) {
  throw SerializationError("decode: the text message is not a " + demangle(type) + ": " +
                           why.what());
}

namespace {
thread_local Serializer t_serializer = Serializer::kBinary;
}  // namespace

Serializer current_serializer() noexcept { return t_serializer; }
void set_current_serializer(Serializer serializer) noexcept { t_serializer = serializer; }

}  // namespace detail
}  // namespace mproc
