#include "mproc/managed_containers.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "mproc/errors.h"

namespace mproc::managed {
namespace {

using Items = Object::List;

// The items of an iterable Object, as Python's `list(x)` sees them (a dict gives its keys).
Items items_of(const Object& x) {
  switch (x.kind()) {
    case Object::Kind::kNone:
      return {};
    case Object::Kind::kList:
      return x.as_list();
    case Object::Kind::kTuple:
      return x.as_tuple();
    case Object::Kind::kDict:
      return x.as_dict().keys();
    default:
      throw TypeError("'" + std::string(x.type_name()) + "' object is not iterable");
  }
}

// Python's index rule: negative counts from the end; IndexError outside.
std::size_t position(std::int64_t i, std::size_t size, const char* what) {
  const auto n = static_cast<std::int64_t>(size);
  if (i < 0) i += n;
  if (i < 0 || i >= n) throw IndexError(std::string(what) + " index out of range");
  return static_cast<std::size_t>(i);
}

// The positions a slice selects, as PySlice_AdjustIndices computes them.
std::vector<std::size_t> slice_positions(std::optional<std::int64_t> start_arg,
                                         std::optional<std::int64_t> stop_arg,
                                         std::optional<std::int64_t> step_arg, std::size_t size) {
  const std::int64_t step = step_arg.value_or(1);
  if (step == 0) throw ValueError("slice step cannot be zero");
  const auto n = static_cast<std::int64_t>(size);
  auto clamp = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const std::int64_t start = clamp(start_arg, step < 0 ? n - 1 : 0);
  const std::int64_t stop = clamp(stop_arg, step < 0 ? -1 : n);
  std::vector<std::size_t> out;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
    out.push_back(static_cast<std::size_t>(i));
  return out;
}

// `[start, stop)` of a step-1 slice, clamped as Python's list_ass_slice does (stop < start
// selects nothing at start).
std::pair<std::size_t, std::size_t> simple_slice(std::optional<std::int64_t> start_arg,
                                                 std::optional<std::int64_t> stop_arg,
                                                 std::size_t size) {
  const auto n = static_cast<std::int64_t>(size);
  auto clamp = [n](std::optional<std::int64_t> v, std::int64_t dflt) {
    std::int64_t i = v.value_or(dflt);
    if (i < 0) i = std::max<std::int64_t>(i + n, 0);
    return std::min(i, n);
  };
  const std::int64_t start = clamp(start_arg, 0);
  const std::int64_t stop = std::max(start, clamp(stop_arg, n));
  return {static_cast<std::size_t>(start), static_cast<std::size_t>(stop)};
}

// Array items: an int stored into a float array becomes a float; any other change of kind is a
// TypeError.
Object array_item(const Object& slot, Object value) {
  if (slot.is_float() && (value.is_int() || value.is_bool())) return value.as_float();
  if (slot.kind() != value.kind()) {
    throw TypeError("array item must be " + std::string(slot.type_name()) + ", not " +
                    std::string(value.type_name()));
  }
  return value;
}

Object tuple_of(const Object& a, const Object& b) { return Object::tuple(Items{a, b}); }

// Python's `a + b` for the types a Value holds.
Object add(const Object& a, const Object& b) {
  using K = Object::Kind;
  const bool a_num = a.is_bool() || a.is_int() || a.is_float();
  const bool b_num = b.is_bool() || b.is_int() || b.is_float();
  if (a_num && b_num) {
    if (a.is_float() || b.is_float()) return a.as_float() + b.as_float();
    std::int64_t r = 0;
    if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) throw ValueError("int overflow");
    return r;
  }
  if (a.kind() == b.kind()) {
    switch (a.kind()) {
      case K::kStr:
        return a.as_str() + b.as_str();
      case K::kBytes:
        return Object::bytes(a.as_bytes() + b.as_bytes());
      case K::kList: {
        Items r = a.as_list();
        r.insert(r.end(), b.as_list().begin(), b.as_list().end());
        return Object::list(std::move(r));
      }
      case K::kTuple: {
        Items r = a.as_tuple();
        r.insert(r.end(), b.as_tuple().begin(), b.as_tuple().end());
        return Object::tuple(std::move(r));
      }
      default:
        break;
    }
  }
  throw TypeError("unsupported operand type(s) for +: '" + std::string(a.type_name()) + "' and '" +
                  std::string(b.type_name()) + "'");
}

Object sub(const Object& a, const Object& b) {
  const bool a_num = a.is_bool() || a.is_int() || a.is_float();
  const bool b_num = b.is_bool() || b.is_int() || b.is_float();
  if (!a_num || !b_num) {
    throw TypeError("unsupported operand type(s) for -: '" + std::string(a.type_name()) +
                    "' and '" + std::string(b.type_name()) + "'");
  }
  if (a.is_float() || b.is_float()) return a.as_float() - b.as_float();
  std::int64_t r = 0;
  if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) throw ValueError("int overflow");
  return r;
}

