// mproc/serialize.h
//
// Turning values into bytes and back: what Python's `pickle` does for `multiprocessing`. Every
// message a `Queue`, `Connection`, `Pool` or manager sends is made here.
//
//   std::string bytes = mproc::encode(std::vector<int>{1, 2, 3});
//   auto v = mproc::decode<std::vector<int>>(bytes);   // {1, 2, 3}
//
//   struct Point {                                      // a user type: give it a serialize member
//     std::string name; std::vector<double> xs;
//     template <class Ar> void serialize(Ar& ar, unsigned) { ar & name & xs; }
//   };
//
// What can be sent: arithmetic types, enums, std::string, std::vector, std::array, std::list,
// std::deque, std::map, std::unordered_map, std::set, std::unordered_set, std::pair, std::tuple,
// std::optional, std::variant, std::monostate, `mproc::Object` (object.h), any nesting of those,
// and user types with a Boost.Serialization `serialize(Ar&, unsigned)` member (public, or private
// with `friend class boost::serialization::access`). Trivially copyable types without a serialize
// member are copied byte for byte (see `memcpy_serializable`).
//
// Errors: `decode` throws `SerializationError`, naming the type it expected, for a truncated,
// corrupt or wrongly typed message. It never allocates more than the message can hold (a length
// field is checked against the bytes left before anything is allocated), never recurses without
// bound, and never reads an invalid `bool`, optional or variant state. Exceptions thrown by a
// user's own `serialize` member pass through unchanged.
//
// Thread safety: all functions are reentrant; they share no state. Fork safety: no state, so
// nothing to do. Lifetime: the returned `std::string` owns its bytes; `decode` reads the bytes only
// during the call.
//
// Wire format (INTERNAL, version 1: only processes of the same build may exchange messages; the
// tag byte lets a later version refuse or convert old messages):
//
//   byte 0      tag: 0x11 = raw v1, 0x12 = Boost archive v1 (anything else: refused)
//   bytes 1..4  type fingerprint, little-endian: 32-bit FNV-1a of typeid(W).name(), where W is
//               the wire type (std::string for any string-like value, std::vector<E> for any
//               contiguous range of E, otherwise the value's own type)
//   bytes 5..   payload
//     raw, std::string:                  the characters (length = the rest of the message)
//     raw, std::vector<E> / ranges of E: the elements' bytes, memcpy'd (length / sizeof(E) items)
//     raw, trivially copyable T:         exactly sizeof(T) bytes, memcpy'd
//     Boost:  a Boost.Serialization binary archive (flags no_header | no_codecvt | no_tracking) of
//             the value, written by `detail::OArchive`; inside it the std adapters below write a
//             count as uint64 then the items; optional = uint8 flag (0/1) + value; variant =
//             uint32 index + alternative; bool = one byte 0/1; std::string = uint64 length + bytes.
//             mproc::Object = uint8 kind (Object::Kind) + int64 / double / bool byte /
//             uint64 length + bytes / uint64 count + items / uint64 count + key, value pairs.
//   A message must be consumed exactly: trailing bytes are an error.
//
// Limits: an enum inside an archive travels as Boost writes it (an int); a corrupt value out of
// the enum's range is not detected. A trivially copyable type with a non-intrusive (free)
// serialize function is still memcpy'd unless `memcpy_serializable` is specialized to false.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <iterator>
#include <list>
#include <map>
#include <new>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/basic_binary_iarchive.hpp>
#include <boost/archive/basic_binary_oarchive.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/serialization.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/tracking.hpp>
#include <boost/serialization/wrapper.hpp>

#include "mproc/detail/blank_handle.h"
#include "mproc/errors.h"

namespace mproc {

class Object;

// Bytes on the wire: a std::string used as a byte buffer (like Python bytes).

// Returns the message for `value`. Throws SerializationError if a user type cannot be saved.
template <class T>
[[nodiscard]] std::string encode(const T& value);

// Appends the message for `value` to `out` (reusing its capacity). On an exception `out` is left
// as it was.
template <class T>
void encode_into(const T& value, std::string& out);

// Decodes a message made by `encode<T>` (or an encode of the same wire type, see above).
// Throws SerializationError for a message that is truncated, corrupt, or of another type.
template <class T>
[[nodiscard]] T decode(std::string_view bytes);

// As decode, but into an existing object (reusing e.g. a vector's capacity on the raw path).
template <class T>
void decode_into(std::string_view bytes, T& out);

namespace detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_variant : std::false_type {};
template <class... Ts>
struct is_variant<std::variant<Ts...>> : std::true_type {};
template <class T>
struct is_std_vector : std::false_type {};
template <class T, class A>
struct is_std_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};
template <class T>
struct is_pair_or_tuple : std::false_type {};
template <class A, class B>
struct is_pair_or_tuple<std::pair<A, B>> : std::true_type {};
template <class... Ts>
struct is_pair_or_tuple<std::tuple<Ts...>> : std::true_type {};

