// mproc::Object: Python's value semantics (equality, ordering, hashing, repr) and its wire form.
#include "mproc/object.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>

#include "mproc/serialize.h"

namespace mproc {

namespace {

using Kind = Object::Kind;

constexpr std::string_view kTypeNames[] = {"NoneType", "bool", "int",   "float", "str",
                                           "bytes",    "list", "tuple", "dict",  "proxy"};

thread_local detail::ReferenceResolver t_reference_resolver;

bool is_number(const Object& o) noexcept {
  return o.kind() == Kind::kBool || o.kind() == Kind::kInt || o.kind() == Kind::kFloat;
}

// ---- numbers

// An exact comparison of an int64 with a double (Python compares int and float exactly, not by
// converting the int to a double).
std::partial_ordering compare_int_double(std::int64_t i, double d) noexcept {
  if (std::isnan(d)) return std::partial_ordering::unordered;
  constexpr double kTwo63 = 9223372036854775808.0;
  if (d >= kTwo63) return std::partial_ordering::less;
  if (d < -kTwo63) return std::partial_ordering::greater;
  const double t = std::trunc(d);
  const auto ti = static_cast<std::int64_t>(t);
  if (i != ti) return i < ti ? std::partial_ordering::less : std::partial_ordering::greater;
  const double frac = d - t;
  if (frac > 0) return std::partial_ordering::less;
  if (frac < 0) return std::partial_ordering::greater;
  return std::partial_ordering::equivalent;
}

std::partial_ordering compare_numbers(const Object& a, const Object& b) noexcept {
  const bool af = a.kind() == Kind::kFloat;
  const bool bf = b.kind() == Kind::kFloat;
  if (!af && !bf) return a.as_int() <=> b.as_int();
  if (af && bf) return a.as_float() <=> b.as_float();
  if (af) return 0 <=> compare_int_double(b.as_int(), a.as_float());
  return compare_int_double(a.as_int(), b.as_float());
}

// CPython's numeric hash: reduction modulo the Mersenne prime 2**61 - 1, so that equal numbers
// of any type hash equal (Python/pyhash.c, Objects/longobject.c).
constexpr std::uint64_t kHashModulus = (std::uint64_t{1} << 61) - 1;

std::int64_t fix_minus_one(std::int64_t h) noexcept { return h == -1 ? -2 : h; }

std::int64_t hash_int(std::int64_t i) noexcept {
  const std::uint64_t mag =
      i < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
  const auto r = static_cast<std::int64_t>(mag % kHashModulus);
  return fix_minus_one(i < 0 ? -r : r);
}

std::int64_t hash_double(double v) noexcept {
  if (std::isinf(v)) return v > 0 ? 314159 : -314159;
  if (std::isnan(v)) return 0;
  int e = 0;
  double m = std::frexp(v, &e);
  int sign = 1;
  if (m < 0) {
    sign = -1;
    m = -m;
  }
  std::uint64_t x = 0;
  while (m != 0) {
    x = ((x << 28) & kHashModulus) | x >> (61 - 28);
    m *= 268435456.0;
    e -= 28;
    const auto y = static_cast<std::uint64_t>(m);
    m -= static_cast<double>(y);
    x += y;
    if (x >= kHashModulus) x -= kHashModulus;
  }
  e = e >= 0 ? e % 61 : 61 - 1 - ((-1 - e) % 61);
  x = ((x << e) & kHashModulus) | x >> (61 - e);
  return fix_minus_one(static_cast<std::int64_t>(x) * sign);
}

std::int64_t hash_string(std::string_view s, std::uint64_t salt) noexcept {
  // FNV-1a, 64-bit: stable across processes (Python randomizes its str hash per process; a
  // stable one lets a dict's layout be reproduced after a round trip).
  std::uint64_t h = 14695981039346656037ull ^ salt;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return fix_minus_one(static_cast<std::int64_t>(h));
}

// CPython's tuple hash (Objects/tupleobject.c, the xxHash-based one of 3.8+).
std::int64_t hash_tuple(const Object::List& items) {
  constexpr std::uint64_t kP1 = 11400714785074694791ull;
  constexpr std::uint64_t kP2 = 14029467366897019727ull;
  constexpr std::uint64_t kP5 = 2870177450012600261ull;
  std::uint64_t acc = kP5;
  for (const Object& item : items) {
    const auto lane = static_cast<std::uint64_t>(item.hash());
    acc += lane * kP2;
    acc = (acc << 31) | (acc >> 33);
    acc *= kP1;
  }
  acc += items.size() ^ (kP5 ^ 3527539ull);
  if (acc == std::numeric_limits<std::uint64_t>::max()) return 1546275796;
  return static_cast<std::int64_t>(acc);
}

// ---- repr

void append_hex(std::string& out, char prefix, std::uint32_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '\\';
  out += prefix;
  for (int i = digits - 1; i >= 0; --i) out += kHex[(v >> (4 * i)) & 0xf];
}

// Python's repr of a float: the shortest digits that round-trip, in fixed notation when the
// decimal exponent is in [-4, 16), otherwise in scientific notation with a 2-digit exponent.
void append_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  if (std::isinf(d)) {
    out += d > 0 ? "inf" : "-inf";
    return;
  }
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const std::size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+'), sci.data() + sci.size(), exp);
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
    return;
  }
  const int point = exp + 1;  // digits before the decimal point
  const int n = static_cast<int>(digits.size());
  if (point <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-point), '0');
    out += digits;
  } else if (point >= n) {
    out += digits;
    out.append(static_cast<std::size_t>(point - n), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<std::size_t>(point));
    out += '.';
    out.append(digits, static_cast<std::size_t>(point));
  }
}

