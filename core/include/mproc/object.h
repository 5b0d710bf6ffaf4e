// mproc/object.h
//
// `Object` is a dynamic value for Python-style heterogeneous data: None, bool, int, float, str,
// bytes, list, tuple and dict, nested freely, as `multiprocessing` code sends them:
//
//   mproc::Object v = mproc::Object::list({42, mproc::None, "hello"});
//   conn.send(v);                                  // serializable through mproc::encode/decode
//   std::cout << v;                                // [42, None, 'hello'], as Python prints it
//   auto d = mproc::Object::dict({{1, "1"}, {"2", 2}, {0.25, mproc::None}});
//   d["x"] = mproc::Object::tuple({1});            // {1: '1', '2': 2, 0.25: None, 'x': (1,)}
//
// A Reference (a manager proxy put into a container) is the one kind that is not a value: see
// Reference. Types may take part in from()/to() with `Object to_object() const` and
// `static T from_object(const Object&)` members.
//
// Python counterpart: the built-in types, with value semantics (copying an Object copies its
// contents; Python shares references). `int` is 64-bit here (Python's is unbounded); `str` holds
// UTF-8, `bytes` any bytes. Dicts keep insertion order (as Python 3.7+ dicts do); keys may be of
// mixed types and must be hashable (not list or dict); 1, 1.0 and True are the same key, as in
// Python. Equality, ordering and hashing follow Python's rules: `Object{1} == Object{1.0}`,
// `hash(1) == hash(1.0) == hash(True)`, numbers of any kind order against each other, str/bytes/
// list/tuple order lexicographically among themselves, and any other order comparison throws
// TypeError (as Python raises it). `repr()` and `operator<<` print exactly what Python's `repr`
// prints for the same value (floats as the shortest string that round-trips; of the non-ASCII
// characters Python escapes, the control, format, separator, private-use and surrogate ranges are
// escaped, unassigned code points are not). Numbers and tuples hash exactly as in CPython; str and
// bytes hash by a stable FNV-1a (Python's str hash is randomized per process anyway).
//
// Errors: asking for the wrong type (`as_int()` on a str) throws TypeError naming both types;
// a missing dict key throws KeyError, an index out of range IndexError (errors.h).
// Thread safety: as a std::vector: concurrent const access is safe, mutation needs exclusion.
// Fork safety: a plain value; nothing to do. Lifetime: references returned by accessors are valid
// until the Object (or the container holding it) is modified or destroyed.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/errors.h"

namespace mproc {

// Python's `None`.
struct NoneType {
  friend constexpr bool operator==(NoneType, NoneType) noexcept { return true; }
};
inline constexpr NoneType None{};

// Python `bytes`: a byte string, printed as b'...'.
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

class Object;

// A reference to an object that lives in another process (a manager's proxy stored in a
// container, Python's nested proxies): where it lives and its id there. Equal when they name the
// same object. `keepalive`, set only in the process that owns the referent, holds the referent
// alive while any Object holding this reference exists.
struct Reference {
  std::string type_name;
  std::string address;
  std::optional<std::string> authkey;
  std::uint64_t id = 0;
  std::shared_ptr<const void> keepalive;
  friend bool operator==(const Reference& a, const Reference& b) {
    return a.id == b.id && a.address == b.address;
  }
};

namespace detail {
// Turns a Reference decoded in this thread into one that keeps its referent alive (a manager's
// server installs one in each connection thread; elsewhere none is installed). It may throw, to
// refuse a reference to an object that does not exist.
using ReferenceResolver = std::function<std::shared_ptr<const void>(const Reference&)>;
void set_thread_reference_resolver(ReferenceResolver resolver);
}  // namespace detail

// An insertion-ordered dict of Objects (Python `dict`).
class Dict {
 public:
  Dict() = default;

  [[nodiscard]] std::size_t size() const noexcept { return keys_.size(); }
  [[nodiscard]] bool empty() const noexcept { return keys_.empty(); }
  [[nodiscard]] bool contains(const Object& key) const;
  // The value for `key`, or nullptr. Throws TypeError for an unhashable key.
  [[nodiscard]] const Object* get(const Object& key) const;
  [[nodiscard]] Object* get(const Object& key);
  // Throws KeyError if `key` is missing.
  [[nodiscard]] const Object& at(const Object& key) const;
  [[nodiscard]] Object& at(const Object& key);
  // The value for `key`, inserted as None at the end if missing (Python's `d.setdefault(k)`).
  Object& operator[](const Object& key);
  // `d[key] = value`: replaces the value in place or appends a new item.
  void set(Object key, Object value);
  // `del d[key]`; returns whether the key was there.
  bool erase(const Object& key);
  void clear() noexcept;

