// mproc/detail/byte_queue.h
//
// `detail::ByteQueue`: the untyped FIFO of byte strings under `Queue<T>`, `SimpleQueue<T>` and
// `JoinableQueue<T>` (mproc/queue.h). Users want those; this header is public only because the
// templates are built on it.
//
// One shared segment holds a header and a byte ring. A record is an 8-byte length and the
// payload, wrapping at the ring's end; an item that does not fit in the ring's free bytes goes
// "out of line", into a segment of its own that a ring record names; when the ring has no room
// even for that, items go to a FIFO of overflow segments (1 MiB chunks of records), and later
// items follow them there until they drain, so the order stays FIFO. Every structure change
// happens under one process-shared mutex whose waiters take it over from a holder that died
// (PidMutex) and is committed by a single store after the bytes are copied, so a process
// SIGKILLed in the middle of a put or a get leaves no half-written item and loses none. A large
// item (64 KiB and more) is copied into the ring after the commit that reserves its record,
// outside the mutex, so that its copy overlaps with a consumer's copy of the item before it; a
// get waits for such a record to be published, and skips it if its producer died copying (that
// put never returned). Waiters spin on the commit count, then sleep on futex words; a put or get
// makes no system call while nobody sleeps.
//
// Thread safety: every member function may be called from several threads and processes.
// Fork safety: a forked child may use the handles it inherited. Lifetime: copies are handles to
// the same queue; the ring lives while any process maps it, but its name (for `attach`) and any
// item still out of line are removed when the creating process drops its last handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mproc/deadline.h"
#include "mproc/detail/blank_handle.h"

namespace mproc {

// How a queue is made. `maxsize` counts items, as in Python (0: unbounded, `put` never blocks);
// `capacity` is the ring's size in bytes (rounded up to a power of two, at least 4 KiB). Items
// larger than the ring's free room still go through, out of line.
struct QueueOptions {
  std::size_t maxsize = 0;
  std::size_t capacity = std::size_t{8} << 20;
};

namespace detail {

// A non-owning reference to a callable taking an item's bytes (no allocation, unlike
// std::function); the callable must outlive the call it is passed to.
class ItemSink {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, ItemSink> &&
           std::is_invocable_v<F&, std::string_view>) ItemSink(F&& f)
  noexcept  // NOLINT(google-explicit-constructor): a lambda converts
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, std::string_view item) {
          (*static_cast<std::remove_reference_t<F>*>(object))(item);
        }) {}
  void operator()(std::string_view item) const { call_(object_, item); }

 private:
  void* object_;
  void (*call_)(void*, std::string_view);
};

class ByteQueue {
 public:
  // Creates a new queue; this process owns its name.
  explicit ByteQueue(const QueueOptions& options);
  // No queue, to load into (see blank_handle.h); only assignment and destruction are valid.
  explicit ByteQueue(BlankHandle) noexcept {}
  // As the constructor, in a segment without a name (SharedSegment::create_unnamed): for a queue
  // that only this process and the children it forks from now on use; attach() cannot find it.
  [[nodiscard]] static ByteQueue create_unnamed(const QueueOptions& options);
  // Maps the queue created elsewhere under `name` (std::system_error if there is none, ValueError
  // if the segment is not a queue).
  [[nodiscard]] static ByteQueue attach(std::string_view name);

  // Appends a copy of `bytes`. Blocks while the queue holds `maxsize` items, until a get makes
  // room (Full when `deadline` passes first), a shutdown (ShutDown), or for ever. ValueError
  // after close(); ShutDown after shutdown().
  void put(std::string_view bytes, const Deadline& deadline);
  // As put(head + body), without joining them first: the item's bytes are copied once, straight
  // into the queue.
  void put(std::string_view head, std::string_view body, const Deadline& deadline);
  // Takes the oldest item into `out` (replacing its contents). Blocks while the queue is empty,
  // until a put (Empty when `deadline` passes first) or a shutdown (ShutDown once empty).
  // ValueError after close().
  void get(std::string& out, const Deadline& deadline);
  // As get(), and calls `claim(item)` while this process holds the queue's lock and before the
  // item leaves the queue: if the process dies at any point up to the end of the claim, the item
  // stays queued; once the claim has returned, nothing can take the item from this process
  // without the claim's record (the Pool's workers note the chunk they take this way). `claim`
  // must not block or touch the queue.
  void get(std::string& out, const Deadline& deadline,
           const std::function<void(std::string_view item)>& claim);
  // As get(), but hands the item's bytes to `sink` where they lie, while this process holds the
  // queue's lock, instead of copying them out (so `sink` must be quick and must not touch the
  // queue; the view is valid during the call only). The item is taken even when `sink` throws,
  // and the exception then comes out of get_view; `claim` (if not null) as above.
  void get_view(const Deadline& deadline, ItemSink sink,
                const std::function<void(std::string_view item)>* claim = nullptr);
  // As get_view() (without a claim), then, in the same hold of the lock, up to `more` further
  // items of at most `small` bytes each that lie in the ring, each to `sink` in turn: a consumer
  // that drains a busy queue takes the lock once for several items. It stops early at an item
  // that is larger, still being written or stored out of line (the next get takes that one).
  // Returns how many items it took (at least one).
  std::size_t get_views(const Deadline& deadline, ItemSink sink, std::size_t more,
                        std::size_t small);

  [[nodiscard]] std::size_t qsize() const;
  // The item count as of the last commit, read without the lock (one load of a line that every
  // put and get writes anyway): a hint for a waiter that spins, possibly stale by the time it is
  // used. Never off for longer than that, even after a process died holding the lock.
  [[nodiscard]] std::size_t approx_qsize() const noexcept;
  [[nodiscard]] std::size_t maxsize() const noexcept;
  [[nodiscard]] bool full() const;
  [[nodiscard]] bool is_shutdown() const noexcept;

  // JoinableQueue: every put counts one unfinished task; task_done() ends one (ValueError when
  // none is left); join() waits until none is left (or the deadline: false).
  void task_done();
  [[nodiscard]] bool join(const Deadline& deadline);

  // Python 3.13: puts raise ShutDown from now on, gets once the queue is empty; `immediate`
  // discards the items (counted as done) so that gets raise at once. Wakes every waiter.
  void shutdown(bool immediate);

  // Marks this process's handles closed: put/get raise ValueError from now on.
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept;
  // Whether a put was made through this process's handles (Python's started feeder thread).
  [[nodiscard]] bool used() const noexcept;

  [[nodiscard]] const std::string& name() const noexcept;

 private:
  struct Impl;
  explicit ByteQueue(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::size_t take_views(const Deadline& deadline, ItemSink sink,
                         const std::function<void(std::string_view item)>* claim, std::size_t more,
                         std::size_t small);
  std::shared_ptr<Impl> impl_;
};

}  // namespace detail
}  // namespace mproc
