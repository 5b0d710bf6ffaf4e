// mproc/sharedctypes.h
//
// Plain values and arrays in shared memory, like Python's `multiprocessing.Value`, `Array`,
// `RawValue` and `RawArray` (`multiprocessing.sharedctypes`). The ctypes typecode becomes the C++
// element type, which must be trivially copyable ('i' is `int`, 'd' `double`, a ctypes Structure
// a POD struct).
//
//   mproc::Value<int> num(1);                              // Python: Value('i', 1)
//   mproc::Array<int> arr(std::views::iota(0, 10));        // Python: Array('i', range(10))
//   // ... in a forked child (or after `Value<int>::attach(num.name())` anywhere):
//   num = num.value() + 1;                                 // each access takes the lock
//   {
//     std::lock_guard hold(arr.get_lock());                // compound updates: hold it yourself
//     for (int& x : arr) x *= 10;
//   }
//   std::vector<int> copy = arr.to_vector();               // Python: arr[:]
//
// `Value` and `Array` come with a lock, as Python's do: by default a fresh `RLock`, or a `Lock` /
// `RLock` you pass (several objects may share one), or none with `lock = false`, in which case
// `get_lock()` throws ValueError (Python returns a raw object without `get_lock`). `value()`,
// `set()`, `get(i)`, `set(i, v)` and `to_vector()` take the lock for the one access, like
// Python's synchronized wrappers. `operator[]`, iteration, `get_obj()` and `operator*` are raw
// references into shared memory that never lock: hold `get_lock()` around them when other
// processes write. `RawValue` and `RawArray` have no lock at all.
//
// `Array<int>(10)` is ten zeros (Python `Array('i', 10)`); `Array<int>{10}` is one 10, as with
// std::vector. Every blocking accessor also takes a Deadline or a timeout (TimeoutError).
//
// Storage: each object is one shared segment (see shm.h) with a small header (element type,
// count, the lock's kind and name) and the elements, zero-filled then initialized; its lock has
// its own segment (lock.h). A process that
// was not forked from the creator calls `attach(name())`; the element type is checked (ValueError
// on a mismatch). Serialization (any archive with `is_loading`, e.g. Boost.Serialization) sends
// the name only; loading attaches.
//
// Thread safety: handles are cheap to copy and every copy refers to the same memory; the
// locking accessors may be used from any thread of any process, the raw ones need the lock.
// Memory ordering: what one holder of the lock wrote is seen by the next holder; raw accesses
// without the lock are ordered by nothing.
// Fork safety: created before a fork, an object is shared by parent and child.
// Lifetime: the segment belongs to the creating process and is unlinked when its last handle
// there goes (or by the resource tracker if it dies); other processes' handles keep their mapping
// valid for as long as they live.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <new>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"
#include "mproc/errors.h"
#include "mproc/lock.h"
#include "mproc/shm.h"

namespace mproc {

namespace detail {

// A stable identity of `T` across processes built by the same compiler (FNV-1a of its mangled
// name), checked when attaching so that a Value<int> is never read as a Value<double>.
template <class T>
[[nodiscard]] std::uint64_t shared_type_id() noexcept {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char* p = typeid(T).name(); *p != '\0'; ++p) {
    hash ^= static_cast<unsigned char>(*p);
    hash *= 1099511628211ull;
  }
  return hash ^ sizeof(T);
}

enum class SharedLockKind : std::uint32_t { kNone = 0, kLock = 1, kRLock = 2 };

// The untyped storage under Value, Array, RawValue and RawArray: a segment with a header and
// `count` elements of `element_size` bytes (aligned to 64), zero-filled.
class SharedBlock {
 public:
  static constexpr std::size_t kMaxAlignment = 64;

  SharedBlock() = default;
  [[nodiscard]] static SharedBlock create(std::size_t element_size, std::size_t count,
                                          std::uint64_t type_id, SharedLockKind lock_kind,
                                          std::string_view lock_name);
  // Throws ValueError when `name` holds another element type, std::system_error when it does
  // not exist.
  [[nodiscard]] static SharedBlock attach(std::string_view name, std::size_t element_size,
                                          std::uint64_t type_id);

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  [[nodiscard]] SharedLockKind lock_kind() const noexcept;
  [[nodiscard]] std::string lock_name() const;

