// mproc/managed_containers.h
//
// The server-side objects behind the container proxies of container_proxies.h: a dict, a list,
// a Value, an Array, a Namespace and a set, each holding mproc::Objects (object.h), so proxies
// of different C++ types may share one object. They live in a manager's server (manager.h,
// sync_manager.h); you use them through proxies, not directly:
//
//   mproc::Manager manager;
//   auto d = manager.dict();            // a managed::Dict in the server, a DictProxy here
//
// Python counterpart: the referents of `SyncManager.dict()/list()/Value()/Array()/Namespace()`
// (`dict`, `list`, `managers.Value`, `array.array`, `managers.Namespace`) and of `set`.
//
// Each public method is one request from a proxy; the exposed ones are listed by
// `exposed_methods()`. An operation Python does in one server call stays one call, so it is
// atomic against other clients: `setdefault`, `pop`, `popitem`, `append`, `extend`, and the
// read-modify-write `Value::iadd/isub/imul` (Python's `value += x` is a get and a set, which
// loses updates; ours does not).
//
// Errors (raised in the server, rethrown by the proxy as themselves): a missing key -> KeyError,
// an index out of range -> IndexError, a missing attribute -> AttributeError, `list.remove` /
// `list.index` of an absent value -> ValueError, an unhashable key or unorderable values ->
// TypeError, a dict whose size changed under an iteration -> mproc::Error (Python's
// RuntimeError).
//
// Thread safety: the server calls every method from several connection threads at once; each
// object guards its state with its own mutex, and no method blocks.
// Fork safety, lifetime: plain server-side values, owned by the server's object table.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "mproc/object.h"
#include "mproc/proxy.h"

namespace mproc::managed {

// Python `dict`, insertion-ordered. Built from None (empty), a dict, or a list of pairs.
class Dict {
 public:
  explicit Dict(const Object& initial = Object());
  static std::span<const detail::Method<Dict>> exposed_methods();

  // `d[key]`; KeyError if missing.
  Object getitem(const Object& key) const;
  // `d[key] = value`.
  void setitem(Object key, Object value);
  // `del d[key]`; KeyError if missing.
  void delitem(const Object& key);
  // `d.get(key, default_value)`.
  Object get(const Object& key, Object default_value) const;
  // The value, or nullopt if missing.
  std::optional<Object> lookup(const Object& key) const;
  bool contains(const Object& key) const;
  std::int64_t len() const;
  // Lists (Python's views, as copies): the keys, the values, the (key, value) tuples.
  Object keys() const;
  Object values() const;
  Object items() const;
  // The keys, last first (`reversed(d)`).
  Object reversed() const;
  // A plain dict with the same items.
  Object copy() const;
  void clear();
  // `d.pop(key[, default])`: KeyError if missing and no default.
  Object pop(const Object& key, std::optional<Object> default_value);
  // Removes and returns the last inserted (key, value) tuple; KeyError when empty.
  Object popitem();
  // `d.setdefault(key, default_value)`: the value, inserted first if missing.
  Object setdefault(Object key, Object default_value);
  // `d.update(items)` / `d |= items`: a dict or a list of pairs.
  void update(const Object& items);
  // Iteration: the key at `pos` (nullopt past the end). mproc::Error if the dict no longer has
  // `expected_len` items (Python's "dictionary changed size during iteration").
  std::optional<Object> iter_key(std::int64_t pos, std::int64_t expected_len) const;
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  ::mproc::Dict dict_;
};

// Python `list`. Built from None (empty), a list, a tuple, or a dict (its keys).
class List {
 public:
  explicit List(const Object& initial = Object());
  static std::span<const detail::Method<List>> exposed_methods();

  // `l[i]` (negative counts from the end); IndexError out of range.
  Object getitem(std::int64_t i) const;
  // `l[start:stop:step]`, as Python clamps them; ValueError for a zero step.
  Object getslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                  std::optional<std::int64_t> step) const;
  void setitem(std::int64_t i, Object value);
  // `l[start:stop:step] = items` (a list, a tuple or a dict's keys) in one step. Without a step
  // (or step 1) the slice may change length, as Python's; an extended slice needs exactly as
  // many items as it selects (ValueError otherwise, the list unchanged).
  void setslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                std::optional<std::int64_t> step, const Object& items);
  void delitem(std::int64_t i);
  // `del l[start:stop:step]`.
  void delslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                std::optional<std::int64_t> step);
  std::int64_t len() const;
  bool contains(const Object& x) const;
  void append(Object x);
  // `l.extend(items)` / `l += items`: a list, a tuple or a dict (its keys).
  void extend(const Object& items);
  void insert(std::int64_t i, Object x);
  // `l.pop(i)`; IndexError for an empty list or an index out of range.
  Object pop(std::int64_t i);
  // Removes the first item equal to x; ValueError if none.
  void remove(const Object& x);
  // The first position of x in [start, stop); ValueError if none.
  std::int64_t index(const Object& x, std::int64_t start, std::optional<std::int64_t> stop) const;
  std::int64_t count(const Object& x) const;
  void reverse();
  // Stable, as Python's; TypeError (list unchanged) when items do not compare.
  void sort(bool reverse);
  void clear();
  Object copy() const;
  // `l *= n` (n <= 0 empties it).
  void imul(std::int64_t n);
  // `l * n`, a plain list.
  Object mul(std::int64_t n) const;
  // Iteration by index: the item at `i`, nullopt past the end (so changes during an iteration
  // are seen, as Python's).
  std::optional<Object> iter_item(std::int64_t i) const;
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  Object::List items_;
};