class OArchive;
class IArchive;

template <class T>
concept HasSerializeMember = requires(T& t, OArchive& ar) {
  t.serialize(ar, 0u);
};

}  // namespace detail

// Whether T travels as its raw bytes (memcpy). True for trivially copyable types other than bool,
// pointers and views (std::span, std::string_view: ranges other than std::array and C arrays),
// std::optional and std::variant (not every byte pattern of them is a valid value), and types with
// a serialize member. A trivially copyable user type without a serialize member is memcpy'd:
// every byte pattern must then be a valid value of it (no bool or pointer members), or a corrupt
// message yields an invalid object; give such a type a serialize member. Specialize to opt a type
// in or out (e.g. to memcpy a trivially copyable type that has a serialize member).
template <class T>
struct memcpy_serializable
    : std::bool_constant<std::is_trivially_copyable_v<T> && !std::is_same_v<T, bool> &&
                         !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
                         !detail::is_optional<T>::value && !detail::is_variant<T>::value &&
                         !detail::is_pair_or_tuple<T>::value && !detail::is_std_array<T>::value &&
                         !std::is_array_v<T> && !std::ranges::range<T> &&
                         !detail::HasSerializeMember<T> &&
                         // Boost's own wrappers (the nvp an enum is saved through) have theirs.
                         !boost::serialization::is_wrapper<T>::type::value> {};
template <class T, std::size_t N>
struct memcpy_serializable<std::array<T, N>> : memcpy_serializable<T> {};
template <class T, std::size_t N>
struct memcpy_serializable<T[N]> : memcpy_serializable<T> {};
template <class A, class B>
struct memcpy_serializable<std::pair<A, B>>
    : std::bool_constant<std::is_trivially_copyable_v<std::pair<A, B>> &&
                         memcpy_serializable<A>::value && memcpy_serializable<B>::value> {};
template <class... Ts>
struct memcpy_serializable<std::tuple<Ts...>>
    : std::bool_constant<std::is_trivially_copyable_v<std::tuple<Ts...>> &&
                         (memcpy_serializable<Ts>::value && ...)> {};
template <class T>
struct memcpy_serializable<const T> : memcpy_serializable<T> {};
template <class T>
inline constexpr bool memcpy_serializable_v = memcpy_serializable<T>::value;

namespace detail {

inline constexpr unsigned char kTagRaw = 0x11;
inline constexpr unsigned char kTagBoost = 0x12;
inline constexpr std::size_t kHeaderSize = 5;
// How deep an mproc::Object may nest in a message (Python's default recursion limit).
inline constexpr int kMaxNesting = 1000;

// A readable type name for messages: "std::vector<std::string>" for
// typeid(std::vector<std::string>) (default allocators and std::string's full name left out).
[[nodiscard]] std::string demangle(const std::type_info& type);
[[noreturn]] void throw_decode_error(const std::type_info& expected, std::string_view why);
[[noreturn]] void throw_encode_error(const std::type_info& type, std::string_view why);

// Thrown inside an archive for a corrupt message; decode turns it into a SerializationError that
// names the type asked for.
class CorruptMessage : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[nodiscard]] constexpr std::uint32_t fnv1a(const char* s) noexcept {
  std::uint32_t h = 2166136261u;
  for (; *s != '\0'; ++s) {
    h = (h ^ static_cast<unsigned char>(*s)) * 16777619u;
  }
  return h;
}

template <class W>
inline const std::uint32_t kFingerprint = fnv1a(typeid(W).name());

inline constexpr unsigned kArchiveFlags =
    boost::archive::no_header | boost::archive::no_codecvt | boost::archive::no_tracking;