 private:
  SharedSegment segment_;
  void* data_ = nullptr;
  std::size_t count_ = 0;
};

// The optional lock of a Value or Array.
class SharedObjectLock {
 public:
  SharedObjectLock() = default;
  explicit SharedObjectLock(bool with_lock) {
    if (with_lock) lock_ = RLock();
  }
  explicit SharedObjectLock(Lock lock) : lock_(std::move(lock)) {}
  explicit SharedObjectLock(RLock lock) : lock_(std::move(lock)) {}
  // The lock recorded in a block's header.
  explicit SharedObjectLock(const SharedBlock& block) {
    switch (block.lock_kind()) {
      case SharedLockKind::kLock:
        lock_ = Lock::attach(block.lock_name());
        break;
      case SharedLockKind::kRLock:
        lock_ = RLock::attach(block.lock_name());
        break;
      case SharedLockKind::kNone:
        break;
    }
  }

  [[nodiscard]] SharedLockKind kind() const noexcept {
    return static_cast<SharedLockKind>(lock_.index());
  }
  [[nodiscard]] std::string name() const {
    return std::visit(
        [](const auto& l) -> std::string {
          if constexpr (std::is_same_v<std::decay_t<decltype(l)>, std::monostate>) {
            return {};
          } else {
            return l.name();
          }
        },
        lock_);
  }
  [[nodiscard]] LockBase* get() const noexcept {
    if (auto* l = std::get_if<Lock>(&lock_)) return l;
    if (auto* r = std::get_if<RLock>(&lock_)) return r;
    return nullptr;
  }
  [[nodiscard]] LockBase& checked() const {
    if (LockBase* l = get()) return *l;
    throw ValueError("this shared object was created with lock = false and has no lock");
  }

  // Holds the lock (if any) for one access.
  class Hold {
   public:
    explicit Hold(LockBase* lock) : lock_(lock) {
      if (lock_ != nullptr) lock_->acquire();
    }
    // Throws TimeoutError when the lock is not had by `deadline`.
    Hold(LockBase* lock, const Deadline& deadline) : lock_(lock) {
      if (lock_ != nullptr && !lock_->acquire(deadline))
        throw TimeoutError("timed out waiting for the lock of a shared value");
    }
    ~Hold() {
      if (lock_ != nullptr) lock_->release();
    }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    LockBase* lock_;
  };

 private:
  // Handles are copied into a const object's accessors: the lock handle itself is not what const
  // protects.
  mutable std::variant<std::monostate, Lock, RLock> lock_;
};

// What a shared value or array may hold: bytes that mean the same in every process (trivially
// copyable; and no pointers into private memory either, which the compiler cannot check).
template <class T>
inline constexpr bool kShareable = std::is_trivially_copyable_v<T> &&
                                   alignof(T) <= SharedBlock::kMaxAlignment;

}  // namespace detail

// Python `multiprocessing.sharedctypes.RawValue`: one T in shared memory, without a lock.
template <class T>
class RawValue {
  static_assert(detail::kShareable<T>, "a shared value holds trivially copyable types only");

 public:
  explicit RawValue(const T& init = T{})
      : block_(detail::SharedBlock::create(sizeof(T), 1, detail::shared_type_id<T>(),
                                           detail::SharedLockKind::kNone, {})) {
    ::new (block_.data()) T(init);
  }
  // A handle to no value, to load into (see detail/blank_handle.h).
  explicit RawValue(detail::BlankHandle) noexcept {}
  // Python: passing the object to a process that was not forked. Throws ValueError (another
  // type), std::system_error (no such segment).
  [[nodiscard]] static RawValue attach(std::string_view name) {
    return RawValue(detail::SharedBlock::attach(name, sizeof(T), detail::shared_type_id<T>()));
  }

  [[nodiscard]] T value() const { return *ptr(); }
  [[nodiscard]] T get() const { return value(); }
  void set(const T& v) const { *ptr() = v; }
  const RawValue& operator=(const T& v) const {
    set(v);
    return *this;
  }
  [[nodiscard]] T& operator*() const noexcept { return *ptr(); }
  [[nodiscard]] T* operator->() const noexcept { return ptr(); }
  [[nodiscard]] const std::string& name() const noexcept { return block_.name(); }
  // Python `sharedctypes.copy`: an independent RawValue with the same contents.
  [[nodiscard]] RawValue copy() const { return RawValue(value()); }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  explicit RawValue(detail::SharedBlock block) : block_(std::move(block)) {}
  [[nodiscard]] T* ptr() const noexcept { return std::launder(static_cast<T*>(block_.data())); }

  detail::SharedBlock block_;
};

// Python `multiprocessing.Value`: one T in shared memory with a lock (see the file comment).
template <class T>
class Value {
  static_assert(detail::kShareable<T>, "a shared value holds trivially copyable types only");