char choose_quote(std::string_view s) {
  const bool single = s.find('\'') != std::string_view::npos;
  const bool dbl = s.find('"') != std::string_view::npos;
  return single && !dbl ? '"' : '\'';
}

// Whether Python's str.isprintable() holds for a non-ASCII code point. Covers the control,
// format, separator, surrogate, private-use and non-character ranges; unassigned code points
// (which Python also escapes) are printed as they are.
bool printable_non_ascii(std::uint32_t c) {
  if (c <= 0xa0 || c == 0xad) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
      (c >= 0x205f && c <= 0x2064) || (c >= 0x2066 && c <= 0x206f) || c == 0x3000) {
    return false;
  }
  if ((c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x180e ||
      c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || c == 0xfffe || c == 0xffff) {
    return false;
  }
  if ((c >= 0xd800 && c <= 0xf8ff) || c >= 0xf0000 || (c & 0xfffe) == 0xfffe) return false;
  if (c >= 0xe0000 && c <= 0xe007f) return false;  // tags
  return true;
}

// Decodes one UTF-8 code point at s[i]; returns its length, or 0 for an invalid sequence.
std::size_t decode_utf8(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t len = 0;
  std::uint32_t min = 0;
  if (c < 0x80) {
    cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    len = 2, cp = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, cp = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff) return 0;
  return len;
}

void append_str(std::string& out, std::string_view s) {
  const char q = choose_quote(s);
  out += q;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
      ++i;
      continue;
    }
    if (c == '\t' || c == '\n' || c == '\r') {
      out += c == '\t' ? "\\t" : c == '\n' ? "\\n" : "\\r";
      ++i;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      append_hex(out, 'x', u, 2);
      ++i;
      continue;
    }
    if (u < 0x80) {
      out += c;
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t len = decode_utf8(s, i, cp);
    if (len == 0) {  // not UTF-8: show the byte (Python would show a surrogate escape)
      append_hex(out, 'x', u, 2);
      ++i;
      continue;
    }
    if (printable_non_ascii(cp)) {
      out.append(s, i, len);
    } else if (cp <= 0xff) {
      append_hex(out, 'x', cp, 2);
    } else if (cp <= 0xffff) {
      append_hex(out, 'u', cp, 4);
    } else {
      append_hex(out, 'U', cp, 8);
    }
    i += len;
  }
  out += q;
}