// The Boost binary archive mproc writes. It keeps Boost's binary encoding of its own bookkeeping
// (class ids, versions) but writes primitives straight into the output string, without the
// streambuf and std::locale that Boost's binary_oarchive builds per archive (a microsecond each).
// The std adapters below are found through it by ADL.
class OArchive : public boost::archive::basic_binary_oarchive<OArchive> {
  using Base = boost::archive::basic_binary_oarchive<OArchive>;

 public:
  explicit OArchive(std::string& out) : Base(kArchiveFlags), out_(out) {}

  void save_binary(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  void save_bytes(const void* p, std::size_t n) { save_binary(p, n); }
  void save_count(std::size_t n) {
    const std::uint64_t v = n;
    save_binary(&v, sizeof v);
  }

  // Boost's dispatch (save_access, basic_binary_oarchive) calls these for primitives.
  template <class T>
  void save(const T& t) {
    static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_class_v<T>);
    save_binary(&t, sizeof(T));
  }
  void save(const std::string& s) {
    save_count(s.size());
    save_binary(s.data(), s.size());
  }
  void save(const std::wstring& s) {
    save_count(s.size());
    save_binary(s.data(), s.size() * sizeof(wchar_t));
  }
  template <class T>
  void save_override(T& t) {
    this->Base::save_override(t);
  }

 private:
  std::string& out_;
};

// The matching input archive, reading the message in place: every length it reads is checked
// against the bytes left.
class IArchive : public boost::archive::basic_binary_iarchive<IArchive> {
  using Base = boost::archive::basic_binary_iarchive<IArchive>;

 public:
  // Out of line: serialize.cc holds the Boost members that only it instantiates.
  explicit IArchive(std::string_view bytes);
  ~IArchive() override;
  IArchive(const IArchive&) = delete;
  IArchive& operator=(const IArchive&) = delete;

  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(end_ - pos_);
  }
  void load_binary(void* p, std::size_t n) {
    if (n > remaining()) throw_truncated();
    if (n != 0) std::memcpy(p, pos_, n);
    pos_ += n;
  }
  void load_bytes(void* p, std::size_t n) { load_binary(p, n); }
  // Reads a count of items each at least `min_item_size` bytes long on the wire (0: unknown), and
  // throws if the rest of the message cannot hold them.
  [[nodiscard]] std::size_t load_count(std::size_t min_item_size);
  [[nodiscard]] bool load_flag();

  // Guards recursion into nested dynamic values (mproc::Object).
  class NestingGuard {
   public:
    explicit NestingGuard(IArchive& ar);
    ~NestingGuard() { --ar_.depth_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    IArchive& ar_;
  };

  // Boost's dispatch (load_access, basic_binary_iarchive) calls these for primitives; bool and
  // strings are checked.
  template <class T>
  void load(T& t) {
    static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_class_v<T>);
    load_binary(&t, sizeof(T));
  }
  void load(bool& b) { b = load_flag(); }
  void load(std::string& s);
  void load(std::wstring& s);
  template <class T>
  void load_override(T& t) {
    this->Base::load_override(t);
  }

  [[noreturn]] static void throw_truncated();
  [[noreturn]] static void throw_corrupt(const char* why);

 private:
  const char* pos_;
  const char* end_;
  int depth_ = 0;
};

// The smallest number of bytes an item of T takes inside an archive (0: not known).
template <class T>
struct MinWireSize : std::integral_constant<std::size_t, 0> {};
template <class T>
inline constexpr std::size_t kMinWireSize = [] {
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return sizeof(T);
  } else if constexpr (memcpy_serializable_v<T> && !HasSerializeMember<T>) {
    return sizeof(T);
  } else {
    return MinWireSize<T>::value;
  }
}();
template <>
struct MinWireSize<std::string> : std::integral_constant<std::size_t, 8> {};
template <class T, class A>
struct MinWireSize<std::vector<T, A>> : std::integral_constant<std::size_t, 8> {};
template <class T, class A>
struct MinWireSize<std::list<T, A>> : std::integral_constant<std::size_t, 8> {};
template <class T, class A>
struct MinWireSize<std::deque<T, A>> : std::integral_constant<std::size_t, 8> {};
template <class K, class V, class C, class A>
struct MinWireSize<std::map<K, V, C, A>> : std::integral_constant<std::size_t, 8> {};
template <class K, class V, class H, class E, class A>
struct MinWireSize<std::unordered_map<K, V, H, E, A>> : std::integral_constant<std::size_t, 8> {};
template <class K, class C, class A>
struct MinWireSize<std::set<K, C, A>> : std::integral_constant<std::size_t, 8> {};
template <class K, class H, class E, class A>
struct MinWireSize<std::unordered_set<K, H, E, A>> : std::integral_constant<std::size_t, 8> {};
template <class T>
struct MinWireSize<std::optional<T>> : std::integral_constant<std::size_t, 1> {};
template <class... Ts>
struct MinWireSize<std::variant<Ts...>> : std::integral_constant<std::size_t, 4> {};
template <class A, class B>
struct MinWireSize<std::pair<A, B>>
    : std::integral_constant<std::size_t, kMinWireSize<A> + kMinWireSize<B>> {};
