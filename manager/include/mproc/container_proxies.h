// mproc/container_proxies.h
//
// Proxies to the containers a Manager holds (managed_containers.h): Python's DictProxy,
// ListProxy, ValueProxy, ArrayProxy, NamespaceProxy and a SetProxy.
//
//   mproc::Manager manager;
//   auto d = manager.dict();                 // DictProxy<Object, Object>
//   d[1] = "1";                              // one request: setitem
//   d["2"] = 2;
//   auto l = manager.list<int>(std::vector{1, 2, 3});
//   l.append(4);
//   l += std::vector{5, 6};                  // extends in the server; `l` stays a proxy
//   std::vector<int> twice = l * 2;          // a plain value, as Python's `l * 2` is a list
//   auto v = manager.Value<int>(0);
//   v += 1;                                  // atomic in the server (Python's is not)
//   std::cout << d << l;                     // {1: '1', '2': 2}[1, 2, 3, 4, 5, 6]
//
// Every member is one request to the server (begin()/++ of an iterator: one per step). The
// template arguments are the C++ types seen here: keys, values and items are converted with
// Object::from on the way in and Object::to on the way out, so a value of another type stored
// by another proxy gives TypeError on reading. `Object` (the default) takes anything.
//
// `proxy[key]` is an item reference: assigning to it sets the item (`d[k] = v`), reading it
// (conversion to the value type, `get()`, `<<`) gets it; each is one request.
//
// Python differences: `del d[k]` is `d.del(k)`; slices are `l.slice(start, stop, step)`,
// `l.set_slice(start, stop, items)` and `l.del_slice(...)` (each one atomic request; nullopt is
// an omitted bound), `a.get_slice(...)`/`a.set_slice(...)` for an Array; `len(x)` is `x.size()`;
// `d.get(k)` returns std::optional; `copy()`, `+`, `*`, `|` and `fromkeys` return plain values
// (std::vector<T>, or an Object dict for a dict) as Python returns plain lists and dicts, while
// `+=`, `*=`, `|=` change the server's object and return the proxy.
//
// Errors: those of the server objects (KeyError, IndexError, ValueError, TypeError,
// AttributeError, and mproc::Error for a dict or set whose size changed during an iteration,
// Python's RuntimeError), and those of every proxy call (proxy.h).
// Thread safety, fork safety, lifetime: those of BaseProxy (proxy.h). Iterators and item
// references refer to their proxy, which must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <ostream>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mproc/managed_containers.h"
#include "mproc/object.h"
#include "mproc/proxy.h"

namespace mproc {

namespace detail {

// A C++ value as the server stores it; string literals become str.
template <class T>
Object to_object(const T& x) {
  if constexpr (std::is_same_v<T, Object>) {
    return x;
  } else if constexpr (std::is_convertible_v<const T&, std::string_view> &&
                       !std::is_same_v<T, std::string>) {
    return Object(std::string_view(x));
  } else {
    return Object::from(x);
  }
}

// A range (or an Object, or a container proxy with copy()) as a list Object for the server.
template <class R>
Object items_object(const R& items) {
  if constexpr (std::is_same_v<R, Object>) {
    return items;
  } else if constexpr (std::is_base_of_v<BaseProxy, R>) {
    return Object::from(items.copy());
  } else {
    return Object::from(items);
  }
}

template <class T>
std::vector<T> vector_of(const Object& list) {
  std::vector<T> out;
  const Object::List& items = list.is_tuple() ? list.as_tuple() : list.as_list();
  out.reserve(items.size());
  for (const Object& x : items) out.push_back(x.template to<T>());
  return out;
}

// `proxy[key]`: reads with `owner.at(key)`, writes with `owner.set(key, value)`.
template <class Owner, class Key, class V>
class ItemRef {
 public:
  ItemRef(const Owner& owner, Key key) : owner_(&owner), key_(std::move(key)) {}
  ItemRef(const ItemRef&) = default;

  [[nodiscard]] V get() const { return owner_->at(key_); }
  operator V() const { return get(); }  // NOLINT(google-explicit-constructor): reads like d[k]