  // The keys and values, in insertion order (item i is keys()[i]: values()[i]).
  [[nodiscard]] const std::vector<Object>& keys() const noexcept { return keys_; }
  [[nodiscard]] const std::vector<Object>& values() const noexcept { return values_; }
  [[nodiscard]] std::vector<Object>& values() noexcept { return values_; }

  // Python's dict equality: the same keys mapped to equal values, in any order.
  friend bool operator==(const Dict& a, const Dict& b);

 private:
  [[nodiscard]] std::ptrdiff_t find(const Object& key, std::size_t hash) const;
  void rebuild_index();

  std::vector<Object> keys_;
  std::vector<Object> values_;
  std::unordered_multimap<std::size_t, std::size_t> index_;  // hash(key) -> position
};

class Object {
 public:
  // The Python type of the value; the order is the wire format's, do not reorder.
  enum class Kind : std::uint8_t {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kList,
    kTuple,
    kDict,
    kReference
  };
  using List = std::vector<Object>;

  Object() noexcept = default;  // None
  Object(NoneType) noexcept {}
  Object(bool b) noexcept : v_(std::in_place_index<1>, b) {}
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) Object(I i)
      : v_(std::in_place_index<2>, to_int64(i)) {}
  Object(double d) noexcept : v_(std::in_place_index<3>, d) {}
  Object(float d) noexcept : v_(std::in_place_index<3>, static_cast<double>(d)) {}
  Object(const char* s) : v_(std::in_place_index<4>, s) {}
  Object(char* s) : v_(std::in_place_index<4>, s) {}
  // Any other pointer would silently become a bool (True): refused.
  template <class T>
  Object(T*) = delete;
  Object(std::string s) noexcept : v_(std::in_place_index<4>, std::move(s)) {}
  Object(std::string_view s) : v_(std::in_place_index<4>, s) {}
  Object(Bytes b) noexcept : v_(std::in_place_index<5>, std::move(b)) {}
  Object(Dict d) : v_(std::in_place_index<8>, std::move(d)) {}
  Object(Reference r)
      : v_(std::in_place_index<9>, std::make_shared<const Reference>(std::move(r))) {}

  [[nodiscard]] static Object none() noexcept { return Object(); }
  [[nodiscard]] static Object bytes(std::string_view b) { return Object(Bytes{std::string(b)}); }
  [[nodiscard]] static Object list(std::initializer_list<Object> items = {});
  [[nodiscard]] static Object list(List items) noexcept;
  [[nodiscard]] static Object tuple(std::initializer_list<Object> items = {});
  [[nodiscard]] static Object tuple(List items) noexcept;
  // Later duplicates of a key replace the earlier value, keeping its position (as Python's
  // `{1: 'a', 1: 'b'}` does). Throws TypeError for an unhashable key.
  [[nodiscard]] static Object dict(std::initializer_list<std::pair<Object, Object>> items = {});

  // The Object for a C++ value: numbers, strings, Bytes, None, std::optional (nullopt is None),
  // std::pair and std::tuple (a tuple), maps (a dict, in the map's order) and other ranges (a
  // list), nested. `from(std::vector{1, 2})` is `[1, 2]`.
  template <class T>
  [[nodiscard]] static Object from(const T& value);
  // The C++ value for this Object, the reverse of `from`: `o.to<std::vector<int>>()`,
  // `o.to<std::map<std::string, Object>>()`. Throws TypeError for a value of another type (and
  // ValueError for an int out of the target's range).
  template <class T>
  [[nodiscard]] T to() const;

  [[nodiscard]] Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  // Python's type name: "NoneType", "bool", "int", "float", "str", "bytes", "list", "tuple",
  // "dict"; a Reference is a "proxy".
  [[nodiscard]] std::string_view type_name() const noexcept;

  [[nodiscard]] bool is_none() const noexcept { return kind() == Kind::kNone; }
  [[nodiscard]] bool is_bool() const noexcept { return kind() == Kind::kBool; }
  [[nodiscard]] bool is_int() const noexcept { return kind() == Kind::kInt; }
  [[nodiscard]] bool is_float() const noexcept { return kind() == Kind::kFloat; }
  [[nodiscard]] bool is_str() const noexcept { return kind() == Kind::kStr; }
  [[nodiscard]] bool is_bytes() const noexcept { return kind() == Kind::kBytes; }
  [[nodiscard]] bool is_list() const noexcept { return kind() == Kind::kList; }
  [[nodiscard]] bool is_tuple() const noexcept { return kind() == Kind::kTuple; }
  [[nodiscard]] bool is_dict() const noexcept { return kind() == Kind::kDict; }
  [[nodiscard]] bool is_reference() const noexcept { return kind() == Kind::kReference; }