template <class... Ts>
struct MinWireSize<std::tuple<Ts...>>
    : std::integral_constant<std::size_t, (std::size_t{0} + ... + kMinWireSize<Ts>)> {};
template <class T, std::size_t N>
struct MinWireSize<std::array<T, N>> : std::integral_constant<std::size_t, N * kMinWireSize<T>> {};
template <>
struct MinWireSize<Object> : std::integral_constant<std::size_t, 1> {};

// How many items to reserve up front for `n` claimed items: bounded so that a lying count of
// zero-size items cannot allocate much before the message runs out.
template <class T>
[[nodiscard]] std::size_t reserve_hint(std::size_t n) {
  return std::min<std::size_t>(n, (std::size_t{64} << 20) / sizeof(T) + 1);
}

// ---- std adapters. Concrete archive types make these more specialized than Boost's own (in
// case a user also includes boost/serialization/vector.hpp), and ADL finds them through the
// archive's namespace.

// Trivially copyable class types without a serialize member: their bytes.
template <class T>
requires(std::is_class_v<T>&& memcpy_serializable_v<T> && !is_std_array<T>::value &&
         !is_pair_or_tuple<T>::value) void serialize(OArchive& ar, T& v, unsigned) {
  ar.save_bytes(&v, sizeof(T));
}
template <class T>
requires(std::is_class_v<T>&& memcpy_serializable_v<T> && !is_std_array<T>::value &&
         !is_pair_or_tuple<T>::value) void serialize(IArchive& ar, T& v, unsigned) {
  ar.load_bytes(&v, sizeof(T));
}

// Sequences.
template <class T, class A>
void serialize(OArchive& ar, std::vector<T, A>& v, unsigned) {
  ar.save_count(v.size());
  if constexpr (std::is_same_v<T, bool>) {
    for (bool b : v) ar << b;
  } else if constexpr (memcpy_serializable_v<T>) {
    if (!v.empty()) ar.save_bytes(v.data(), v.size() * sizeof(T));
  } else {
    for (const T& x : v) ar << x;
  }
}
template <class T, class A>
void serialize(IArchive& ar, std::vector<T, A>& v, unsigned) {
  if constexpr (std::is_same_v<T, bool>) {
    const std::size_t n = ar.load_count(1);
    v.assign(n, false);
    for (std::size_t i = 0; i < n; ++i) v[i] = ar.load_flag();
  } else if constexpr (memcpy_serializable_v<T>) {
    const std::size_t n = ar.load_count(sizeof(T));
    v.resize(n);
    if (n != 0) ar.load_bytes(v.data(), n * sizeof(T));
  } else {
    const std::size_t n = ar.load_count(kMinWireSize<T>);
    v.clear();
    v.reserve(reserve_hint<T>(n));
    for (std::size_t i = 0; i < n; ++i) {
      v.emplace_back();
      ar >> v.back();
    }
  }
}

template <class Seq>
void save_sequence(OArchive& ar, const Seq& s) {
  ar.save_count(s.size());
  for (const auto& x : s) ar << x;
}
template <class Seq>
void load_sequence(IArchive& ar, Seq& s) {
  using T = typename Seq::value_type;
  const std::size_t n = ar.load_count(kMinWireSize<T>);
  s.clear();
  for (std::size_t i = 0; i < n; ++i) {
    s.emplace_back();
    ar >> s.back();
  }
}
template <class T, class A>
void serialize(OArchive& ar, std::list<T, A>& v, unsigned) {
  save_sequence(ar, v);
}
template <class T, class A>
void serialize(IArchive& ar, std::list<T, A>& v, unsigned) {
  load_sequence(ar, v);
}
template <class T, class A>
void serialize(OArchive& ar, std::deque<T, A>& v, unsigned) {
  save_sequence(ar, v);
}
template <class T, class A>
void serialize(IArchive& ar, std::deque<T, A>& v, unsigned) {
  load_sequence(ar, v);
}

