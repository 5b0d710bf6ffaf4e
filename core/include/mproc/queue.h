// mproc/queue.h
//
// `Queue<T>`, `JoinableQueue<T>` and `SimpleQueue<T>`: FIFO queues shared by processes, like
// Python's `multiprocessing.Queue`, `JoinableQueue` and `SimpleQueue`.
//
//   mproc::Queue<std::string> q(3);                  // at most 3 items (0: unbounded)
//   q.put("A");                                      // blocks while full
//   q.put("B", 2s);                                  // Full after 2 s
//   std::string a = q.get();                         // blocks while empty
//   std::string b = q.get(0.5s);                     // Empty after 0.5 s
//   q.put_nowait("C"); auto c = q.get_nowait();      // Full / Empty at once
//
// Any type `mproc/serialize.h` can send may be an item; each put stores a copy of its bytes in
// shared memory (a ring of `QueueOptions::capacity` bytes, 8 MiB by default; larger items go
// through too, out of line), and each get decodes a fresh T (SerializationError if the bytes are
// not a T). The queue lives in shared memory: a child forked after its creation uses it directly,
// and any other process can `attach(q.name())`.
//
// Differences from Python, all in the caller's favour:
//  - There is no feeder thread: `put` has copied the item into shared memory when it returns, so
//    an item is never lost because its producer exited, and joining a process that put items
//    nobody read cannot deadlock. `join_thread()` and `cancel_join_thread()` exist only so that
//    ported code compiles; they do nothing. An item that cannot be serialized throws from `put`
//    itself and leaves the queue as it was (Python's feeder would report it later).
//  - `qsize()` is exact on every platform.
//  - A producer or consumer killed (SIGKILL) in the middle of a put or get neither corrupts the
//    queue nor hangs the others: an item is in the queue whole or not at all (a put is committed
//    by one store after its bytes are copied, a get only after they are copied out), and the
//    others go on with every item, exactly once. (An item whose get was committed went with the
//    consumer that was killed after taking it, as in Python.) A process killed while holding the
//    queue's lock delays the others by a few milliseconds: they find it dead by its pid, so
//    processes sharing a queue must share a pid namespace (as processes that signal each other
//    do).
//
// Memory ordering: everything a process wrote before a put returned is visible to the process
// whose get returns that item.
//
// Thread safety: every member function may be called from several threads and processes at once.
// Fork safety: a child forked from a process holding a handle may use it (while the parent is
// not multi-threaded, as for any fork). Lifetime: copies are handles to the same queue; `close()`
// applies to this process's handles (the process's copies share it). The items, and the name
// `attach` uses, live until the creating process drops its last handle: a queue must not be used
// by others after its creator destroyed it (items still out of line are then gone, and a get
// that reaches one throws Error).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"
#include "mproc/detail/byte_queue.h"
#include "mproc/errors.h"
#include "mproc/serialize.h"

namespace mproc {

namespace detail {

// Python's (block, timeout) pair: a negative timeout is a ValueError, block=false ignores it.
inline Deadline python_deadline(bool block, std::optional<double> timeout) {
  if (!block) return Deadline::now();
  if (timeout && *timeout < 0) throw ValueError("'timeout' must be a non-negative number");
  return Deadline::after(timeout);
}

// A per-thread buffer for encoding and decoding, so that a put or get allocates nothing in the
// steady state; dropped after a very large item so that it does not pin the memory.
class ScratchBuffer {
 public:
  std::string& get() noexcept { return buffer_; }
  ~ScratchBuffer() = default;
  void trim() {
    constexpr std::size_t kKeep = std::size_t{16} << 20;
    if (buffer_.capacity() > kKeep) std::string().swap(buffer_);
  }

 private:
  std::string buffer_;
};

inline ScratchBuffer& scratch_buffer() {
  thread_local ScratchBuffer buffer;
  return buffer;
}

// The typed layer over ByteQueue shared by the three queues.
template <class T>
class TypedQueue {
 public:
  explicit TypedQueue(const QueueOptions& options) : bytes_(options) {}
  explicit TypedQueue(ByteQueue bytes) : bytes_(std::move(bytes)) {}
  explicit TypedQueue(BlankHandle blank) noexcept : bytes_(blank) {}

  [[nodiscard]] const std::string& name() const noexcept { return bytes_.name(); }

 protected:
  // Strings and contiguous ranges of trivially copyable elements travel as a short header and
  // their own bytes: the queue copies those bytes once, from the item into shared memory (and,
  // in get_item, once from there into the new item). Anything else is encoded into a buffer
  // first.
  static constexpr Path kPath = path_of<T>();
  static constexpr bool kDirectPut =
      (kPath == Path::kString && !std::is_pointer_v<T>) || kPath == Path::kRawRange;
  static constexpr bool kDirectGet = kPath != Path::kBoost;