Items repeat(const Items& items, std::int64_t n) {
  Items r;
  if (n <= 0) return r;
  r.reserve(items.size() * static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) r.insert(r.end(), items.begin(), items.end());
  return r;
}

Object mul(const Object& a, const Object& b) {
  using K = Object::Kind;
  const bool a_num = a.is_bool() || a.is_int() || a.is_float();
  const bool b_num = b.is_bool() || b.is_int() || b.is_float();
  if (a_num && b_num) {
    if (a.is_float() || b.is_float()) return a.as_float() * b.as_float();
    std::int64_t r = 0;
    if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) throw ValueError("int overflow");
    return r;
  }
  if (b.is_int() || b.is_bool()) {
    const std::int64_t n = b.as_int();
    switch (a.kind()) {
      case K::kStr:
      case K::kBytes: {
        std::string r;
        const std::string& s = a.is_str() ? a.as_str() : a.as_bytes();
        for (std::int64_t i = 0; i < n; ++i) r += s;
        return a.is_str() ? Object(std::move(r)) : Object::bytes(r);
      }
      case K::kList:
        return Object::list(repeat(a.as_list(), n));
      case K::kTuple:
        return Object::tuple(repeat(a.as_tuple(), n));
      default:
        break;
    }
  }
  throw TypeError("unsupported operand type(s) for *: '" + std::string(a.type_name()) + "' and '" +
                  std::string(b.type_name()) + "'");
}

std::string items_repr(const Items& items, const char* open, const char* close) {
  std::string s = open;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) s += ", ";
    s += items[i].repr();
  }
  return s + close;
}

template <class T, auto M>
constexpr detail::Method<T> method(std::string_view name) {
  return {name, &detail::dispatch<M>};
}

}  // namespace

// ---- Dict

Dict::Dict(const Object& initial) { update(initial); }

Object Dict::getitem(const Object& key) const {
  std::lock_guard lock(mutex_);
  return dict_.at(key);
}

void Dict::setitem(Object key, Object value) {
  std::lock_guard lock(mutex_);
  dict_.set(std::move(key), std::move(value));
}

void Dict::delitem(const Object& key) {
  std::lock_guard lock(mutex_);
  if (!dict_.erase(key)) throw KeyError(key.repr());
}

Object Dict::get(const Object& key, Object default_value) const {
  std::lock_guard lock(mutex_);
  const Object* v = dict_.get(key);
  return v ? *v : std::move(default_value);
}

std::optional<Object> Dict::lookup(const Object& key) const {
  std::lock_guard lock(mutex_);
  const Object* v = dict_.get(key);
  if (!v) return std::nullopt;
  return *v;
}

bool Dict::contains(const Object& key) const {
  std::lock_guard lock(mutex_);
  return dict_.contains(key);
}

std::int64_t Dict::len() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(dict_.size());
}

Object Dict::keys() const {
  std::lock_guard lock(mutex_);
  return Object::list(dict_.keys());
}

Object Dict::values() const {
  std::lock_guard lock(mutex_);
  return Object::list(dict_.values());
}

Object Dict::items() const {
  std::lock_guard lock(mutex_);
  Items r;
  r.reserve(dict_.size());
  for (std::size_t i = 0; i < dict_.size(); ++i)
    r.push_back(tuple_of(dict_.keys()[i], dict_.values()[i]));
  return Object::list(std::move(r));
}

Object Dict::reversed() const {
  std::lock_guard lock(mutex_);
  Items r(dict_.keys().rbegin(), dict_.keys().rend());
  return Object::list(std::move(r));
}