  // Sets the item (one request). Copying another reference copies its value.
  template <class U>
  requires std::convertible_to<const U&, V>
  const ItemRef& operator=(const U& value) const {
    owner_->set(key_, static_cast<V>(value));
    return *this;
  }
  const ItemRef& operator=(const ItemRef& other) const {
    owner_->set(key_, other.get());
    return *this;
  }

  friend bool operator==(const ItemRef& a, const V& b) { return a.get() == b; }
  friend std::ostream& operator<<(std::ostream& os, const ItemRef& r) {
    if constexpr (std::is_same_v<V, Object>) {
      return os << r.get();
    } else {
      return os << Object::from(r.get());
    }
  }

 private:
  const Owner* owner_;
  Key key_;
};

// An input iterator over a sequence proxy, by index: `owner.iter_item_(i)` is the item at i or
// nullopt past the end, so items changed during the iteration are seen (Python's rule for
// list proxies).
template <class Owner, class T>
class IndexIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::input_iterator_tag;
  using reference = const T&;
  using pointer = const T*;

  IndexIterator() = default;
  explicit IndexIterator(const Owner* owner) : owner_(owner) { fetch(); }

  const T& operator*() const { return *current_; }
  const T* operator->() const { return &*current_; }
  IndexIterator& operator++() {
    ++pos_;
    fetch();
    return *this;
  }
  void operator++(int) { ++*this; }
  friend bool operator==(const IndexIterator& a, const IndexIterator& b) {
    return a.current_.has_value() == b.current_.has_value() && (!a.current_ || a.pos_ == b.pos_);
  }

 private:
  void fetch() {
    std::optional<Object> x = owner_->iter_item_(pos_);
    if (x) {
      current_ = x->template to<T>();
    } else {
      current_.reset();
    }
  }
  const Owner* owner_ = nullptr;
  std::int64_t pos_ = 0;
  std::optional<T> current_;
};

// An input iterator over a dict's keys or a set's items: fails with mproc::Error when the size
// changed since begin() (Python's RuntimeError "changed size during iteration").
template <class Owner, class T>
class KeyIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::input_iterator_tag;
  using reference = const T&;
  using pointer = const T*;

  KeyIterator() = default;
  explicit KeyIterator(const Owner* owner) : owner_(owner), expected_(owner->len_()) { fetch(); }

  const T& operator*() const { return *current_; }
  const T* operator->() const { return &*current_; }
  KeyIterator& operator++() {
    ++pos_;
    fetch();
    return *this;
  }
  void operator++(int) { ++*this; }
  friend bool operator==(const KeyIterator& a, const KeyIterator& b) {
    return a.current_.has_value() == b.current_.has_value() && (!a.current_ || a.pos_ == b.pos_);
  }

 private:
  void fetch() {
    std::optional<Object> x = owner_->iter_key_(pos_, expected_);
    if (x) {
      current_ = x->template to<T>();
    } else {
      current_.reset();
    }
  }
  const Owner* owner_ = nullptr;
  std::int64_t pos_ = 0;
  std::int64_t expected_ = 0;
  std::optional<T> current_;
};

}  // namespace detail

// ---- DictProxy ---------------------------------------------------------------------------------

// Python's DictProxy (a `manager.dict()`), keys K and values V.
template <class K = Object, class V = Object>
class DictProxy : public BaseProxy {
  using M = managed::Dict;

 public:
  using managed_type = managed::Dict;
  using key_type = K;
  using mapped_type = V;
  using iterator = detail::KeyIterator<DictProxy, K>;
  using reference_type = detail::ItemRef<DictProxy, K, V>;