  void put_item(const T& item, const Deadline& deadline) {
    if (bytes_.closed()) throw ValueError("Queue is closed");
    if constexpr (kDirectPut) {
      std::string head;  // a few bytes: no allocation
      put_header(head, kTagRaw, kFingerprint<typename WireTypeOf<T>::type>);
      std::string_view body;
      if constexpr (kPath == Path::kString) {
        body = std::string_view(item);
      } else {
        using E = std::ranges::range_value_t<const T>;
        body = std::string_view(reinterpret_cast<const char*>(std::ranges::data(item)),
                                std::ranges::size(item) * sizeof(E));
      }
      bytes_.put(head, body, deadline);
      return;
    }
    ScratchBuffer& scratch = scratch_buffer();
    std::string& buffer = scratch.get();
    buffer.clear();
    encode_into(item, buffer);
    try {
      bytes_.put(buffer, deadline);
    } catch (...) {
      scratch.trim();
      throw;
    }
    scratch.trim();
  }

  [[nodiscard]] T get_item(const Deadline& deadline) {
    T value = blank_for_loading<T>();
    get_item_into(value, deadline);
    return value;
  }

  void get_item_into(T& value, const Deadline& deadline) {
    if constexpr (kDirectGet) {
      // Decoded where it lies, under the queue's lock: the item's only copy on the way out.
      bytes_.get_view(deadline, [&](std::string_view item) { decode_into(item, value); });
      return;
    }
    ScratchBuffer& scratch = scratch_buffer();
    std::string& buffer = scratch.get();
    bytes_.get(buffer, deadline);
    struct Trim {
      ScratchBuffer& s;
      ~Trim() { s.trim(); }
    } trim{scratch};
    decode_into(buffer, value);
  }

  ByteQueue bytes_;
};

}  // namespace detail

// Python's `multiprocessing.Queue`.
template <class T>
class Queue : public detail::TypedQueue<T> {
  using Base = detail::TypedQueue<T>;

 public:
  // `maxsize` items at most (0: unbounded).
  explicit Queue(std::size_t maxsize = 0) : Queue(QueueOptions{.maxsize = maxsize}) {}
  explicit Queue(const QueueOptions& options) : Base(options) {}
  // A handle to no queue, to load into (see detail/blank_handle.h).
  explicit Queue(detail::BlankHandle blank) noexcept : Base(blank) {}
  // A handle to the queue `name` (`q.name()` in the creating process). Throws std::system_error
  // if there is no such queue. The item type must be the same as the creator's.
  [[nodiscard]] static Queue attach(std::string_view name) {
    return Queue(detail::ByteQueue::attach(name));
  }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

  // Appends `item`. Blocks while the queue holds `maxsize` items: woken by a get; throws Full
  // once the deadline passes (a nonblocking put at once). Throws ShutDown after shutdown(),
  // ValueError after close(), SerializationError if the item cannot be encoded (the queue is then
  // unchanged).
  void put(const T& item) { this->put_item(item, Deadline::never()); }
  void put(const T& item, const Deadline& deadline) { this->put_item(item, deadline); }
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    this->put_item(item, Deadline::after(timeout));
  }
  // Python's put(item, block, timeout): timeout in seconds, nullopt for ever, ignored when
  // `block` is false; a negative timeout is a ValueError.
  void put(const T& item, bool block, std::optional<double> timeout = std::nullopt) {
    this->put_item(item, detail::python_deadline(block, timeout));
  }
  // Not a timeout: write `put(item, true, seconds)` or `put(item, 2s)`.
  void put(const T& item, double) = delete;
  void put_nowait(const T& item) { this->put_item(item, Deadline::now()); }

  // Removes and returns the oldest item. Blocks while the queue is empty: woken by a put; throws
  // Empty once the deadline passes (a nonblocking get at once), ShutDown if the queue was shut
  // down and is empty, ValueError after close(), SerializationError if the item is not a T.
  [[nodiscard]] T get() { return this->get_item(Deadline::never()); }
  [[nodiscard]] T get(const Deadline& deadline) { return this->get_item(deadline); }
  template <class Rep, class Period>
  [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) {
    return this->get_item(Deadline::after(timeout));
  }
  [[nodiscard]] T get(bool block, std::optional<double> timeout = std::nullopt) {
    return this->get_item(detail::python_deadline(block, timeout));
  }
  T get(double) = delete;
  [[nodiscard]] T get_nowait() { return this->get_item(Deadline::now()); }
  // As get(), into `item`, which a std::string or std::vector item reuses: a loop of gets into
  // one variable allocates nothing once it has held the largest item (a C++ addition, as
  // Connection::recv_bytes_into is Python's). When the item is not a T (SerializationError) it
  // is taken all the same and `item` is left valid but unspecified.
  void get_into(T& item) { this->get_item_into(item, Deadline::never()); }
  void get_into(T& item, const Deadline& deadline) { this->get_item_into(item, deadline); }
  template <class Rep, class Period>
  void get_into(T& item, std::chrono::duration<Rep, Period> timeout) {
    this->get_item_into(item, Deadline::after(timeout));
  }