  // Typed access; the wrong type throws TypeError ("expected int, got str"). As in Python, a
  // bool is also an int (as_int(True) == 1), and an int is accepted where a float is asked for.
  [[nodiscard]] bool as_bool() const;
  [[nodiscard]] std::int64_t as_int() const;
  [[nodiscard]] double as_float() const;
  [[nodiscard]] const std::string& as_str() const;
  [[nodiscard]] const std::string& as_bytes() const;
  [[nodiscard]] const List& as_list() const;
  [[nodiscard]] List& as_list();
  [[nodiscard]] const List& as_tuple() const;
  [[nodiscard]] const Dict& as_dict() const;
  [[nodiscard]] Dict& as_dict();
  [[nodiscard]] const Reference& as_reference() const;

  // Python's truth value (`bool(x)`): None, False, 0, 0.0 and empty containers are false.
  [[nodiscard]] bool truthy() const noexcept;
  // `len(x)` for str (in bytes of UTF-8), bytes, list, tuple and dict; TypeError otherwise.
  [[nodiscard]] std::size_t size() const;

  // `x[i]` for a list or tuple (negative i counts from the end; IndexError if out of range).
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) [[nodiscard]] const Object&
  operator[](I i) const {
    return item(to_int64(i));
  }
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) [[nodiscard]] Object& operator[](
      I i) {
    return item(to_int64(i));
  }
  // `d[key]` for a dict (or `l[Object(i)]` for a list or tuple): const throws KeyError for a
  // missing key; non-const inserts None (so that `d["k"] = 1` works).
  [[nodiscard]] const Object& operator[](const Object& key) const;
  Object& operator[](const Object& key);
  [[nodiscard]] const Object& operator[](const char* key) const { return (*this)[Object(key)]; }
  Object& operator[](const char* key) { return (*this)[Object(key)]; }
  // `x in d` for a dict, `x in l` for a list or tuple, substring for str and bytes.
  [[nodiscard]] bool contains(const Object& x) const;
  // `l.append(x)` for a list.
  void append(Object x);

  // Python's `repr(x)`, and `str(x)` (the same except that a str is not quoted).
  [[nodiscard]] std::string repr() const;
  [[nodiscard]] std::string str() const;
  // Python's `hash(x)` (numbers exactly as CPython; str, bytes and tuples by their contents).
  // Throws TypeError for list and dict (unhashable).
  [[nodiscard]] std::int64_t hash() const;

  friend bool operator==(const Object& a, const Object& b);
  // Python's ordering; TypeError where Python has none ('<' between str and int, dicts, None).
  friend bool operator<(const Object& a, const Object& b);
  friend bool operator>(const Object& a, const Object& b) { return b < a; }
  friend bool operator<=(const Object& a, const Object& b);
  friend bool operator>=(const Object& a, const Object& b) { return b <= a; }
  friend std::ostream& operator<<(std::ostream& os, const Object& o);

 private:
  template <class I>
  static std::int64_t to_int64(I i) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (i > static_cast<I>(INT64_MAX)) throw_overflow();
    }
    return static_cast<std::int64_t>(i);
  }
  [[nodiscard]] const Object& item(std::int64_t i) const;
  [[nodiscard]] Object& item(std::int64_t i);
  [[noreturn]] static void throw_overflow();
  [[noreturn]] void throw_type(std::string_view expected) const;

  // A dict on the heap, copied deeply, so that an Object stays small (40 bytes) although a Dict
  // is not. A moved-from box reads as an empty dict.
  class DictBox {
   public:
    explicit DictBox(Dict d);
    DictBox(const DictBox& other);
    DictBox(DictBox&& other) noexcept = default;
    DictBox& operator=(const DictBox& other);
    DictBox& operator=(DictBox&& other) noexcept = default;
    ~DictBox();
    [[nodiscard]] const Dict& get() const noexcept;
    [[nodiscard]] Dict& get();

   private:
    std::unique_ptr<Dict> p_;
  };

  // Alternatives in Kind's order; list and tuple share a type and are told apart by index.
  std::variant<NoneType, bool, std::int64_t, double, std::string, Bytes, List, List, DictBox,
               std::shared_ptr<const Reference>>
      v_;
};

