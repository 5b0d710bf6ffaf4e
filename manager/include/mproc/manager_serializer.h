// mproc/manager_serializer.h
//
// How a manager's arguments and results become bytes (Python's `BaseManager(...,
// serializer='pickle' | 'xmlrpclib')`). Chosen per manager with `ManagerOptions::serializer`
// (manager.h); the server and all its clients must use the same one.
//
//   Serializer::kBinary  (default, Python's 'pickle')  mproc::encode (serialize.h): any
//       serializable type, fastest, but only between processes of the same build.
//   Serializer::kText    (Python's 'xmlrpclib')  a value travels as its `mproc::Object` form
//       (Object::from / Object::to, object.h) written as the text below, which depends on no
//       build, architecture or byte order.
//
//   std::string t = mproc::encode_text(mproc::Object::tuple({"hi", mproc::None, 2.5}));
//   // t == "t3:s2:hiNf2.5;"            mproc::decode_text(t) gives the tuple back
//
// What the text serializer carries: the types that have an Object form both ways: bool, integers
// (as a 64-bit int), float and double, std::string (UTF-8), Bytes, NoneType, Object and Dict, and
// std::optional, std::pair, std::tuple, maps and appendable ranges (std::vector, std::list,
// std::deque, std::set, ...) of those, nested, and user types with `Object to_object() const` and
// `static T from_object(const Object&)`. So these proxies work over it: Proxy<T> whose methods
// take and return such types, QueueProxy<T> for such a T, the SyncManager's dict, list, set,
// Value, Array, Namespace, Queue/JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Event,
// Condition and Barrier. What does not: proxies inside values (nested proxies, Object's
// Reference kind), enums, std::variant, std::array, long double and types that have only a
// Boost `serialize` member: an argument or queue item of such a type throws SerializationError,
// naming the type, before the request is sent; such a result throws it from the server (after the
// method ran). The manager's Pool (its task calls are binary) throws ValueError when created. As
// the same compiled code serves both serializers, every type must also be one mproc::encode
// takes. An int is 64-bit signed; a std::string's bytes travel unchanged (not checked as UTF-8).
// Exceptions do not go through the serializer: their payload (envelope.h) is already a fixed,
// little-endian format.
//
// Text form (version 1), one value:
//   N                      None
//   T / F                  True / False
//   i<decimal>;            int, e.g. i-42;
//   f<decimal>;            float, the shortest decimal that reads back the same double
//                          (std::to_chars), or inf, -inf, nan; e.g. f0.1;
//   s<length>:<bytes>      str: length in bytes (decimal), then the UTF-8 bytes as they are
//   b<length>:<hex>        bytes: length, then two lowercase hex digits per byte
//   l<count>:<items>       list; t<count>:<items> tuple; d<count>:<key><value>... dict
// Nothing else (no spaces, no trailing bytes). Decoding checks every length and count against the
// bytes left before allocating and limits nesting as decode does (serialize.h): a corrupt message
// gives SerializationError.
//
// Thread safety: plain functions without state. Fork safety: nothing to do.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "mproc/errors.h"
#include "mproc/object.h"
#include "mproc/serialize.h"

namespace mproc {

class BaseProxy;

enum class Serializer : std::uint8_t {
  kBinary,  // mproc::encode: every serializable type, same build only
  kText,    // the portable text form above: types with an Object form
};

// "binary" or "text".
[[nodiscard]] std::string_view serializer_name(Serializer serializer) noexcept;

// The text form of `value`. Throws SerializationError for a Reference (a proxy).
[[nodiscard]] std::string encode_text(const Object& value);
void encode_text_into(const Object& value, std::string& out);
// The value a text form describes. Throws SerializationError for anything that is not exactly
// one well-formed value.
[[nodiscard]] Object decode_text(std::string_view text);

namespace detail {

// Whether T has an Object form both ways (what Object::from and Object::to accept), so that the
// text serializer can carry it.
template <class T>
consteval bool text_portable() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_base_of_v<BaseProxy, U> || std::is_same_v<U, Reference>) {
    return false;  // a Reference has no text form
  } else if constexpr (std::is_same_v<U, Object> || std::is_same_v<U, Dict> ||
                       std::is_same_v<U, NoneType> || std::is_same_v<U, Bytes> ||
                       std::is_same_v<U, std::string> || std::is_same_v<U, bool> ||
                       std::is_integral_v<U> || std::is_same_v<U, double> ||
                       std::is_same_v<U, float>) {
    return true;
  } else if constexpr (requires(const U& u, const Object& o) {
                         { u.to_object() } -> std::convertible_to<Object>;
                         { U::from_object(o) } -> std::convertible_to<U>;
                       }) {
    return true;
  } else if constexpr (is_std_optional<U>::value) {
    return text_portable<typename U::value_type>();
  } else if constexpr (is_tuple_like<U>::value) {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (text_portable<std::tuple_element_t<I, U>>() && ...);
    }
    (std::make_index_sequence<std::tuple_size_v<U>>{});
  } else if constexpr (MapLike<U>) {
    return text_portable<typename U::key_type>() && text_portable<typename U::mapped_type>();
  } else if constexpr (std::ranges::range<const U> && requires { typename U::value_type; }) {
    if constexpr (Appendable<U>) {
      return text_portable<typename U::value_type>();
    } else {
      return false;
    }
  } else {
    return false;
  }
}
template <class T>
inline constexpr bool text_portable_v = text_portable<T>();

[[noreturn]] void throw_not_text_portable(const std::type_info& type);
[[noreturn]] void throw_text_mismatch(const std::type_info& type, const std::exception& why);

// The text paths, out of line and cold: the binary default keeps its call path as it was.
template <class T>
[[gnu::cold, gnu::noinline]] void encode_text_payload_into(const T& value, std::string& out) {
  if constexpr (text_portable_v<T>) {
    encode_text_into(Object::from(value), out);
  } else {
    throw_not_text_portable(typeid(T));
  }
}
template <class T>
[[gnu::cold, gnu::noinline]] T decode_text_payload(std::string_view bytes) {
  if constexpr (text_portable_v<T>) {
    Object value = decode_text(bytes);
    try {
      return value.template to<T>();
    } catch (const TypeError& e) {
      throw_text_mismatch(typeid(T), e);
    } catch (const ValueError& e) {
      throw_text_mismatch(typeid(T), e);
    }
  } else {
    throw_not_text_portable(typeid(T));
  }
}

// A payload (an argument tuple, a result, a queue item) in the chosen form.
template <class T>
void encode_payload_into(const T& value, Serializer serializer, std::string& out) {
  if (serializer == Serializer::kBinary) [[likely]] {
    encode_into(value, out);
  } else {
    encode_text_payload_into(value, out);
  }
}

template <class T>
[[nodiscard]] std::string encode_payload(const T& value, Serializer serializer) {
  std::string out;
  encode_payload_into(value, serializer, out);
  return out;
}

// Throws SerializationError when the bytes are not a T in that form.
template <class T>
[[nodiscard]] T decode_payload(std::string_view bytes, Serializer serializer) {
  if (serializer == Serializer::kBinary) [[likely]] {
    return decode<T>(bytes);
  }
  return decode_text_payload<T>(bytes);
}

// The serializer of the server connection this thread serves (kBinary outside a server).
[[nodiscard]] Serializer current_serializer() noexcept;
void set_current_serializer(Serializer serializer) noexcept;

}  // namespace detail
}  // namespace mproc