void append_bytes(std::string& out, std::string_view s) {
  const char q = choose_quote(s);
  out += 'b';
  out += q;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u >= 0x7f) {
      append_hex(out, 'x', u, 2);
    } else {
      out += c;
    }
  }
  out += q;
}

void append_repr(std::string& out, const Object& o) {
  switch (o.kind()) {
    case Kind::kNone:
      out += "None";
      return;
    case Kind::kBool:
      out += o.as_bool() ? "True" : "False";
      return;
    case Kind::kInt:
      out += std::to_string(o.as_int());
      return;
    case Kind::kFloat:
      append_float(out, o.as_float());
      return;
    case Kind::kStr:
      append_str(out, o.as_str());
      return;
    case Kind::kBytes:
      append_bytes(out, o.as_bytes());
      return;
    case Kind::kList:
    case Kind::kTuple: {
      const bool list = o.kind() == Kind::kList;
      const Object::List& items = list ? o.as_list() : o.as_tuple();
      out += list ? '[' : '(';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i != 0) out += ", ";
        append_repr(out, items[i]);
      }
      if (!list && items.size() == 1) out += ',';
      out += list ? ']' : ')';
      return;
    }
    case Kind::kDict: {
      const Dict& d = o.as_dict();
      out += '{';
      for (std::size_t i = 0; i < d.size(); ++i) {
        if (i != 0) out += ", ";
        append_repr(out, d.keys()[i]);
        out += ": ";
        append_repr(out, d.values()[i]);
      }
      out += '}';
      return;
    }
    case Kind::kReference: {
      const Reference& r = o.as_reference();
      out += "<proxy '" + r.type_name + "' id " + std::to_string(r.id) + ">";
      return;
    }
  }
}

[[noreturn]] void throw_unorderable(const char* op, const Object& a, const Object& b) {
  throw TypeError(std::string("'") + op + "' not supported between instances of '" +
                  std::string(a.type_name()) + "' and '" + std::string(b.type_name()) + "'");
}

// The first index where two sequences differ, or their common length.
std::size_t first_difference(const Object::List& a, const Object::List& b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

bool less(const Object& a, const Object& b, bool or_equal, const char* op) {
  if (is_number(a) && is_number(b)) {
    const auto c = compare_numbers(a, b);
    return or_equal ? c <= 0 : c < 0;
  }
  if (a.kind() == b.kind()) {
    switch (a.kind()) {
      case Kind::kStr:
        return or_equal ? a.as_str() <= b.as_str() : a.as_str() < b.as_str();
      case Kind::kBytes:
        return or_equal ? a.as_bytes() <= b.as_bytes() : a.as_bytes() < b.as_bytes();
      case Kind::kList:
      case Kind::kTuple: {
        const Object::List& x = a.kind() == Kind::kList ? a.as_list() : a.as_tuple();
        const Object::List& y = a.kind() == Kind::kList ? b.as_list() : b.as_tuple();
        const std::size_t i = first_difference(x, y);
        if (i == x.size() || i == y.size()) {
          return or_equal ? x.size() <= y.size() : x.size() < y.size();
        }
        return less(x[i], y[i], false, op);
      }
      default:
        break;
    }
  }
  throw_unorderable(op, a, b);
}

}  // namespace

// ---- Object

Object Object::list(std::initializer_list<Object> items) { return list(List(items)); }

Object Object::list(List items) noexcept {
  Object o;
  o.v_.emplace<6>(std::move(items));
  return o;
}

Object Object::tuple(std::initializer_list<Object> items) { return tuple(List(items)); }

Object Object::tuple(List items) noexcept {
  Object o;
  o.v_.emplace<7>(std::move(items));
  return o;
}