template <class T, std::size_t N>
void serialize(OArchive& ar, std::array<T, N>& v, unsigned) {
  if constexpr (memcpy_serializable_v<T>) {
    if constexpr (N != 0) ar.save_bytes(v.data(), N * sizeof(T));
  } else {
    for (const T& x : v) ar << x;
  }
}
template <class T, std::size_t N>
void serialize(IArchive& ar, std::array<T, N>& v, unsigned) {
  if constexpr (memcpy_serializable_v<T>) {
    if constexpr (N != 0) ar.load_bytes(v.data(), N * sizeof(T));
  } else {
    for (T& x : v) ar >> x;
  }
}

// Associative containers: count, then key (and value) of each item in iteration order.
template <class Map>
void save_map(OArchive& ar, const Map& m) {
  ar.save_count(m.size());
  for (const auto& [k, v] : m) ar << k << v;
}
template <class Map>
void load_map(IArchive& ar, Map& m) {
  using K = typename Map::key_type;
  using V = typename Map::mapped_type;
  const std::size_t n = ar.load_count(kMinWireSize<K> + kMinWireSize<V>);
  m.clear();
  if constexpr (requires { m.reserve(n); }) m.reserve(reserve_hint<typename Map::value_type>(n));
  for (std::size_t i = 0; i < n; ++i) {
    K k{};
    V v{};
    ar >> k >> v;
    m.insert_or_assign(std::move(k), std::move(v));
  }
}
template <class Set>
void save_set(OArchive& ar, const Set& s) {
  ar.save_count(s.size());
  for (const auto& k : s) ar << k;
}
template <class Set>
void load_set(IArchive& ar, Set& s) {
  using K = typename Set::key_type;
  const std::size_t n = ar.load_count(kMinWireSize<K>);
  s.clear();
  if constexpr (requires { s.reserve(n); }) s.reserve(reserve_hint<K>(n));
  for (std::size_t i = 0; i < n; ++i) {
    K k{};
    ar >> k;
    s.insert(std::move(k));
  }
}
template <class K, class V, class C, class A>
void serialize(OArchive& ar, std::map<K, V, C, A>& m, unsigned) {
  save_map(ar, m);
}
template <class K, class V, class C, class A>
void serialize(IArchive& ar, std::map<K, V, C, A>& m, unsigned) {
  load_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void serialize(OArchive& ar, std::unordered_map<K, V, H, E, A>& m, unsigned) {
  save_map(ar, m);
}
template <class K, class V, class H, class E, class A>
void serialize(IArchive& ar, std::unordered_map<K, V, H, E, A>& m, unsigned) {
  load_map(ar, m);
}
template <class K, class C, class A>
void serialize(OArchive& ar, std::set<K, C, A>& s, unsigned) {
  save_set(ar, s);
}
template <class K, class C, class A>
void serialize(IArchive& ar, std::set<K, C, A>& s, unsigned) {
  load_set(ar, s);
}
template <class K, class H, class E, class A>
void serialize(OArchive& ar, std::unordered_set<K, H, E, A>& s, unsigned) {
  save_set(ar, s);
}
template <class K, class H, class E, class A>
void serialize(IArchive& ar, std::unordered_set<K, H, E, A>& s, unsigned) {
  load_set(ar, s);
}

// Products.
template <class Ar, class A, class B>
requires(std::is_same_v<Ar, OArchive> ||
         std::is_same_v<Ar, IArchive>) void serialize(Ar& ar, std::pair<A, B>& p, unsigned) {
  ar& p.first& p.second;
}
template <class Ar, class... Ts>
requires(std::is_same_v<Ar, OArchive> ||
         std::is_same_v<Ar, IArchive>) void serialize(Ar& ar, std::tuple<Ts...>& t, unsigned) {
  std::apply([&ar](auto&... xs) { ((ar & xs), ...); }, t);
}

// Sums.
template <class T>
void serialize(OArchive& ar, std::optional<T>& o, unsigned) {
  const bool has = o.has_value();
  ar << has;
  if (has) ar << *o;
}
template <class T>
void serialize(IArchive& ar, std::optional<T>& o, unsigned) {
  if (ar.load_flag()) {
    o.emplace();
    ar >> *o;
  } else {
    o.reset();
  }
}
template <class... Ts>
void serialize(OArchive& ar, std::variant<Ts...>& v, unsigned) {
  if (v.valueless_by_exception()) throw_encode_error(typeid(v), "valueless variant");
  const std::uint32_t index = static_cast<std::uint32_t>(v.index());
  ar << index;
  std::visit([&ar](const auto& x) { ar << x; }, v);
}
template <class... Ts>
void serialize(IArchive& ar, std::variant<Ts...>& v, unsigned) {
  std::uint32_t index = 0;
  ar >> index;
  if (index >= sizeof...(Ts)) throw CorruptMessage("variant index out of range");
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (void)((index == I ? (ar >> v.template emplace<I>(), true) : false) || ...);
  }
  (std::index_sequence_for<Ts...>{});
}