  DictProxy() = default;
  explicit DictProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // `d[key]`: assign to set, read to get (KeyError if missing).
  [[nodiscard]] reference_type operator[](const K& key) const { return {*this, key}; }
  // `d[key]`; KeyError if missing.
  [[nodiscard]] V at(const K& key) const {
    return call_member<&M::getitem>("getitem", detail::to_object(key)).template to<V>();
  }
  // `d[key] = value`.
  void set(const K& key, const V& value) const {
    call_member<&M::setitem>("setitem", detail::to_object(key), detail::to_object(value));
  }
  // `del d[key]`; KeyError if missing.
  void del(const K& key) const { call_member<&M::delitem>("delitem", detail::to_object(key)); }
  // `d.get(key)`: nullopt if missing.
  [[nodiscard]] std::optional<V> get(const K& key) const {
    std::optional<Object> r = call_member<&M::lookup>("lookup", detail::to_object(key));
    if (!r) return std::nullopt;
    return r->template to<V>();
  }
  // `d.get(key, default_value)`.
  [[nodiscard]] V get(const K& key, const V& default_value) const {
    return call_member<&M::get>("get", detail::to_object(key), detail::to_object(default_value))
        .template to<V>();
  }
  [[nodiscard]] bool contains(const K& key) const {
    return call_member<&M::contains>("contains", detail::to_object(key));
  }
  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(len_()); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] std::vector<K> keys() const {
    return detail::vector_of<K>(call_member<&M::keys>("keys"));
  }
  [[nodiscard]] std::vector<V> values() const {
    return detail::vector_of<V>(call_member<&M::values>("values"));
  }
  [[nodiscard]] std::vector<std::pair<K, V>> items() const {
    return detail::vector_of<std::pair<K, V>>(call_member<&M::items>("items"));
  }
  // The keys, last first (`reversed(d)`).
  [[nodiscard]] std::vector<K> reversed() const {
    return detail::vector_of<K>(call_member<&M::reversed>("reversed"));
  }
  // A plain dict (an Object; `.to<std::map<K, V>>()` for a typed one).
  [[nodiscard]] Object copy() const { return call_member<&M::copy>("copy"); }
  void clear() const { call_member<&M::clear>("clear"); }
  // `d.pop(key)`: removes and returns the value; KeyError if missing.
  V pop(const K& key) const {
    return call_member<&M::pop>("pop", detail::to_object(key), std::nullopt).template to<V>();
  }
  // `d.pop(key, default_value)`.
  V pop(const K& key, const V& default_value) const {
    return call_member<&M::pop>("pop", detail::to_object(key),
                                std::optional<Object>(detail::to_object(default_value)))
        .template to<V>();
  }
  // Python's `dict.fromkeys(keys, value)`: a plain dict (an Object, as copy() and `|` give)
  // mapping each of `keys` to `value` (None by default). Like Python's classmethod it does not
  // look at this dict, so it is static (`d.fromkeys(...)` and `DictProxy<>::fromkeys(...)` both
  // work) and makes no request. TypeError for an unhashable key.
  template <class Keys>
  [[nodiscard]] static Object fromkeys(const Keys& keys) {
    return fromkeys_object(keys, Object());
  }
  template <class Keys>
  [[nodiscard]] static Object fromkeys(const Keys& keys, const V& value) {
    return fromkeys_object(keys, detail::to_object(value));
  }
  // Removes and returns the last inserted item (LIFO); KeyError when empty.
  std::pair<K, V> popitem() const {
    return call_member<&M::popitem>("popitem").template to<std::pair<K, V>>();
  }
  // The value for key, inserting `default_value` first if missing (atomically).
  V setdefault(const K& key, const V& default_value = V()) const {
    return call_member<&M::setdefault>("setdefault", detail::to_object(key),
                                       detail::to_object(default_value))
        .template to<V>();
  }
  // `d.update(items)`: a map, a range of pairs, a dict Object or another DictProxy.
  template <class Items>
  void update(const Items& items) const {
    call_member<&M::update>("update", detail::items_object(items));
  }
  // `d |= items`: updates the server's dict; stays this proxy.
  template <class Items>
  const DictProxy& operator|=(const Items& items) const {
    update(items);
    return *this;
  }
  // `d | items`: a plain dict (Object) with the items of both, `items` winning.
  template <class Items>
  [[nodiscard]] Object operator|(const Items& items) const {
    Object r = copy();
    Object more = detail::items_object(items);
    if (more.is_dict()) {
      const Dict& m = more.as_dict();
      for (std::size_t i = 0; i < m.size(); ++i) r.as_dict().set(m.keys()[i], m.values()[i]);
    } else {
      for (const Object& pair : more.as_list()) r.as_dict().set(pair[0], pair[1]);
    }
    return r;
  }
  // `items | d`: a plain dict with the items of both, `d` winning.
  template <class Items>
  requires(!std::is_base_of_v<BaseProxy, Items>) friend Object operator|(const Items& items,
                                                                         const DictProxy& d) {
    Object r = detail::items_object(items);
    if (!r.is_dict()) {
      Dict built;
      for (const Object& pair : r.as_list()) built.set(pair[0], pair[1]);
      r = Object(std::move(built));
    }
    Object mine = d.copy();
    const Dict& m = mine.as_dict();
    for (std::size_t i = 0; i < m.size(); ++i) r.as_dict().set(m.keys()[i], m.values()[i]);
    return r;
  }

  // Iterates over the keys; ++ throws mproc::Error if the dict's size changed since begin().
  [[nodiscard]] iterator begin() const { return iterator(this); }
  [[nodiscard]] iterator end() const { return iterator(); }

  // Python's `repr(d)` / `str(d)` of the server's dict.
  [[nodiscard]] std::string repr() const { return call_member<&M::repr>("repr"); }
  friend std::ostream& operator<<(std::ostream& os, const DictProxy& d) { return os << d.repr(); }

  // For the iterator.
  [[nodiscard]] std::int64_t len_() const { return call_member<&M::len>("len"); }
  [[nodiscard]] std::optional<Object> iter_key_(std::int64_t pos, std::int64_t expected) const {
    return call_member<&M::iter_key>("iter_key", pos, expected);
  }

 private:
  template <class Keys>
  static Object fromkeys_object(const Keys& keys, const Object& value) {
    Dict d;
    for (const auto& k : keys) d.set(detail::to_object(static_cast<const K&>(k)), value);
    return Object(std::move(d));
  }
};