Object Object::dict(std::initializer_list<std::pair<Object, Object>> items) {
  Dict d;
  for (const auto& [k, v] : items) d.set(k, v);
  return Object(std::move(d));
}

std::string_view Object::type_name() const noexcept { return kTypeNames[v_.index()]; }

void Object::throw_overflow() { throw ValueError("integer does not fit in a 64-bit int"); }

void Object::throw_type(std::string_view expected) const {
  throw TypeError("expected " + std::string(expected) + ", got " + std::string(type_name()));
}

bool Object::as_bool() const {
  if (!is_bool()) throw_type("bool");
  return std::get<1>(v_);
}

std::int64_t Object::as_int() const {
  if (is_bool()) return std::get<1>(v_) ? 1 : 0;
  if (!is_int()) throw_type("int");
  return std::get<2>(v_);
}

double Object::as_float() const {
  if (is_float()) return std::get<3>(v_);
  if (is_int() || is_bool()) return static_cast<double>(as_int());
  throw_type("float");
}

const std::string& Object::as_str() const {
  if (!is_str()) throw_type("str");
  return std::get<4>(v_);
}

const std::string& Object::as_bytes() const {
  if (!is_bytes()) throw_type("bytes");
  return std::get<5>(v_).data;
}

const Object::List& Object::as_list() const {
  if (!is_list()) throw_type("list");
  return std::get<6>(v_);
}

Object::List& Object::as_list() {
  if (!is_list()) throw_type("list");
  return std::get<6>(v_);
}

const Object::List& Object::as_tuple() const {
  if (!is_tuple()) throw_type("tuple");
  return std::get<7>(v_);
}

const Dict& Object::as_dict() const {
  if (!is_dict()) throw_type("dict");
  return std::get<8>(v_).get();
}

Dict& Object::as_dict() {
  if (!is_dict()) throw_type("dict");
  return std::get<8>(v_).get();
}

const Reference& Object::as_reference() const {
  if (!is_reference()) throw_type("proxy");
  return *std::get<9>(v_);
}

bool Object::truthy() const noexcept {
  switch (kind()) {
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return std::get<1>(v_);
    case Kind::kInt:
      return std::get<2>(v_) != 0;
    case Kind::kFloat:
      return std::get<3>(v_) != 0.0;
    case Kind::kStr:
      return !std::get<4>(v_).empty();
    case Kind::kBytes:
      return !std::get<5>(v_).data.empty();
    case Kind::kList:
      return !std::get<6>(v_).empty();
    case Kind::kTuple:
      return !std::get<7>(v_).empty();
    case Kind::kDict:
      return !std::get<8>(v_).get().empty();
    case Kind::kReference:
      return true;
  }
  return false;
}

std::size_t Object::size() const {
  switch (kind()) {
    case Kind::kStr:
      return std::get<4>(v_).size();
    case Kind::kBytes:
      return std::get<5>(v_).data.size();
    case Kind::kList:
      return std::get<6>(v_).size();
    case Kind::kTuple:
      return std::get<7>(v_).size();
    case Kind::kDict:
      return std::get<8>(v_).get().size();
    default:
      throw TypeError("object of type '" + std::string(type_name()) + "' has no len()");
  }
}

const Object& Object::item(std::int64_t i) const {
  if (!is_list() && !is_tuple()) {
    throw TypeError("'" + std::string(type_name()) + "' object is not indexable by int");
  }
  const List& items = is_list() ? std::get<6>(v_) : std::get<7>(v_);
  const auto n = static_cast<std::int64_t>(items.size());
  const std::int64_t j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) {
    throw IndexError(std::string(type_name()) + " index out of range: " + std::to_string(i));
  }
  return items[static_cast<std::size_t>(j)];
}

Object& Object::item(std::int64_t i) {
  return const_cast<Object&>(static_cast<const Object&>(*this).item(i));
}