Object Dict::copy() const {
  std::lock_guard lock(mutex_);
  return Object(dict_);
}

void Dict::clear() {
  std::lock_guard lock(mutex_);
  dict_.clear();
}

Object Dict::pop(const Object& key, std::optional<Object> default_value) {
  std::lock_guard lock(mutex_);
  const Object* v = dict_.get(key);
  if (!v) {
    if (default_value) return std::move(*default_value);
    throw KeyError(key.repr());
  }
  Object value = *v;
  dict_.erase(key);
  return value;
}

Object Dict::popitem() {
  std::lock_guard lock(mutex_);
  if (dict_.empty()) throw KeyError("popitem(): dictionary is empty");
  Object key = dict_.keys().back();
  Object value = dict_.values().back();
  dict_.erase(key);
  return tuple_of(key, value);
}

Object Dict::setdefault(Object key, Object default_value) {
  std::lock_guard lock(mutex_);
  if (const Object* v = dict_.get(key)) return *v;
  dict_.set(std::move(key), default_value);
  return default_value;
}

void Dict::update(const Object& items) {
  // Checked and built first, so a bad argument leaves the dict unchanged.
  ::mproc::Dict add;
  if (items.is_dict()) {
    add = items.as_dict();
  } else {
    for (const Object& pair : items_of(items)) {
      if (!(pair.is_list() || pair.is_tuple()) || pair.size() != 2) {
        throw TypeError("dictionary update sequence element " + pair.repr() + " is not a pair");
      }
      add.set(pair[0], pair[1]);
    }
  }
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < add.size(); ++i) dict_.set(add.keys()[i], add.values()[i]);
}

std::optional<Object> Dict::iter_key(std::int64_t pos, std::int64_t expected_len) const {
  std::lock_guard lock(mutex_);
  if (static_cast<std::int64_t>(dict_.size()) != expected_len)
    throw Error("dictionary changed size during iteration");
  if (pos < 0 || pos >= expected_len) return std::nullopt;
  return dict_.keys()[static_cast<std::size_t>(pos)];
}

std::string Dict::repr() const {
  std::lock_guard lock(mutex_);
  return Object(dict_).repr();
}

std::span<const detail::Method<Dict>> Dict::exposed_methods() {
  static const detail::Method<Dict> methods[] = {
      method<Dict, &Dict::getitem>("getitem"),   method<Dict, &Dict::setitem>("setitem"),
      method<Dict, &Dict::delitem>("delitem"),   method<Dict, &Dict::get>("get"),
      method<Dict, &Dict::lookup>("lookup"),     method<Dict, &Dict::contains>("contains"),
      method<Dict, &Dict::len>("len"),           method<Dict, &Dict::keys>("keys"),
      method<Dict, &Dict::values>("values"),     method<Dict, &Dict::items>("items"),
      method<Dict, &Dict::reversed>("reversed"), method<Dict, &Dict::copy>("copy"),
      method<Dict, &Dict::clear>("clear"),       method<Dict, &Dict::pop>("pop"),
      method<Dict, &Dict::popitem>("popitem"),   method<Dict, &Dict::setdefault>("setdefault"),
      method<Dict, &Dict::update>("update"),     method<Dict, &Dict::iter_key>("iter_key"),
      method<Dict, &Dict::repr>("repr"),
  };
  return methods;
}

// ---- List

List::List(const Object& initial) : items_(items_of(initial)) {}

Object List::getitem(std::int64_t i) const {
  std::lock_guard lock(mutex_);
  return items_[position(i, items_.size(), "list")];
}

Object List::getslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                      std::optional<std::int64_t> step) const {
  std::lock_guard lock(mutex_);
  Items r;
  for (std::size_t p : slice_positions(start, stop, step, items_.size())) r.push_back(items_[p]);
  return Object::list(std::move(r));
}

void List::setitem(std::int64_t i, Object value) {
  std::lock_guard lock(mutex_);
  items_[position(i, items_.size(), "list assignment")] = std::move(value);
}