// ---- ListProxy ---------------------------------------------------------------------------------

// Python's ListProxy (a `manager.list()`), items T.
template <class T = Object>
class ListProxy : public BaseProxy {
  using M = managed::List;

 public:
  using managed_type = managed::List;
  using value_type = T;
  using iterator = detail::IndexIterator<ListProxy, T>;
  using reference_type = detail::ItemRef<ListProxy, std::int64_t, T>;

  ListProxy() = default;
  explicit ListProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // `l[i]` (negative counts from the end): assign to set, read to get; IndexError out of range.
  [[nodiscard]] reference_type operator[](std::int64_t i) const { return {*this, i}; }
  [[nodiscard]] T at(std::int64_t i) const {
    return call_member<&M::getitem>("getitem", i).template to<T>();
  }
  void set(std::int64_t i, const T& value) const {
    call_member<&M::setitem>("setitem", i, detail::to_object(value));
  }
  // `del l[i]`.
  void del(std::int64_t i) const { call_member<&M::delitem>("delitem", i); }
  // `l[start:stop:step]` (nullopt is an omitted bound), a plain vector; ValueError for step 0.
  [[nodiscard]] std::vector<T> slice(std::optional<std::int64_t> start,
                                     std::optional<std::int64_t> stop,
                                     std::optional<std::int64_t> step = std::nullopt) const {
    return detail::vector_of<T>(call_member<&M::getslice>("getslice", start, stop, step));
  }
  // `l[start:stop] = items` (a range, a list Object or another list proxy): one atomic request;
  // the slice may grow or shrink the list, as in Python.
  template <class Items>
  void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                 const Items& items) const {
    set_slice(start, stop, std::nullopt, items);
  }
  // `l[start:stop:step] = items`: an extended slice (step other than 1) needs exactly as many
  // items as it selects: ValueError otherwise, and the list is unchanged.
  template <class Items>
  void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                 std::optional<std::int64_t> step, const Items& items) const {
    call_member<&M::setslice>("setslice", start, stop, step, detail::items_object(items));
  }
  // `del l[start:stop:step]`.
  void del_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                 std::optional<std::int64_t> step = std::nullopt) const {
    call_member<&M::delslice>("delslice", start, stop, step);
  }
  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(len_()); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] bool contains(const T& x) const {
    return call_member<&M::contains>("contains", detail::to_object(x));
  }
  void append(const T& x) const { call_member<&M::append>("append", detail::to_object(x)); }
  // `l.extend(items)`: a range, a list Object or another list proxy; one atomic request.
  template <class Items>
  void extend(const Items& items) const {
    call_member<&M::extend>("extend", detail::items_object(items));
  }
  // `l.insert(i, x)` (i clamped, as Python's).
  void insert(std::int64_t i, const T& x) const {
    call_member<&M::insert>("insert", i, detail::to_object(x));
  }
  // `l.pop(i)` (the last by default); IndexError when empty or out of range.
  T pop(std::int64_t i = -1) const { return call_member<&M::pop>("pop", i).template to<T>(); }
  // Removes the first item equal to x; ValueError if none.
  void remove(const T& x) const { call_member<&M::remove>("remove", detail::to_object(x)); }
  // The first position of x in [start, stop); ValueError if none.
  [[nodiscard]] std::int64_t index(const T& x, std::int64_t start = 0,
                                   std::optional<std::int64_t> stop = std::nullopt) const {
    return call_member<&M::index>("index", detail::to_object(x), start, stop);
  }
  [[nodiscard]] std::int64_t count(const T& x) const {
    return call_member<&M::count>("count", detail::to_object(x));
  }
  void reverse() const { call_member<&M::reverse>("reverse"); }
  // Stable; TypeError (list unchanged) when the items do not compare.
  void sort(bool reverse = false) const { call_member<&M::sort>("sort", reverse); }
  void clear() const { call_member<&M::clear>("clear"); }
  // A plain copy (Python's `l.copy()` is a list).
  [[nodiscard]] std::vector<T> copy() const {
    return detail::vector_of<T>(call_member<&M::copy>("copy"));
  }

  // `l += items` extends the server's list; `l *= n` repeats it; both stay this proxy.
  template <class Items>
  const ListProxy& operator+=(const Items& items) const {
    extend(items);
    return *this;
  }
  const ListProxy& operator*=(std::int64_t n) const {
    call_member<&M::imul>("imul", n);
    return *this;
  }
  // `l + items`, `l * n`, `n * l`: plain vectors.
  template <class Items>
  [[nodiscard]] std::vector<T> operator+(const Items& items) const {
    std::vector<T> r = copy();
    std::vector<T> more = detail::vector_of<T>(detail::items_object(items));
    r.insert(r.end(), more.begin(), more.end());
    return r;
  }
  [[nodiscard]] std::vector<T> operator*(std::int64_t n) const {
    return detail::vector_of<T>(call_member<&M::mul>("mul", n));
  }
  [[nodiscard]] friend std::vector<T> operator*(std::int64_t n, const ListProxy& l) {
    return l * n;
  }

  // Iterates by index: each step reads the item at the next position, so changes made during
  // the iteration are seen; the end is the first position past the list's end.
  [[nodiscard]] iterator begin() const { return iterator(this); }
  [[nodiscard]] iterator end() const { return iterator(); }

  [[nodiscard]] std::string repr() const { return call_member<&M::repr>("repr"); }
  friend std::ostream& operator<<(std::ostream& os, const ListProxy& l) { return os << l.repr(); }

  // For the iterator.
  [[nodiscard]] std::int64_t len_() const { return call_member<&M::len>("len"); }
  [[nodiscard]] std::optional<Object> iter_item_(std::int64_t i) const {
    return call_member<&M::iter_item>("iter_item", i);
  }
};