const Object& Object::operator[](const Object& key) const {
  if (is_dict()) return std::get<8>(v_).get().at(key);
  if ((is_list() || is_tuple()) && (key.is_int() || key.is_bool())) return item(key.as_int());
  throw TypeError("'" + std::string(type_name()) + "' object is not subscriptable by " +
                  std::string(key.type_name()));
}

Object& Object::operator[](const Object& key) {
  if (is_dict()) return std::get<8>(v_).get()[key];
  if ((is_list() || is_tuple()) && (key.is_int() || key.is_bool())) return item(key.as_int());
  throw TypeError("'" + std::string(type_name()) + "' object is not subscriptable by " +
                  std::string(key.type_name()));
}

bool Object::contains(const Object& x) const {
  switch (kind()) {
    case Kind::kDict:
      return std::get<8>(v_).get().contains(x);
    case Kind::kList:
    case Kind::kTuple: {
      const List& items = is_list() ? std::get<6>(v_) : std::get<7>(v_);
      return std::find(items.begin(), items.end(), x) != items.end();
    }
    case Kind::kStr:
      return std::get<4>(v_).find(x.as_str()) != std::string::npos;
    case Kind::kBytes:
      return std::get<5>(v_).data.find(x.as_bytes()) != std::string::npos;
    default:
      throw TypeError("argument of type '" + std::string(type_name()) + "' is not iterable");
  }
}

void Object::append(Object x) { as_list().push_back(std::move(x)); }

std::string Object::repr() const {
  std::string out;
  append_repr(out, *this);
  return out;
}

std::string Object::str() const { return is_str() ? as_str() : repr(); }

std::int64_t Object::hash() const {
  switch (kind()) {
    case Kind::kNone:
      return 0x5f3759df;  // any constant: None is a singleton
    case Kind::kBool:
    case Kind::kInt:
      return hash_int(as_int());
    case Kind::kFloat:
      return hash_double(as_float());
    case Kind::kStr:
      return hash_string(as_str(), 0);
    case Kind::kBytes:
      return hash_string(as_bytes(), 0x9e3779b97f4a7c15ull);
    case Kind::kTuple:
      return hash_tuple(as_tuple());
    case Kind::kReference: {
      const Reference& r = as_reference();
      return hash_string(r.address, r.id);
    }
    case Kind::kList:
    case Kind::kDict:
      break;
  }
  throw TypeError("unhashable type: '" + std::string(type_name()) + "'");
}

bool operator==(const Object& a, const Object& b) {
  if (is_number(a) && is_number(b)) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kNone:
      return true;
    case Kind::kStr:
      return a.as_str() == b.as_str();
    case Kind::kBytes:
      return a.as_bytes() == b.as_bytes();
    case Kind::kList:
      return a.as_list() == b.as_list();
    case Kind::kTuple:
      return a.as_tuple() == b.as_tuple();
    case Kind::kDict:
      return a.as_dict() == b.as_dict();
    case Kind::kReference:
      return a.as_reference() == b.as_reference();
    default:
      return false;  // numbers are handled above
  }
}

bool operator<(const Object& a, const Object& b) { return less(a, b, false, "<"); }

bool operator<=(const Object& a, const Object& b) {
  if (a.kind() == b.kind() && (a.is_list() || a.is_tuple())) {
    // Python: compare at the first difference with '<=' semantics only for the lengths.
    const Object::List& x = a.is_list() ? a.as_list() : a.as_tuple();
    const Object::List& y = a.is_list() ? b.as_list() : b.as_tuple();
    const std::size_t i = first_difference(x, y);
    if (i == x.size() || i == y.size()) return x.size() <= y.size();
    return less(x[i], y[i], true, "<=");
  }
  return less(a, b, true, "<=");
}

std::ostream& operator<<(std::ostream& os, const Object& o) { return os << o.repr(); }

// ---- Dict

Object::DictBox::DictBox(Dict d) : p_(std::make_unique<Dict>(std::move(d))) {}