void List::setslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                    std::optional<std::int64_t> step, const Object& items) {
  Items more = items_of(items);
  std::lock_guard lock(mutex_);
  if (step.value_or(1) == 1) {
    auto [first, last] = simple_slice(start, stop, items_.size());
    Items r;
    r.reserve(items_.size() - (last - first) + more.size());
    r.insert(r.end(), std::make_move_iterator(items_.begin()),
             std::make_move_iterator(items_.begin() + static_cast<std::ptrdiff_t>(first)));
    r.insert(r.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    r.insert(r.end(), std::make_move_iterator(items_.begin() + static_cast<std::ptrdiff_t>(last)),
             std::make_move_iterator(items_.end()));
    items_ = std::move(r);
    return;
  }
  std::vector<std::size_t> at = slice_positions(start, stop, step, items_.size());
  if (at.size() != more.size()) {
    throw ValueError("attempt to assign sequence of size " + std::to_string(more.size()) +
                     " to extended slice of size " + std::to_string(at.size()));
  }
  for (std::size_t k = 0; k < at.size(); ++k) items_[at[k]] = std::move(more[k]);
}

void List::delitem(std::int64_t i) {
  std::lock_guard lock(mutex_);
  const std::size_t p = position(i, items_.size(), "list assignment");
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(p));
}

void List::delslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                    std::optional<std::int64_t> step) {
  std::lock_guard lock(mutex_);
  std::vector<std::size_t> gone = slice_positions(start, stop, step, items_.size());
  std::vector<bool> drop(items_.size(), false);
  for (std::size_t p : gone) drop[p] = true;
  Items kept;
  for (std::size_t i = 0; i < items_.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(items_[i]));
  items_ = std::move(kept);
}

std::int64_t List::len() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(items_.size());
}

bool List::contains(const Object& x) const {
  std::lock_guard lock(mutex_);
  return std::find(items_.begin(), items_.end(), x) != items_.end();
}

void List::append(Object x) {
  std::lock_guard lock(mutex_);
  items_.push_back(std::move(x));
}

void List::extend(const Object& items) {
  Items more = items_of(items);
  std::lock_guard lock(mutex_);
  items_.insert(items_.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
}

void List::insert(std::int64_t i, Object x) {
  std::lock_guard lock(mutex_);
  const auto n = static_cast<std::int64_t>(items_.size());
  if (i < 0) i = std::max<std::int64_t>(i + n, 0);
  i = std::min(i, n);
  items_.insert(items_.begin() + i, std::move(x));
}

Object List::pop(std::int64_t i) {
  std::lock_guard lock(mutex_);
  if (items_.empty()) throw IndexError("pop from empty list");
  const std::size_t p = position(i, items_.size(), "pop");
  Object x = std::move(items_[p]);
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(p));
  return x;
}

void List::remove(const Object& x) {
  std::lock_guard lock(mutex_);
  auto it = std::find(items_.begin(), items_.end(), x);
  if (it == items_.end()) throw ValueError("list.remove(x): x not in list");
  items_.erase(it);
}

std::int64_t List::index(const Object& x, std::int64_t start,
                         std::optional<std::int64_t> stop) const {
  std::lock_guard lock(mutex_);
  const auto n = static_cast<std::int64_t>(items_.size());
  auto clamp = [n](std::int64_t i) {
    if (i < 0) i = std::max<std::int64_t>(i + n, 0);
    return std::min(i, n);
  };
  const std::int64_t end = clamp(stop.value_or(n));
  for (std::int64_t i = clamp(start); i < end; ++i)
    if (items_[static_cast<std::size_t>(i)] == x) return i;
  throw ValueError(x.repr() + " is not in list");
}

std::int64_t List::count(const Object& x) const {
  std::lock_guard lock(mutex_);
  return std::count(items_.begin(), items_.end(), x);
}

void List::reverse() {
  std::lock_guard lock(mutex_);
  std::reverse(items_.begin(), items_.end());
}

void List::sort(bool reverse) {
  std::lock_guard lock(mutex_);
  Items sorted = items_;
  // Equal items keep their order in both directions, as Python's.
  if (reverse) {
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Object& a, const Object& b) { return b < a; });
  } else {
    std::stable_sort(sorted.begin(), sorted.end());
  }
  items_ = std::move(sorted);
}

void List::clear() {
  std::lock_guard lock(mutex_);
  items_.clear();
}

Object List::copy() const {
  std::lock_guard lock(mutex_);
  return Object::list(items_);
}

void List::imul(std::int64_t n) {
  std::lock_guard lock(mutex_);
  items_ = repeat(items_, n);
}