  // The number of items in the queue, exactly (others may change it right after).
  [[nodiscard]] std::size_t qsize() const { return this->bytes_.qsize(); }
  // As Python's: after this process used the queue and closed it, empty() throws
  // std::system_error (EBADF), Python's OSError "is closed".
  [[nodiscard]] bool empty() const {
    if (this->bytes_.closed() && this->bytes_.used())
      throw std::system_error(EBADF, std::generic_category(), "Queue is closed");
    return this->bytes_.qsize() == 0;
  }
  [[nodiscard]] bool full() const { return this->bytes_.full(); }
  [[nodiscard]] std::size_t maxsize() const noexcept { return this->bytes_.maxsize(); }

  // This process will not use the queue any more: put and get throw ValueError from now on.
  // Other processes are not affected. Idempotent.
  void close() noexcept { this->bytes_.close(); }
  // No-ops: there is no feeder thread to join (see above).
  void join_thread() const noexcept {}
  void cancel_join_thread() const noexcept {}

  // Python 3.13's shutdown: from now on every process's put throws ShutDown, and get throws it
  // once the queue is empty. `immediate` also discards the items (as if task_done() had been
  // called for each). Wakes every blocked put, get and join so they re-check.
  void shutdown(bool immediate = false) { this->bytes_.shutdown(immediate); }
  [[nodiscard]] bool is_shutdown() const noexcept { return this->bytes_.is_shutdown(); }

 protected:
  explicit Queue(detail::ByteQueue bytes) : Base(std::move(bytes)) {}
};

// Python's `multiprocessing.JoinableQueue`: a Queue that counts unfinished tasks. Each put adds
// one; each `task_done()` ends one; `join()` waits until none is left.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(std::size_t maxsize = 0) : Queue<T>(maxsize) {}
  explicit JoinableQueue(const QueueOptions& options) : Queue<T>(options) {}
  explicit JoinableQueue(detail::BlankHandle blank) noexcept : Queue<T>(blank) {}
  [[nodiscard]] static JoinableQueue attach(std::string_view name) {
    return JoinableQueue(detail::ByteQueue::attach(name));
  }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

  // Ends one task (an item some process got). Throws ValueError when called more times than
  // items were put ("task_done() called too many times"); items discarded by
  // shutdown(immediate) count as done.
  void task_done() { this->bytes_.task_done(); }
  // Blocks until every item put has been task_done()'d, woken by the last task_done() or an
  // immediate shutdown. The timed forms return false when the deadline passes first (Python's
  // join has no timeout; this is the `Event.wait` convention).
  void join() { (void)this->bytes_.join(Deadline::never()); }
  [[nodiscard]] bool join(const Deadline& deadline) { return this->bytes_.join(deadline); }
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->bytes_.join(Deadline::after(timeout));
  }

 private:
  explicit JoinableQueue(detail::ByteQueue bytes) : Queue<T>(std::move(bytes)) {}
};

// Python's `multiprocessing.SimpleQueue`: unbounded, only put, get, empty and close.
template <class T>
class SimpleQueue : public detail::TypedQueue<T> {
  using Base = detail::TypedQueue<T>;

 public:
  SimpleQueue() : Base(QueueOptions{}) {}
  explicit SimpleQueue(detail::BlankHandle blank) noexcept : Base(blank) {}
  explicit SimpleQueue(const QueueOptions& options) : Base(QueueOptions{0, options.capacity}) {}
  [[nodiscard]] static SimpleQueue attach(std::string_view name) {
    return SimpleQueue(detail::ByteQueue::attach(name));
  }

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    detail::serialize_by_name(ar, *this);
  }

  // Never blocks (unbounded). ValueError after close(), SerializationError as Queue::put.
  void put(const T& item) { this->put_item(item, Deadline::never()); }
  // Blocks until an item arrives (woken by a put). ValueError after close().
  [[nodiscard]] T get() { return this->get_item(Deadline::never()); }
  [[nodiscard]] T get(const Deadline& deadline) { return this->get_item(deadline); }
  // As Queue::get_into.
  void get_into(T& item) { this->get_item_into(item, Deadline::never()); }
  void get_into(T& item, const Deadline& deadline) { this->get_item_into(item, deadline); }
  // Unlike Queue's, throws std::system_error (EBADF) after close() even if never used, as
  // Python's.
  [[nodiscard]] bool empty() const {
    if (this->bytes_.closed())
      throw std::system_error(EBADF, std::generic_category(), "SimpleQueue is closed");
    return this->bytes_.qsize() == 0;
  }
  // Idempotent.
  void close() noexcept { this->bytes_.close(); }

 private:
  explicit SimpleQueue(detail::ByteQueue bytes) : Base(std::move(bytes)) {}
};

}  // namespace mproc