Object::DictBox::DictBox(const DictBox& other) : p_(std::make_unique<Dict>(other.get())) {}

Object::DictBox& Object::DictBox::operator=(const DictBox& other) {
  if (this != &other) p_ = std::make_unique<Dict>(other.get());
  return *this;
}

Object::DictBox::~DictBox() = default;

const Dict& Object::DictBox::get() const noexcept {
  static const Dict kEmpty;
  return p_ ? *p_ : kEmpty;
}

Dict& Object::DictBox::get() {
  if (!p_) p_ = std::make_unique<Dict>();
  return *p_;
}

std::ptrdiff_t Dict::find(const Object& key, std::size_t hash) const {
  const auto [first, last] = index_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    if (keys_[it->second] == key) return static_cast<std::ptrdiff_t>(it->second);
  }
  return -1;
}

void Dict::rebuild_index() {
  index_.clear();
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    index_.emplace(static_cast<std::size_t>(keys_[i].hash()), i);
  }
}

bool Dict::contains(const Object& key) const { return get(key) != nullptr; }

const Object* Dict::get(const Object& key) const {
  const std::ptrdiff_t i = find(key, static_cast<std::size_t>(key.hash()));
  return i < 0 ? nullptr : &values_[static_cast<std::size_t>(i)];
}

Object* Dict::get(const Object& key) {
  return const_cast<Object*>(static_cast<const Dict&>(*this).get(key));
}

const Object& Dict::at(const Object& key) const {
  const Object* v = get(key);
  if (v == nullptr) throw KeyError(key.repr());
  return *v;
}

Object& Dict::at(const Object& key) {
  return const_cast<Object&>(static_cast<const Dict&>(*this).at(key));
}

Object& Dict::operator[](const Object& key) {
  const auto h = static_cast<std::size_t>(key.hash());
  const std::ptrdiff_t i = find(key, h);
  if (i >= 0) return values_[static_cast<std::size_t>(i)];
  keys_.push_back(key);
  values_.emplace_back();
  index_.emplace(h, keys_.size() - 1);
  return values_.back();
}

void Dict::set(Object key, Object value) {
  const auto h = static_cast<std::size_t>(key.hash());
  const std::ptrdiff_t i = find(key, h);
  if (i >= 0) {
    values_[static_cast<std::size_t>(i)] = std::move(value);
    return;
  }
  keys_.push_back(std::move(key));
  values_.push_back(std::move(value));
  index_.emplace(h, keys_.size() - 1);
}

bool Dict::erase(const Object& key) {
  const std::ptrdiff_t i = find(key, static_cast<std::size_t>(key.hash()));
  if (i < 0) return false;
  keys_.erase(keys_.begin() + i);
  values_.erase(values_.begin() + i);
  rebuild_index();
  return true;
}

void Dict::clear() noexcept {
  keys_.clear();
  values_.clear();
  index_.clear();
}

bool operator==(const Dict& a, const Dict& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Object* v = b.get(a.keys_[i]);
    if (v == nullptr || !(*v == a.values_[i])) return false;
  }
  return true;
}

// ---- wire form: a kind byte, then the value (see serialize.h for the archive's primitives)