namespace detail {
template <class T>
struct is_std_optional : std::false_type {};
template <class T>
struct is_std_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_tuple_like : std::false_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};
template <class... Ts>
struct is_tuple_like<std::tuple<Ts...>> : std::true_type {};
template <class T>
concept MapLike = std::ranges::range<const T> && requires {
  typename T::key_type;
  typename T::mapped_type;
};
template <class T>
concept Appendable = requires(T& c, typename T::value_type v) {
  c.insert(c.end(), std::move(v));
};
}  // namespace detail

template <class T>
Object Object::from(const T& value) {
  if constexpr (std::is_same_v<T, Object>) {
    return value;
  } else if constexpr (requires {
                         { value.to_object() } -> std::convertible_to<Object>;
                       }) {
    return value.to_object();  // a type that says how (a manager proxy: a Reference)
  } else if constexpr (std::is_same_v<T, bool> || std::is_arithmetic_v<T> ||
                       std::is_same_v<T, NoneType> || std::is_same_v<T, Bytes> ||
                       std::is_same_v<T, Dict> ||
                       std::is_convertible_v<const T&, std::string_view>) {
    if constexpr (std::is_convertible_v<const T&, std::string_view> &&
                  !std::is_same_v<T, std::string>) {
      return Object(std::string_view(value));
    } else {
      return Object(value);
    }
  } else if constexpr (detail::is_std_optional<T>::value) {
    return value ? from(*value) : Object();
  } else if constexpr (detail::is_tuple_like<T>::value) {
    return std::apply([](const auto&... xs) { return tuple(List{from(xs)...}); }, value);
  } else if constexpr (detail::MapLike<T>) {
    Dict d;
    for (const auto& [k, v] : value) d.set(from(k), from(v));
    return Object(std::move(d));
  } else {
    static_assert(std::ranges::range<const T>, "Object::from: no Python counterpart for this type");
    List items;
    for (const auto& x : value) items.push_back(from(x));
    return list(std::move(items));
  }
}

template <class T>
T Object::to() const {
  if constexpr (std::is_same_v<T, Object>) {
    return *this;
  } else if constexpr (requires(const Object& o) {
                         { T::from_object(o) } -> std::convertible_to<T>;
                       }) {
    return T::from_object(*this);
  } else if constexpr (std::is_same_v<T, bool>) {
    return as_bool();
  } else if constexpr (std::is_integral_v<T>) {
    const std::int64_t i = as_int();
    if (!std::in_range<T>(i)) throw ValueError("int " + std::to_string(i) + " out of range");
    return static_cast<T>(i);
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(as_float());
  } else if constexpr (std::is_same_v<T, std::string>) {
    return as_str();
  } else if constexpr (std::is_same_v<T, Bytes>) {
    return Bytes{as_bytes()};
  } else if constexpr (std::is_same_v<T, NoneType>) {
    if (!is_none()) throw_type("NoneType");
    return None;
  } else if constexpr (std::is_same_v<T, Dict>) {
    return as_dict();
  } else if constexpr (detail::is_std_optional<T>::value) {
    if (is_none()) return std::nullopt;
    return to<typename T::value_type>();
  } else if constexpr (detail::is_tuple_like<T>::value) {
    const List& items = is_tuple() ? as_tuple() : as_list();
    if (items.size() != std::tuple_size_v<T>) {
      throw TypeError("expected a tuple of " + std::to_string(std::tuple_size_v<T>) +
                      " items, got " + std::to_string(items.size()));
    }
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return T{items[I].template to<std::tuple_element_t<I, T>>()...};
    }
    (std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (detail::MapLike<T>) {
    const Dict& d = as_dict();
    T out;
    for (std::size_t i = 0; i < d.size(); ++i) {
      out.emplace(d.keys()[i].template to<typename T::key_type>(),
                  d.values()[i].template to<typename T::mapped_type>());
    }
    return out;
  } else {
    static_assert(detail::Appendable<T>, "Object::to: no conversion to this type");
    const List& items = is_tuple() ? as_tuple() : as_list();
    T out;
    for (const Object& x : items) out.insert(out.end(), x.template to<typename T::value_type>());
    return out;
  }
}

}  // namespace mproc

template <>
struct std::hash<mproc::Object> {
  // Throws mproc::TypeError for an unhashable value (list, dict), as Python's hash() does.
  std::size_t operator()(const mproc::Object& o) const {
    return static_cast<std::size_t>(o.hash());
  }
};