// ---- ValueProxy --------------------------------------------------------------------------------

// Python's ValueProxy (a `manager.Value(typecode, value)`): one value of type T.
template <class T>
class ValueProxy : public BaseProxy {
  using M = managed::Value;

 public:
  using managed_type = managed::Value;
  using value_type = T;

  ValueProxy() = default;
  explicit ValueProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // Python's `v.value` / `v.get()`.
  [[nodiscard]] T value() const { return get(); }
  [[nodiscard]] T get() const { return call_member<&M::get>("get").template to<T>(); }
  // Python's `v.value = x` / `v.set(x)`.
  void set(const T& x) const { call_member<&M::set>("set", detail::to_object(x)); }

  // `value += x` as ONE server step, returning the new value: no update is lost when several
  // processes add at once (Python's `v.value += x` is a get then a set). Numbers add, strings
  // concatenate; TypeError otherwise.
  template <class U>
  T iadd(const U& x) const {
    return call_member<&M::iadd>("iadd", detail::to_object(x)).template to<T>();
  }
  template <class U>
  const ValueProxy& operator+=(const U& x) const {
    (void)iadd(x);
    return *this;
  }
  // `value -= x` / `value *= x`, atomic as iadd (numbers; `*=` also repeats a string).
  template <class U>
  T isub(const U& x) const {
    return call_member<&M::isub>("isub", detail::to_object(x)).template to<T>();
  }
  template <class U>
  const ValueProxy& operator-=(const U& x) const {
    (void)isub(x);
    return *this;
  }
  template <class U>
  T imul(const U& x) const {
    return call_member<&M::imul>("imul", detail::to_object(x)).template to<T>();
  }
  template <class U>
  const ValueProxy& operator*=(const U& x) const {
    (void)imul(x);
    return *this;
  }