 public:
  // `lock = true`: a fresh RLock (Python's default); false: no lock.
  explicit Value(const T& init = T{}, bool lock = true)
      : Value(init, detail::SharedObjectLock(lock)) {}
  // Guarded by an existing lock, which get_lock() then returns (Python `Value(..., lock=lock)`).
  Value(const T& init, Lock lock) : Value(init, detail::SharedObjectLock(std::move(lock))) {}
  Value(const T& init, RLock lock) : Value(init, detail::SharedObjectLock(std::move(lock))) {}
  // A handle to no value, to load into (see detail/blank_handle.h).
  explicit Value(detail::BlankHandle) noexcept {}
  // Also attaches to its lock. Throws ValueError (another type), std::system_error (no such
  // segment).
  [[nodiscard]] static Value attach(std::string_view name) {
    auto block = detail::SharedBlock::attach(name, sizeof(T), detail::shared_type_id<T>());
    detail::SharedObjectLock lock(block);
    return Value(std::move(block), std::move(lock));
  }

  // Reads under the lock. Blocks while another thread or process holds it, and wakes when the
  // holder releases it or dies; a `Lock` (not RLock) already held by the caller throws
  // ValueError instead of deadlocking. With a deadline or timeout: TimeoutError once it passes.
  [[nodiscard]] T value() const {
    detail::SharedObjectLock::Hold hold(lock_.get());
    return *ptr();
  }
  [[nodiscard]] T value(const Deadline& deadline) const {
    detail::SharedObjectLock::Hold hold(lock_.get(), deadline);
    return *ptr();
  }
  template <class Rep, class Period>
  [[nodiscard]] T value(std::chrono::duration<Rep, Period> timeout) const {
    return value(Deadline::after(timeout));
  }
  [[nodiscard]] T get() const { return value(); }
  // Writes under the lock (blocks and throws as value() does).
  void set(const T& v) const {
    detail::SharedObjectLock::Hold hold(lock_.get());
    *ptr() = v;
  }
  void set(const T& v, const Deadline& deadline) const {
    detail::SharedObjectLock::Hold hold(lock_.get(), deadline);
    *ptr() = v;
  }
  template <class Rep, class Period>
  void set(const T& v, std::chrono::duration<Rep, Period> timeout) const {
    set(v, Deadline::after(timeout));
  }
  const Value& operator=(const T& v) const {
    set(v);
    return *this;
  }

  // The lock, for std::lock_guard / std::scoped_lock or acquire()/release(). Throws ValueError
  // when created with `lock = false`.
  [[nodiscard]] LockBase& get_lock() const { return lock_.checked(); }
  [[nodiscard]] bool has_lock() const noexcept { return lock_.get() != nullptr; }
  // Python `get_obj()`: the raw object, never locked.
  [[nodiscard]] T& get_obj() const noexcept { return *ptr(); }
  [[nodiscard]] T& operator*() const noexcept { return *ptr(); }
  [[nodiscard]] T* operator->() const noexcept { return ptr(); }
  [[nodiscard]] const std::string& name() const noexcept { return block_.name(); }
  // Python `sharedctypes.copy`: an independent RawValue with the same contents.
  [[nodiscard]] RawValue<T> copy() const { return RawValue<T>(value()); }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  Value(const T& init, detail::SharedObjectLock lock)
      : block_(detail::SharedBlock::create(sizeof(T), 1, detail::shared_type_id<T>(), lock.kind(),
                                           lock.name())),
        lock_(std::move(lock)) {
    ::new (block_.data()) T(init);
  }
  Value(detail::SharedBlock block, detail::SharedObjectLock lock)
      : block_(std::move(block)), lock_(std::move(lock)) {}
  [[nodiscard]] T* ptr() const noexcept { return std::launder(static_cast<T*>(block_.data())); }

  detail::SharedBlock block_;
  detail::SharedObjectLock lock_;
};