namespace detail {

namespace {

void save_object(OArchive& ar, const Object& o) {
  const auto kind = static_cast<std::uint8_t>(o.kind());
  ar.save_bytes(&kind, 1);
  switch (o.kind()) {
    case Kind::kNone:
      return;
    case Kind::kBool: {
      const bool b = o.as_bool();
      ar << b;
      return;
    }
    case Kind::kInt: {
      const std::int64_t i = o.as_int();
      ar.save_bytes(&i, sizeof i);
      return;
    }
    case Kind::kFloat: {
      const double d = o.as_float();
      ar.save_bytes(&d, sizeof d);
      return;
    }
    case Kind::kStr:
    case Kind::kBytes: {
      const std::string& s = o.is_str() ? o.as_str() : o.as_bytes();
      ar.save_count(s.size());
      ar.save_bytes(s.data(), s.size());
      return;
    }
    case Kind::kList:
    case Kind::kTuple: {
      const Object::List& items = o.is_list() ? o.as_list() : o.as_tuple();
      ar.save_count(items.size());
      for (const Object& x : items) save_object(ar, x);
      return;
    }
    case Kind::kDict: {
      const Dict& d = o.as_dict();
      ar.save_count(d.size());
      for (std::size_t i = 0; i < d.size(); ++i) {
        save_object(ar, d.keys()[i]);
        save_object(ar, d.values()[i]);
      }
      return;
    }
    case Kind::kReference: {
      const Reference& r = o.as_reference();
      ar.save_count(r.type_name.size());
      ar.save_bytes(r.type_name.data(), r.type_name.size());
      ar.save_count(r.address.size());
      ar.save_bytes(r.address.data(), r.address.size());
      const bool has_key = r.authkey.has_value();
      ar << has_key;
      if (has_key) {
        ar.save_count(r.authkey->size());
        ar.save_bytes(r.authkey->data(), r.authkey->size());
      }
      ar.save_bytes(&r.id, sizeof r.id);
      return;
    }
  }
}

void load_object(IArchive& ar, Object& o) {
  std::uint8_t kind = 0;
  ar.load_bytes(&kind, 1);
  switch (static_cast<Kind>(kind)) {
    case Kind::kNone:
      o = Object();
      return;
    case Kind::kBool:
      o = Object(ar.load_flag());
      return;
    case Kind::kInt: {
      std::int64_t i = 0;
      ar.load_bytes(&i, sizeof i);
      o = Object(i);
      return;
    }
    case Kind::kFloat: {
      double d = 0;
      ar.load_bytes(&d, sizeof d);
      o = Object(d);
      return;
    }
    case Kind::kStr:
    case Kind::kBytes: {
      std::string s;
      ar.load(s);
      o = kind == static_cast<std::uint8_t>(Kind::kStr) ? Object(std::move(s))
                                                        : Object(Bytes{std::move(s)});
      return;
    }
    case Kind::kList:
    case Kind::kTuple: {
      const IArchive::NestingGuard guard(ar);
      const std::size_t n = ar.load_count(1);
      Object::List items;
      items.reserve(reserve_hint<Object>(n));
      for (std::size_t i = 0; i < n; ++i) load_object(ar, items.emplace_back());
      o = kind == static_cast<std::uint8_t>(Kind::kList) ? Object::list(std::move(items))
                                                         : Object::tuple(std::move(items));
      return;
    }
    case Kind::kDict: {
      const IArchive::NestingGuard guard(ar);
      const std::size_t n = ar.load_count(2);
      Dict d;
      for (std::size_t i = 0; i < n; ++i) {
        Object k;
        Object v;
        load_object(ar, k);
        load_object(ar, v);
        try {
          d.set(std::move(k), std::move(v));
        } catch (const TypeError&) {
          IArchive::throw_corrupt("unhashable dict key");
        }
      }
      o = Object(std::move(d));
      return;
    }
    case Kind::kReference: {
      Reference r;
      ar.load(r.type_name);
      ar.load(r.address);
      if (ar.load_flag()) {
        std::string key;
        ar.load(key);
        r.authkey = std::move(key);
      }
      ar.load_bytes(&r.id, sizeof r.id);
      if (t_reference_resolver) r.keepalive = t_reference_resolver(r);
      o = Object(std::move(r));
      return;
    }
  }
  IArchive::throw_corrupt("invalid Object kind");
}

}  // namespace

void set_thread_reference_resolver(ReferenceResolver resolver) {
  t_reference_resolver = std::move(resolver);
}

void serialize(OArchive& ar, Object& o, unsigned) { save_object(ar, o); }
void serialize(IArchive& ar, Object& o, unsigned) { load_object(ar, o); }

}  // namespace detail

}  // namespace mproc