Object List::mul(std::int64_t n) const {
  std::lock_guard lock(mutex_);
  return Object::list(repeat(items_, n));
}

std::optional<Object> List::iter_item(std::int64_t i) const {
  std::lock_guard lock(mutex_);
  if (i < 0 || i >= static_cast<std::int64_t>(items_.size())) return std::nullopt;
  return items_[static_cast<std::size_t>(i)];
}

std::string List::repr() const {
  std::lock_guard lock(mutex_);
  return items_repr(items_, "[", "]");
}

std::span<const detail::Method<List>> List::exposed_methods() {
  static const detail::Method<List> methods[] = {
      method<List, &List::getitem>("getitem"), method<List, &List::getslice>("getslice"),
      method<List, &List::setitem>("setitem"), method<List, &List::setslice>("setslice"),
      method<List, &List::delitem>("delitem"), method<List, &List::delslice>("delslice"),
      method<List, &List::len>("len"),         method<List, &List::contains>("contains"),
      method<List, &List::append>("append"),   method<List, &List::extend>("extend"),
      method<List, &List::insert>("insert"),   method<List, &List::pop>("pop"),
      method<List, &List::remove>("remove"),   method<List, &List::index>("index"),
      method<List, &List::count>("count"),     method<List, &List::reverse>("reverse"),
      method<List, &List::sort>("sort"),       method<List, &List::clear>("clear"),
      method<List, &List::copy>("copy"),       method<List, &List::imul>("imul"),
      method<List, &List::mul>("mul"),         method<List, &List::iter_item>("iter_item"),
      method<List, &List::repr>("repr"),
  };
  return methods;
}

// ---- Value

Value::Value(Object initial) : value_(std::move(initial)) {}

Object Value::get() const {
  std::lock_guard lock(mutex_);
  return value_;
}

void Value::set(Object value) {
  std::lock_guard lock(mutex_);
  value_ = std::move(value);
}

Object Value::iadd(const Object& x) {
  std::lock_guard lock(mutex_);
  value_ = add(value_, x);
  return value_;
}

Object Value::isub(const Object& x) {
  std::lock_guard lock(mutex_);
  value_ = sub(value_, x);
  return value_;
}

Object Value::imul(const Object& x) {
  std::lock_guard lock(mutex_);
  value_ = mul(value_, x);
  return value_;
}

std::string Value::repr() const {
  std::lock_guard lock(mutex_);
  return value_.repr();
}

std::span<const detail::Method<Value>> Value::exposed_methods() {
  static const detail::Method<Value> methods[] = {
      method<Value, &Value::get>("get"),   method<Value, &Value::set>("set"),
      method<Value, &Value::iadd>("iadd"), method<Value, &Value::isub>("isub"),
      method<Value, &Value::imul>("imul"), method<Value, &Value::repr>("repr"),
  };
  return methods;
}

// ---- Array

Array::Array(const Object& initial) : items_(items_of(initial)) {}

Object Array::getitem(std::int64_t i) const {
  std::lock_guard lock(mutex_);
  return items_[position(i, items_.size(), "array")];
}

void Array::setitem(std::int64_t i, Object value) {
  std::lock_guard lock(mutex_);
  Object& slot = items_[position(i, items_.size(), "array assignment")];
  slot = array_item(slot, std::move(value));
}

Object Array::getslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                       std::optional<std::int64_t> step) const {
  std::lock_guard lock(mutex_);
  Items r;
  for (std::size_t p : slice_positions(start, stop, step, items_.size())) r.push_back(items_[p]);
  return Object::list(std::move(r));
}

void Array::setslice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                     std::optional<std::int64_t> step, const Object& items) {
  Items more = items_of(items);
  std::lock_guard lock(mutex_);
  std::vector<std::size_t> at = slice_positions(start, stop, step, items_.size());
  if (at.size() != more.size()) {
    throw ValueError("Can only assign sequence of same size (" + std::to_string(more.size()) +
                     " items to a slice of " + std::to_string(at.size()) + ")");
  }
  // Converted first, so that a wrong kind leaves the array unchanged.
  for (std::size_t k = 0; k < at.size(); ++k)
    more[k] = array_item(items_[at[k]], std::move(more[k]));
  for (std::size_t k = 0; k < at.size(); ++k) items_[at[k]] = std::move(more[k]);
}