  // The value's repr ("'Hello'", "1").
  [[nodiscard]] std::string repr() const { return call_member<&M::repr>("repr"); }
  // Prints the value (Python's `print(v.value)`).
  friend std::ostream& operator<<(std::ostream& os, const ValueProxy& v) {
    if constexpr (std::is_same_v<T, Object>) {
      return os << v.get().str();
    } else {
      return os << Object::from(v.get()).str();
    }
  }
};

// ---- ArrayProxy --------------------------------------------------------------------------------

// Python's ArrayProxy (a `manager.Array(typecode, sequence)`): a fixed number of T.
template <class T>
class ArrayProxy : public BaseProxy {
  using M = managed::Array;

 public:
  using managed_type = managed::Array;
  using value_type = T;
  using iterator = detail::IndexIterator<ArrayProxy, T>;
  using reference_type = detail::ItemRef<ArrayProxy, std::int64_t, T>;

  ArrayProxy() = default;
  explicit ArrayProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // `a[i]`: assign to set, read to get; IndexError out of range.
  [[nodiscard]] reference_type operator[](std::int64_t i) const { return {*this, i}; }
  [[nodiscard]] T at(std::int64_t i) const {
    return call_member<&M::getitem>("getitem", i).template to<T>();
  }
  // TypeError for a value of another kind than the array's (an int into a float array is fine).
  void set(std::int64_t i, const T& value) const {
    call_member<&M::setitem>("setitem", i, detail::to_object(value));
  }
  // `a[start:stop:step]`, a plain vector (Python's slice rules; ValueError for step 0).
  [[nodiscard]] std::vector<T> get_slice(std::optional<std::int64_t> start,
                                         std::optional<std::int64_t> stop,
                                         std::optional<std::int64_t> step = std::nullopt) const {
    return detail::vector_of<T>(call_member<&M::getslice>("getslice", start, stop, step));
  }
  // `a[start:stop] = items` / `a[start:stop:step] = items`, one atomic request. An array keeps
  // its length: `items` must have as many items as the slice selects (ValueError otherwise), of
  // the array's kind (TypeError); on an error the array is unchanged.
  template <class Items>
  void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                 const Items& items) const {
    set_slice(start, stop, std::nullopt, items);
  }
  template <class Items>
  void set_slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                 std::optional<std::int64_t> step, const Items& items) const {
    call_member<&M::setslice>("setslice", start, stop, step, detail::items_object(items));
  }
  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(len_()); }
  [[nodiscard]] std::vector<T> tolist() const {
    return detail::vector_of<T>(call_member<&M::tolist>("tolist"));
  }
  [[nodiscard]] iterator begin() const { return iterator(this); }
  [[nodiscard]] iterator end() const { return iterator(); }

  [[nodiscard]] std::string repr() const { return call_member<&M::repr>("repr"); }
  friend std::ostream& operator<<(std::ostream& os, const ArrayProxy& a) { return os << a.repr(); }

  // For the iterator.
  [[nodiscard]] std::int64_t len_() const { return call_member<&M::len>("len"); }
  [[nodiscard]] std::optional<Object> iter_item_(std::int64_t i) const {
    return call_member<&M::iter_item>("iter_item", i);
  }
};