// mproc::Object (defined in object.cc).
void serialize(OArchive& ar, Object& o, unsigned);
void serialize(IArchive& ar, Object& o, unsigned);

// ---- the top level

template <class T>
concept StringLike = std::is_convertible_v<const T&, std::string_view> &&
    (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view> ||
     std::is_same_v<std::decay_t<T>, const char*> || std::is_same_v<std::decay_t<T>, char*>);

template <class T>
concept RawRange = std::ranges::contiguous_range<const T> && std::ranges::sized_range<const T> &&
                   memcpy_serializable_v<std::ranges::range_value_t<const T>> &&
                   !std::is_same_v<std::ranges::range_value_t<const T>, bool> &&
                   !memcpy_serializable_v<T>;

// The type a value of T travels as, and which path it takes.
enum class Path { kString, kRawRange, kRawScalar, kBoost };

template <class T>
constexpr Path path_of() {
  if constexpr (StringLike<T>) {
    return Path::kString;
  } else if constexpr (memcpy_serializable_v<T>) {
    return Path::kRawScalar;
  } else if constexpr (RawRange<T>) {
    return Path::kRawRange;
  } else {
    return Path::kBoost;
  }
}

template <class T>
struct WireTypeOf {
  using type = T;
};
template <class T>
requires StringLike<T>
struct WireTypeOf<T> {
  using type = std::string;
};
template <class T>
requires(!StringLike<T> && path_of<T>() == Path::kRawRange) struct WireTypeOf<T> {
  using type = std::vector<std::remove_cv_t<std::ranges::range_value_t<const T>>>;
};

inline void put_header(std::string& out, unsigned char tag, std::uint32_t fp) {
  char h[kHeaderSize] = {static_cast<char>(tag), static_cast<char>(fp & 0xff),
                         static_cast<char>((fp >> 8) & 0xff), static_cast<char>((fp >> 16) & 0xff),
                         static_cast<char>((fp >> 24) & 0xff)};
  out.append(h, kHeaderSize);
}

// Checks the header; returns the payload.
std::string_view check_header(std::string_view bytes, unsigned char tag, std::uint32_t fp,
                              const std::type_info& expected);

}  // namespace detail

template <class T>
void encode_into(const T& value, std::string& out) {
  using U = std::remove_cvref_t<T>;
  using W = typename detail::WireTypeOf<U>::type;
  constexpr detail::Path path = detail::path_of<U>();
  const std::size_t old_size = out.size();
  if constexpr (path == detail::Path::kString) {
    if constexpr (std::is_pointer_v<U>) {
      if (value == nullptr) detail::throw_encode_error(typeid(std::string), "null char pointer");
    }
    const std::string_view s(value);
    out.reserve(old_size + detail::kHeaderSize + s.size());
    detail::put_header(out, detail::kTagRaw, detail::kFingerprint<W>);
    out.append(s);
  } else if constexpr (path == detail::Path::kRawScalar) {
    detail::put_header(out, detail::kTagRaw, detail::kFingerprint<W>);
    out.append(reinterpret_cast<const char*>(&value), sizeof(U));
  } else if constexpr (path == detail::Path::kRawRange) {
    using E = std::ranges::range_value_t<const U>;
    const std::size_t bytes = std::ranges::size(value) * sizeof(E);
    out.reserve(old_size + detail::kHeaderSize + bytes);
    detail::put_header(out, detail::kTagRaw, detail::kFingerprint<W>);
    if (bytes != 0) out.append(reinterpret_cast<const char*>(std::ranges::data(value)), bytes);
  } else {
    static_assert(!std::is_pointer_v<U>, "mproc cannot send a pointer: send the value");
    detail::put_header(out, detail::kTagBoost, detail::kFingerprint<W>);
    try {
      detail::OArchive ar(out);
      ar << value;
    } catch (const boost::archive::archive_exception& e) {
      out.resize(old_size);
      detail::throw_encode_error(typeid(U), e.what());
    } catch (...) {
      out.resize(old_size);
      throw;
    }
  }
}