std::int64_t Array::len() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(items_.size());
}

Object Array::tolist() const {
  std::lock_guard lock(mutex_);
  return Object::list(items_);
}

std::optional<Object> Array::iter_item(std::int64_t i) const {
  std::lock_guard lock(mutex_);
  if (i < 0 || i >= static_cast<std::int64_t>(items_.size())) return std::nullopt;
  return items_[static_cast<std::size_t>(i)];
}

std::string Array::repr() const {
  std::lock_guard lock(mutex_);
  return items_repr(items_, "[", "]");
}

std::span<const detail::Method<Array>> Array::exposed_methods() {
  static const detail::Method<Array> methods[] = {
      method<Array, &Array::getitem>("getitem"),
      method<Array, &Array::setitem>("setitem"),
      method<Array, &Array::getslice>("getslice"),
      method<Array, &Array::setslice>("setslice"),
      method<Array, &Array::len>("len"),
      method<Array, &Array::tolist>("tolist"),
      method<Array, &Array::iter_item>("iter_item"),
      method<Array, &Array::repr>("repr"),
  };
  return methods;
}

// ---- Namespace

Object Namespace::getattr(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const Object* v = attributes_.get(Object(name));
  if (!v) throw AttributeError("'Namespace' object has no attribute '" + name + "'");
  return *v;
}

void Namespace::setattr(std::string name, Object value) {
  std::lock_guard lock(mutex_);
  attributes_.set(Object(std::move(name)), std::move(value));
}

void Namespace::delattr(const std::string& name) {
  std::lock_guard lock(mutex_);
  if (!attributes_.erase(Object(name)))
    throw AttributeError("'Namespace' object has no attribute '" + name + "'");
}

bool Namespace::hasattr(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return attributes_.contains(Object(name));
}

std::string Namespace::repr() const {
  std::vector<std::string> shown;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < attributes_.size(); ++i) {
      const std::string& name = attributes_.keys()[i].as_str();
      if (!name.starts_with('_')) shown.push_back(name + "=" + attributes_.values()[i].repr());
    }
  }
  std::sort(shown.begin(), shown.end());
  std::string s = "Namespace(";
  for (std::size_t i = 0; i < shown.size(); ++i) s += (i > 0 ? ", " : "") + shown[i];
  return s + ")";
}

std::span<const detail::Method<Namespace>> Namespace::exposed_methods() {
  static const detail::Method<Namespace> methods[] = {
      method<Namespace, &Namespace::getattr>("getattr"),
      method<Namespace, &Namespace::setattr>("setattr"),
      method<Namespace, &Namespace::delattr>("delattr"),
      method<Namespace, &Namespace::hasattr>("hasattr"),
      method<Namespace, &Namespace::repr>("repr"),
  };
  return methods;
}

// ---- Set

namespace {

::mproc::Dict set_of(const Object& x) {
  ::mproc::Dict d;
  for (const Object& item : items_of(x)) d.set(item, Object());
  return d;
}

Object list_of_keys(const ::mproc::Dict& d) { return Object::list(d.keys()); }

}  // namespace

Set::Set(const Object& initial) : items_(set_of(initial)) {}

std::int64_t Set::len() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::int64_t>(items_.size());
}

bool Set::contains(const Object& x) const {
  std::lock_guard lock(mutex_);
  return items_.contains(x);
}

void Set::add(Object x) {
  std::lock_guard lock(mutex_);
  if (!items_.contains(x)) items_.set(std::move(x), Object());
}

void Set::remove(const Object& x) {
  std::lock_guard lock(mutex_);
  if (!items_.erase(x)) throw KeyError(x.repr());
}

void Set::discard(const Object& x) {
  std::lock_guard lock(mutex_);
  items_.erase(x);
}

Object Set::pop() {
  std::lock_guard lock(mutex_);
  if (items_.empty()) throw KeyError("pop from an empty set");
  Object x = items_.keys().back();
  items_.erase(x);
  return x;
}

void Set::clear() {
  std::lock_guard lock(mutex_);
  items_.clear();
}

Object Set::items() const {
  std::lock_guard lock(mutex_);
  return list_of_keys(items_);
}