// ---- NamespaceProxy ----------------------------------------------------------------------------

// Python's NamespaceProxy (a `manager.Namespace()`): attributes by name.
//
//   auto ns = manager.Namespace();
//   ns.set("name", "Bob");                  // ns.name = 'Bob'
//   ns["x"] = 1;                            // the same, by reference
//   std::string n = ns.get<std::string>("name");
//   ns.del("x");                            // del ns.x
//   ns.repr();                              // "Namespace(name='Bob')"
class NamespaceProxy : public BaseProxy {
  using M = managed::Namespace;

 public:
  using managed_type = managed::Namespace;
  using reference_type = detail::ItemRef<NamespaceProxy, std::string, Object>;

  NamespaceProxy() = default;
  explicit NamespaceProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  // `ns.name`; AttributeError when missing.
  template <class T = Object>
  [[nodiscard]] T get(const std::string& name) const {
    return at(name).template to<T>();
  }
  [[nodiscard]] Object at(const std::string& name) const {
    return call_member<&M::getattr>("getattr", name);
  }
  // `ns.name = value`.
  template <class T>
  void set(const std::string& name, const T& value) const {
    call_member<&M::setattr>("setattr", name, detail::to_object(value));
  }
  // `del ns.name`; AttributeError when missing.
  void del(const std::string& name) const { call_member<&M::delattr>("delattr", name); }
  // `hasattr(ns, name)`.
  [[nodiscard]] bool has(const std::string& name) const {
    return call_member<&M::hasattr>("hasattr", name);
  }
  // `ns[name]`: an attribute reference (assign to set, read to get).
  [[nodiscard]] reference_type operator[](const std::string& name) const { return {*this, name}; }
  // "Namespace(a=1, name='Bob')": sorted, without `_`-prefixed attributes.
  [[nodiscard]] std::string repr() const { return call_member<&M::repr>("repr"); }
  friend std::ostream& operator<<(std::ostream& os, const NamespaceProxy& ns) {
    return os << ns.repr();
  }
};

// ---- SetProxy ----------------------------------------------------------------------------------

// A proxy to a managed set of T (Python's `manager.set()` of 3.14, as its tests use it). Items
// keep their insertion order here.
template <class T = Object>
class SetProxy : public BaseProxy {
  using M = managed::Set;

 public:
  using managed_type = managed::Set;
  using value_type = T;
  using iterator = detail::KeyIterator<SetProxy, T>;