namespace detail {

// What RawArray and Array share: the elements and their raw (never locking) access.
template <class T>
class SharedArrayBase {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return block_.count(); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] T* data() const noexcept { return std::launder(static_cast<T*>(block_.data())); }
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data()[i]; }
  [[nodiscard]] T* begin() const noexcept { return data(); }
  [[nodiscard]] T* end() const noexcept { return data() + size(); }
  [[nodiscard]] std::span<T> span() const noexcept { return {data(), size()}; }
  // Python `arr[start:stop]` (clamped to the array, as Python's slices are): a view to read or
  // assign through, e.g. std::ranges::copy(values, arr.slice(4, 8).begin()).
  [[nodiscard]] std::span<T> slice(std::size_t start, std::size_t stop) const noexcept {
    stop = std::min(stop, size());
    start = std::min(start, stop);
    return span().subspan(start, stop - start);
  }
  [[nodiscard]] const std::string& name() const noexcept { return block_.name(); }

 protected:
  SharedArrayBase() = default;
  explicit SharedArrayBase(SharedBlock block) : block_(std::move(block)) {}

  void check_index(std::size_t i) const {
    if (i >= size()) throw IndexError("invalid index");
  }
  // A new block of `size` value-initialized elements (zeros for arithmetic types, as Python's).
  void create(std::size_t size, SharedLockKind kind, std::string_view lock_name) {
    block_ = SharedBlock::create(sizeof(T), size, shared_type_id<T>(), kind, lock_name);
    for (std::size_t i = 0; i < size; ++i) ::new (data() + i) T{};
  }
  // A new block holding a copy of `values` (a single-pass range is buffered first).
  template <class Range>
  void create_from(Range&& values, SharedLockKind kind, std::string_view lock_name) {
    if constexpr (std::ranges::forward_range<Range> || std::ranges::sized_range<Range>) {
      const auto n = static_cast<std::size_t>(std::ranges::distance(values));
      block_ = SharedBlock::create(sizeof(T), n, shared_type_id<T>(), kind, lock_name);
      std::size_t i = 0;
      for (auto&& v : values) {
        if (i == n) break;
        ::new (data() + i++) T(static_cast<T>(v));
      }
    } else {
      std::deque<T> all;
      for (auto&& v : values) all.push_back(static_cast<T>(v));
      create_from(all, kind, lock_name);
    }
  }
  [[nodiscard]] std::string chars() const {
    const char* text = reinterpret_cast<const char*>(data());
    return std::string(text, ::strnlen(text, size()));
  }
  void store_chars(std::string_view text) const {
    if (text.size() > size()) throw ValueError("byte string too long");
    std::memcpy(data(), text.data(), text.size());
    if (text.size() < size()) data()[text.size()] = '\0';
  }

  SharedBlock block_;
};

// A range that can initialize an array of T, and is not that array itself (whose copy is a
// copy of the handle).
template <class Range, class T, class Self>
concept ArraySource =
    std::ranges::input_range<Range> && !std::is_same_v<std::remove_cvref_t<Range>, Self> &&
    std::convertible_to<std::ranges::range_reference_t<Range>, T>;

}  // namespace detail

// Python `multiprocessing.sharedctypes.RawArray`: `size()` Ts in shared memory, without a lock.
template <class T>
class RawArray : public detail::SharedArrayBase<T> {
  static_assert(detail::kShareable<T>, "a shared array holds trivially copyable types only");

 public:
  // An empty handle (no elements, no name): something to assign or deserialize into.
  RawArray() = default;
  // Python `RawArray('i', 10)`: value-initialized (zeros for arithmetic types).
  explicit RawArray(std::size_t size) { this->create(size, detail::SharedLockKind::kNone, {}); }
  RawArray(std::initializer_list<T> values) {
    this->create_from(values, detail::SharedLockKind::kNone, {});
  }
  // Python `RawArray('i', range(10))`: a copy of any input range.
  template <detail::ArraySource<T, RawArray> Range>
  explicit RawArray(Range&& values) {
    this->create_from(std::forward<Range>(values), detail::SharedLockKind::kNone, {});
  }
  // Throws ValueError (another element type), std::system_error (no such segment).
  [[nodiscard]] static RawArray attach(std::string_view name) {
    return RawArray(detail::SharedBlock::attach(name, sizeof(T), detail::shared_type_id<T>()));
  }

  // Bounds-checked (IndexError); there is no lock.
  [[nodiscard]] T get(std::size_t i) const {
    this->check_index(i);
    return (*this)[i];
  }
  void set(std::size_t i, const T& v) const {
    this->check_index(i);
    (*this)[i] = v;
  }
  [[nodiscard]] std::vector<T> to_vector() const { return {this->begin(), this->end()}; }
  // Python's char arrays: `.value` reads up to the first '\0'; setting it throws ValueError when
  // the text does not fit, and ends a shorter one with '\0'.
  [[nodiscard]] std::string str() const requires std::is_same_v<T, char> { return this->chars(); }
  void set_str(std::string_view text) const requires std::is_same_v<T, char> {
    this->store_chars(text);
  }
  // Python `sharedctypes.copy`: an independent RawArray with the same contents.
  [[nodiscard]] RawArray copy() const { return RawArray(this->span()); }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  explicit RawArray(detail::SharedBlock block) : detail::SharedArrayBase<T>(std::move(block)) {}
};

// Python `multiprocessing.Array`: `size()` Ts in shared memory with a lock (see the file comment).
template <class T>
class Array : public detail::SharedArrayBase<T> {
  static_assert(detail::kShareable<T>, "a shared array holds trivially copyable types only");