template <class T>
std::string encode(const T& value) {
  std::string out;
  encode_into(value, out);
  return out;
}

template <class T>
void decode_into(std::string_view bytes, T& out) {
  static_assert(!std::is_const_v<T> && !std::is_reference_v<T>);
  constexpr detail::Path path = detail::path_of<T>();
  static_assert(path != detail::Path::kString || std::is_same_v<T, std::string>,
                "decode a string-like message as std::string");
  static_assert(path != detail::Path::kRawRange || detail::is_std_vector<T>::value,
                "decode a contiguous range as std::vector");
  using W = typename detail::WireTypeOf<T>::type;
  if constexpr (path == detail::Path::kString) {
    const std::string_view p =
        detail::check_header(bytes, detail::kTagRaw, detail::kFingerprint<W>, typeid(T));
    out.assign(p.data(), p.size());
  } else if constexpr (path == detail::Path::kRawScalar) {
    const std::string_view p =
        detail::check_header(bytes, detail::kTagRaw, detail::kFingerprint<W>, typeid(T));
    if (p.size() != sizeof(T)) {
      detail::throw_decode_error(typeid(T), "payload of " + std::to_string(p.size()) +
                                                " bytes, expected " + std::to_string(sizeof(T)));
    }
    std::memcpy(static_cast<void*>(std::addressof(out)), p.data(), sizeof(T));
  } else if constexpr (path == detail::Path::kRawRange) {
    using E = typename T::value_type;
    const std::string_view p =
        detail::check_header(bytes, detail::kTagRaw, detail::kFingerprint<W>, typeid(T));
    if (p.size() % sizeof(E) != 0) {
      detail::throw_decode_error(typeid(T), "payload of " + std::to_string(p.size()) +
                                                " bytes is not a whole number of items");
    }
    out.resize(p.size() / sizeof(E));
    if (!p.empty()) std::memcpy(static_cast<void*>(out.data()), p.data(), p.size());
  } else {
    const std::string_view p =
        detail::check_header(bytes, detail::kTagBoost, detail::kFingerprint<W>, typeid(T));
    try {
      detail::IArchive ar(p);
      ar >> out;
      if (ar.remaining() != 0) {
        detail::throw_decode_error(typeid(T), std::to_string(ar.remaining()) + " trailing bytes");
      }
    } catch (const boost::archive::archive_exception& e) {
      detail::throw_decode_error(typeid(T), e.what());
    } catch (const detail::CorruptMessage& e) {
      detail::throw_decode_error(typeid(T), e.what());
    } catch (const std::bad_alloc&) {
      detail::throw_decode_error(typeid(T), "out of memory (corrupt length?)");
    } catch (const std::length_error& e) {
      detail::throw_decode_error(typeid(T), e.what());
    }
  }
}

namespace detail {

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

// A handle type with a blank state. optional and variant are left out: they are constructible
// from whatever their alternatives are, and load their own state.
template <class T>
concept LoadsFromBlank = std::is_class_v<T> && !is_optional<T>::value && !is_variant<T>::value &&
                         std::is_constructible_v<T, BlankHandle>;

// What decode loads into: a blank handle for the handle types that have one (blank_handle.h),
// also as elements of a tuple (a task's argument list), and T{} otherwise.
template <class T>
T blank_for_loading() {
  if constexpr (LoadsFromBlank<T>) {
    return T(BlankHandle{});
  } else if constexpr (is_tuple<T>::value) {
    return []<class... Ts>(std::type_identity<std::tuple<Ts...>>) {
      if constexpr ((LoadsFromBlank<Ts> || ...)) {
        return std::tuple<Ts...>(blank_for_loading<Ts>()...);
      } else {
        return std::tuple<Ts...>{};
      }
    }(std::type_identity<T>{});
  } else {
    return T{};
  }
}

}  // namespace detail