// Python `managers.Value`: one value, with atomic read-modify-write.
class Value {
 public:
  explicit Value(Object initial = Object());
  static std::span<const detail::Method<Value>> exposed_methods();

  Object get() const;
  void set(Object value);
  // `value += x` in one step, returning the new value: numbers add, str/bytes/list/tuple
  // concatenate; TypeError otherwise (and for an int overflow, ValueError).
  Object iadd(const Object& x);
  // `value -= x` (numbers).
  Object isub(const Object& x);
  // `value *= x` (numbers; str/bytes/list/tuple times an int).
  Object imul(const Object& x);
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  Object value_;
};

// Python `array.array` as `SyncManager.Array` makes it: a fixed number of items of one kind
// (built from a list). Setting an item of another kind is a TypeError (an int into a float
// array is converted, as Python's 'd' arrays do).
class Array {
 public:
  explicit Array(const Object& initial = Object());
  static std::span<const detail::Method<Array>> exposed_methods();

  Object getitem(std::int64_t i) const;
  void setitem(std::int64_t i, Object value);
  // `a[start:stop:step]` as a list (Python's slice rules; ValueError for a zero step).
  Object getslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                  std::optional<std::int64_t> step) const;
  // `a[start:stop:step] = items` in one step. The array keeps its length, as a
  // multiprocessing.Array does: `items` must have as many items as the slice selects
  // (ValueError otherwise), each of the array's kind (TypeError); on an error nothing changes.
  void setslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                std::optional<std::int64_t> step, const Object& items);
  std::int64_t len() const;
  Object tolist() const;
  std::optional<Object> iter_item(std::int64_t i) const;
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  Object::List items_;
};

// Python `managers.Namespace`: named attributes.
class Namespace {
 public:
  Namespace() = default;
  static std::span<const detail::Method<Namespace>> exposed_methods();

  // AttributeError when missing.
  Object getattr(const std::string& name) const;
  void setattr(std::string name, Object value);
  // AttributeError when missing.
  void delattr(const std::string& name);
  bool hasattr(const std::string& name) const;
  // "Namespace(a=1, name='Bob')": sorted, without `_`-prefixed attributes.
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  ::mproc::Dict attributes_;
};

// Python `set` of hashable Objects, in insertion order (Python's order is arbitrary). Built from
// None (empty), a list, a tuple or a dict (its keys); TypeError for anything else or an
// unhashable item.
class Set {
 public:
  explicit Set(const Object& initial = Object());
  static std::span<const detail::Method<Set>> exposed_methods();

  std::int64_t len() const;
  bool contains(const Object& x) const;
  void add(Object x);
  // KeyError if missing.
  void remove(const Object& x);
  void discard(const Object& x);
  // Removes and returns an item; KeyError when empty.
  Object pop();
  void clear();
  // The items as a list (Python's `set(proxy)` / copy()).
  Object items() const;
  // `update`, `intersection_update`, `difference_update`, `symmetric_difference_update` with a
  // list of items (the in-place operators |=, &=, -=, ^=).
  void update(const Object& other);
  void intersection_update(const Object& other);
  void difference_update(const Object& other);
  void symmetric_difference_update(const Object& other);
  // The results as plain lists of items.
  Object union_(const Object& other) const;
  Object intersection(const Object& other) const;
  Object difference(const Object& other) const;
  Object symmetric_difference(const Object& other) const;
  bool isdisjoint(const Object& other) const;
  bool issubset(const Object& other) const;
  bool issuperset(const Object& other) const;
  std::optional<Object> iter_item(std::int64_t pos, std::int64_t expected_len) const;
  // "{1, 2}", or "set()" when empty.
  std::string repr() const;

 private:
  mutable std::mutex mutex_;
  ::mproc::Dict items_;  // item -> None, for the insertion order and Python's hashing
};

}  // namespace mproc::managed