  SetProxy() = default;
  explicit SetProxy(detail::Token token) : BaseProxy(std::move(token)) {}

  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(len_()); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] bool contains(const T& x) const {
    return call_member<&M::contains>("contains", detail::to_object(x));
  }
  void add(const T& x) const { call_member<&M::add>("add", detail::to_object(x)); }
  // KeyError if missing.
  void remove(const T& x) const { call_member<&M::remove>("remove", detail::to_object(x)); }
  void discard(const T& x) const { call_member<&M::discard>("discard", detail::to_object(x)); }
  // Removes and returns an item; KeyError when empty.
  T pop() const { return call_member<&M::pop>("pop").template to<T>(); }
  void clear() const { call_member<&M::clear>("clear"); }
  // The items, as a plain vector (Python's `s.copy()` is a set).
  [[nodiscard]] std::vector<T> copy() const {
    return detail::vector_of<T>(call_member<&M::items>("items"));
  }

  // In place (one request each). `items`: a range, a list Object or another set proxy.
  template <class Items>
  void update(const Items& items) const {
    call_member<&M::update>("update", detail::items_object(items));
  }
  template <class Items>
  void intersection_update(const Items& items) const {
    call_member<&M::intersection_update>("intersection_update", detail::items_object(items));
  }
  template <class Items>
  void difference_update(const Items& items) const {
    call_member<&M::difference_update>("difference_update", detail::items_object(items));
  }
  template <class Items>
  void symmetric_difference_update(const Items& items) const {
    call_member<&M::symmetric_difference_update>("symmetric_difference_update",
                                                 detail::items_object(items));
  }
  // New plain values (vectors, in the set's order then the argument's).
  template <class Items>
  [[nodiscard]] std::vector<T> union_(const Items& items) const {
    return detail::vector_of<T>(call_member<&M::union_>("union", detail::items_object(items)));
  }
  template <class Items>
  [[nodiscard]] std::vector<T> intersection(const Items& items) const {
    return detail::vector_of<T>(
        call_member<&M::intersection>("intersection", detail::items_object(items)));
  }
  template <class Items>
  [[nodiscard]] std::vector<T> difference(const Items& items) const {
    return detail::vector_of<T>(
        call_member<&M::difference>("difference", detail::items_object(items)));
  }
  template <class Items>
  [[nodiscard]] std::vector<T> symmetric_difference(const Items& items) const {
    return detail::vector_of<T>(
        call_member<&M::symmetric_difference>("symmetric_difference", detail::items_object(items)));
  }
  template <class Items>
  [[nodiscard]] bool isdisjoint(const Items& items) const {
    return call_member<&M::isdisjoint>("isdisjoint", detail::items_object(items));
  }
  template <class Items>
  [[nodiscard]] bool issubset(const Items& items) const {
    return call_member<&M::issubset>("issubset", detail::items_object(items));
  }
  template <class Items>
  [[nodiscard]] bool issuperset(const Items& items) const {
    return call_member<&M::issuperset>("issuperset", detail::items_object(items));
  }

  // The in-place operators keep the proxy; the others return plain vectors.
  template <class Items>
  const SetProxy& operator|=(const Items& items) const {
    update(items);
    return *this;
  }
  template <class Items>
  const SetProxy& operator&=(const Items& items) const {
    intersection_update(items);
    return *this;
  }
  template <class Items>
  const SetProxy& operator-=(const Items& items) const {
    difference_update(items);
    return *this;
  }
  template <class Items>
  const SetProxy& operator^=(const Items& items) const {
    symmetric_difference_update(items);
    return *this;
  }
  template <class Items>
  [[nodiscard]] std::vector<T> operator|(const Items& items) const {
    return union_(items);
  }
  template <class Items>
  [[nodiscard]] std::vector<T> operator&(const Items& items) const {
    return intersection(items);
  }
  template <class Items>
  [[nodiscard]] std::vector<T> operator-(const Items& items) const {
    return difference(items);
  }
  template <class Items>
  [[nodiscard]] std::vector<T> operator^(const Items& items) const {
    return symmetric_difference(items);
  }
  // Subset / superset comparisons against a range of items (Python's <, <=, >, >=).
  template <class Items>
  [[nodiscard]] bool operator<=(const Items& items) const {
    return issubset(items);
  }
  template <class Items>
  [[nodiscard]] bool operator>=(const Items& items) const {
    return issuperset(items);
  }
  template <class Items>
  [[nodiscard]] bool operator<(const Items& items) const {
    return issubset(items) && size() < distinct_size(items);
  }
  template <class Items>
  [[nodiscard]] bool operator>(const Items& items) const {
    return issuperset(items) && size() > distinct_size(items);
  }

  // Iterates over the items; ++ throws mproc::Error if the set's size changed since begin().
  [[nodiscard]] iterator begin() const { return iterator(this); }
  [[nodiscard]] iterator end() const { return iterator(); }

  // "{1, 2}", or "set()" when empty.
  [[nodiscard]] std::string repr() const { return call_member<&M::repr>("repr"); }
  friend std::ostream& operator<<(std::ostream& os, const SetProxy& s) { return os << s.repr(); }

  // For the iterator.
  [[nodiscard]] std::int64_t len_() const { return call_member<&M::len>("len"); }
  [[nodiscard]] std::optional<Object> iter_key_(std::int64_t pos, std::int64_t expected) const {
    return call_member<&M::iter_item>("iter_item", pos, expected);
  }

 private:
  template <class Items>
  static std::size_t distinct_size(const Items& items) {
    Dict seen;
    const Object all = detail::items_object(items);
    for (const Object& x : all.as_list()) seen.set(x, Object());
    return seen.size();
  }
};

}  // namespace mproc