template <class T>
T decode(std::string_view bytes) {
  T value = detail::blank_for_loading<T>();
  decode_into(bytes, value);
  return value;
}

}  // namespace mproc

// The std types adapted above need no per-type class information in the archive (saves bytes
// and a registry lookup per item) and are never tracked (values, not shared objects).
#define MPROC_DETAIL_SERIALIZE_PLAIN(TEMPLATE_PARAMS, TYPE)  \
  namespace boost::serialization {                           \
  template <TEMPLATE_PARAMS>                                 \
  struct implementation_level_impl<const TYPE> {             \
    typedef mpl::integral_c_tag tag;                         \
    typedef mpl::int_<object_serializable> type;             \
    BOOST_STATIC_CONSTANT(int, value = object_serializable); \
  };                                                         \
  template <TEMPLATE_PARAMS>                                 \
  struct tracking_level_impl<const TYPE> {                   \
    typedef mpl::integral_c_tag tag;                         \
    typedef mpl::int_<track_never> type;                     \
    BOOST_STATIC_CONSTANT(int, value = track_never);         \
  };                                                         \
  }
#define MPROC_DETAIL_COMMA ,
MPROC_DETAIL_SERIALIZE_PLAIN(class T MPROC_DETAIL_COMMA class A,
                             std::vector<T MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(class T MPROC_DETAIL_COMMA class A, std::list<T MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(class T MPROC_DETAIL_COMMA class A, std::deque<T MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(class T MPROC_DETAIL_COMMA std::size_t N,
                             std::array<T MPROC_DETAIL_COMMA N>)
MPROC_DETAIL_SERIALIZE_PLAIN(
    class K MPROC_DETAIL_COMMA class V MPROC_DETAIL_COMMA class C MPROC_DETAIL_COMMA class A,
    std::map<K MPROC_DETAIL_COMMA V MPROC_DETAIL_COMMA C MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(class K MPROC_DETAIL_COMMA class V MPROC_DETAIL_COMMA class H
                                 MPROC_DETAIL_COMMA class E MPROC_DETAIL_COMMA class A,
                             std::unordered_map<K MPROC_DETAIL_COMMA V MPROC_DETAIL_COMMA H
                                                    MPROC_DETAIL_COMMA E MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(class K MPROC_DETAIL_COMMA class C MPROC_DETAIL_COMMA class A,
                             std::set<K MPROC_DETAIL_COMMA C MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(
    class K MPROC_DETAIL_COMMA class H MPROC_DETAIL_COMMA class E MPROC_DETAIL_COMMA class A,
    std::unordered_set<K MPROC_DETAIL_COMMA H MPROC_DETAIL_COMMA E MPROC_DETAIL_COMMA A>)
MPROC_DETAIL_SERIALIZE_PLAIN(class A MPROC_DETAIL_COMMA class B, std::pair<A MPROC_DETAIL_COMMA B>)
MPROC_DETAIL_SERIALIZE_PLAIN(class... Ts, std::tuple<Ts...>)
MPROC_DETAIL_SERIALIZE_PLAIN(class T, std::optional<T>)
MPROC_DETAIL_SERIALIZE_PLAIN(class... Ts, std::variant<Ts...>)
#undef MPROC_DETAIL_COMMA
#undef MPROC_DETAIL_SERIALIZE_PLAIN

namespace boost::serialization {
template <>
struct implementation_level_impl<const mproc::Object> {
  typedef mpl::integral_c_tag tag;
  typedef mpl::int_<object_serializable> type;
  BOOST_STATIC_CONSTANT(int, value = object_serializable);
};
template <>
struct tracking_level_impl<const mproc::Object> {
  typedef mpl::integral_c_tag tag;
  typedef mpl::int_<track_never> type;
  BOOST_STATIC_CONSTANT(int, value = track_never);
};
}  // namespace boost::serialization

BOOST_SERIALIZATION_REGISTER_ARCHIVE(mproc::detail::OArchive)
BOOST_SERIALIZATION_REGISTER_ARCHIVE(mproc::detail::IArchive)