 public:
  // An empty handle (no elements, no name, no lock): something to assign or deserialize into.
  Array() = default;
  // Python `Array('i', 10)`: value-initialized. `lock`: as for Value.
  explicit Array(std::size_t size, bool lock = true) : lock_(lock) { init(size); }
  Array(std::size_t size, Lock lock) : lock_(std::move(lock)) { init(size); }
  Array(std::size_t size, RLock lock) : lock_(std::move(lock)) { init(size); }
  Array(std::initializer_list<T> values) : lock_(true) {
    this->create_from(values, lock_.kind(), lock_.name());
  }
  // Python `Array('i', range(10), lock=...)`: a copy of any input range.
  template <detail::ArraySource<T, Array> Range>
  explicit Array(Range&& values, bool lock = true) : lock_(lock) {
    this->create_from(std::forward<Range>(values), lock_.kind(), lock_.name());
  }
  template <detail::ArraySource<T, Array> Range>
  Array(Range&& values, Lock lock) : lock_(std::move(lock)) {
    this->create_from(std::forward<Range>(values), lock_.kind(), lock_.name());
  }
  template <detail::ArraySource<T, Array> Range>
  Array(Range&& values, RLock lock) : lock_(std::move(lock)) {
    this->create_from(std::forward<Range>(values), lock_.kind(), lock_.name());
  }
  // Also attaches to its lock. Throws ValueError (another element type), std::system_error (no
  // such segment).
  [[nodiscard]] static Array attach(std::string_view name) {
    auto block = detail::SharedBlock::attach(name, sizeof(T), detail::shared_type_id<T>());
    detail::SharedObjectLock lock(block);
    return Array(std::move(block), std::move(lock));
  }

  // Bounds-checked (IndexError) and under the lock, like Python's `arr[i]` / `arr[i] = v`.
  // Block, wake and throw as Value::value does (TimeoutError once a deadline passes).
  [[nodiscard]] T get(std::size_t i, const Deadline& deadline = Deadline::never()) const {
    this->check_index(i);
    detail::SharedObjectLock::Hold hold(lock_.get(), deadline);
    return (*this)[i];
  }
  void set(std::size_t i, const T& v, const Deadline& deadline = Deadline::never()) const {
    this->check_index(i);
    detail::SharedObjectLock::Hold hold(lock_.get(), deadline);
    (*this)[i] = v;
  }
  // Python `arr[:]`: a copy taken under the lock.
  [[nodiscard]] std::vector<T> to_vector(const Deadline& deadline = Deadline::never()) const {
    detail::SharedObjectLock::Hold hold(lock_.get(), deadline);
    return {this->begin(), this->end()};
  }
  template <class Rep, class Period>
  [[nodiscard]] T get(std::size_t i, std::chrono::duration<Rep, Period> timeout) const {
    return get(i, Deadline::after(timeout));
  }
  template <class Rep, class Period>
  void set(std::size_t i, const T& v, std::chrono::duration<Rep, Period> timeout) const {
    set(i, v, Deadline::after(timeout));
  }
  template <class Rep, class Period>
  [[nodiscard]] std::vector<T> to_vector(std::chrono::duration<Rep, Period> timeout) const {
    return to_vector(Deadline::after(timeout));
  }
  // Python's char arrays `.value` (see RawArray::str), under the lock.
  [[nodiscard]] std::string str() const requires std::is_same_v<T, char> {
    detail::SharedObjectLock::Hold hold(lock_.get());
    return this->chars();
  }
  void set_str(std::string_view text) const requires std::is_same_v<T, char> {
    detail::SharedObjectLock::Hold hold(lock_.get());
    this->store_chars(text);
  }

  // See Value::get_lock.
  [[nodiscard]] LockBase& get_lock() const { return lock_.checked(); }
  [[nodiscard]] bool has_lock() const noexcept { return lock_.get() != nullptr; }
  // Python `get_obj()`: the raw elements, never locked.
  [[nodiscard]] std::span<T> get_obj() const noexcept { return this->span(); }
  // Python `sharedctypes.copy`: an independent RawArray with the same contents.
  [[nodiscard]] RawArray<T> copy() const { return RawArray<T>(to_vector()); }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

 private:
  Array(detail::SharedBlock block, detail::SharedObjectLock lock)
      : detail::SharedArrayBase<T>(std::move(block)), lock_(std::move(lock)) {}
  void init(std::size_t size) { this->create(size, lock_.kind(), lock_.name()); }

  detail::SharedObjectLock lock_;
};

}  // namespace mproc