void Set::update(const Object& other) {
  ::mproc::Dict more = set_of(other);
  std::lock_guard lock(mutex_);
  for (const Object& x : more.keys())
    if (!items_.contains(x)) items_.set(x, Object());
}

void Set::intersection_update(const Object& other) {
  ::mproc::Dict keep = set_of(other);
  std::lock_guard lock(mutex_);
  ::mproc::Dict r;
  for (const Object& x : items_.keys())
    if (keep.contains(x)) r.set(x, Object());
  items_ = std::move(r);
}

void Set::difference_update(const Object& other) {
  ::mproc::Dict drop = set_of(other);
  std::lock_guard lock(mutex_);
  ::mproc::Dict r;
  for (const Object& x : items_.keys())
    if (!drop.contains(x)) r.set(x, Object());
  items_ = std::move(r);
}

void Set::symmetric_difference_update(const Object& other) {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  ::mproc::Dict r;
  for (const Object& x : items_.keys())
    if (!o.contains(x)) r.set(x, Object());
  for (const Object& x : o.keys())
    if (!items_.contains(x)) r.set(x, Object());
  items_ = std::move(r);
}

Object Set::union_(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  ::mproc::Dict r = items_;
  for (const Object& x : o.keys())
    if (!r.contains(x)) r.set(x, Object());
  return list_of_keys(r);
}

Object Set::intersection(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  Items r;
  for (const Object& x : items_.keys())
    if (o.contains(x)) r.push_back(x);
  return Object::list(std::move(r));
}

Object Set::difference(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  Items r;
  for (const Object& x : items_.keys())
    if (!o.contains(x)) r.push_back(x);
  return Object::list(std::move(r));
}

Object Set::symmetric_difference(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  Items r;
  for (const Object& x : items_.keys())
    if (!o.contains(x)) r.push_back(x);
  for (const Object& x : o.keys())
    if (!items_.contains(x)) r.push_back(x);
  return Object::list(std::move(r));
}

bool Set::isdisjoint(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  for (const Object& x : o.keys())
    if (items_.contains(x)) return false;
  return true;
}

bool Set::issubset(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  for (const Object& x : items_.keys())
    if (!o.contains(x)) return false;
  return true;
}

bool Set::issuperset(const Object& other) const {
  ::mproc::Dict o = set_of(other);
  std::lock_guard lock(mutex_);
  for (const Object& x : o.keys())
    if (!items_.contains(x)) return false;
  return true;
}

std::optional<Object> Set::iter_item(std::int64_t pos, std::int64_t expected_len) const {
  std::lock_guard lock(mutex_);
  if (static_cast<std::int64_t>(items_.size()) != expected_len)
    throw Error("Set changed size during iteration");
  if (pos < 0 || pos >= expected_len) return std::nullopt;
  return items_.keys()[static_cast<std::size_t>(pos)];
}

std::string Set::repr() const {
  std::lock_guard lock(mutex_);
  if (items_.empty()) return "set()";
  return items_repr(items_.keys(), "{", "}");
}

std::span<const detail::Method<Set>> Set::exposed_methods() {
  static const detail::Method<Set> methods[] = {
      method<Set, &Set::len>("len"),
      method<Set, &Set::contains>("contains"),
      method<Set, &Set::add>("add"),
      method<Set, &Set::remove>("remove"),
      method<Set, &Set::discard>("discard"),
      method<Set, &Set::pop>("pop"),
      method<Set, &Set::clear>("clear"),
      method<Set, &Set::items>("items"),
      method<Set, &Set::update>("update"),
      method<Set, &Set::intersection_update>("intersection_update"),
      method<Set, &Set::difference_update>("difference_update"),
      method<Set, &Set::symmetric_difference_update>("symmetric_difference_update"),
      method<Set, &Set::union_>("union"),
      method<Set, &Set::intersection>("intersection"),
      method<Set, &Set::difference>("difference"),
      method<Set, &Set::symmetric_difference>("symmetric_difference"),
      method<Set, &Set::isdisjoint>("isdisjoint"),
      method<Set, &Set::issubset>("issubset"),
      method<Set, &Set::issuperset>("issuperset"),
      method<Set, &Set::iter_item>("iter_item"),
      method<Set, &Set::repr>("repr"),
  };
  return methods;
}

}  // namespace mproc::managed
