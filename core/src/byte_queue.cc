#include "mproc/detail/byte_queue.h"

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cstring>
#include <exception>
#include <iterator>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "mproc/errors.h"
#include "mproc/shm.h"

#include "futex.h"
#include "os_error.h"
#include "pid_mutex.h"
#include "resource_tracker.h"

namespace mproc::detail {
namespace {

constexpr std::uint64_t kMagic = 0x6d70726f63517565;  // "mprocQue"
constexpr std::uint64_t kOutOfLine = std::uint64_t{1} << 63;
// A ring record that only skips the bytes up to the ring's end, so that the record after it
// starts at the beginning instead of wrapping: a get then reads that item in place.
constexpr std::uint64_t kPadding = std::uint64_t{1} << 62;
// A ring record whose payload its producer is still copying, outside the queue's lock (see
// Writer); the writer slot the producer holds meanwhile is in the bits at kWriterShift.
constexpr std::uint64_t kPending = std::uint64_t{1} << 61;
constexpr int kWriterShift = 56;
constexpr std::uint64_t kLengthMask = (std::uint64_t{1} << kWriterShift) - 1;
// Items from this size on are copied into the ring outside the lock: a consumer copying one
// item out then overlaps with its producer copying the next one in. Below it, the copy is
// shorter than what the hand-over costs.
constexpr std::uint64_t kCopyOutsideLock = std::uint64_t{64} << 10;
constexpr std::uint64_t kEndOfChunk = ~std::uint64_t{0};
constexpr std::uint64_t kRecordHeader = 8;
constexpr std::size_t kRingOffset = 4096;
constexpr std::size_t kMinCapacity = 4096;
constexpr std::uint64_t kChunkSize = std::uint64_t{1} << 20;

// Where items go:
//  - the ring: records (8-byte length, payload padded to 8), or, for an item larger than the
//    ring's free bytes, a record naming an out-of-line "parcel" segment that holds the item; a
//    record that would wrap around the ring's end is preceded by a padding record when the ring
//    has room for both (items are then contiguous, and read in place);
//  - when the ring has no room left even for such a reference, the overflow: a FIFO of chunk
//    segments (named <queue>o<seq>) holding records like the ring's, each chunk ended by
//    kEndOfChunk once a later chunk exists. While the overflow holds anything, every put goes
//    there, so the order stays FIFO; gets drain the ring first.
//
// The committed state. It changes only under the mutex, and only by writing the spare copy and
// then moving `Header::current` on (one store): a process killed at any point leaves either the
// old state or the new one, never a mix, so the next locker (kOwnerDied) has nothing to repair.
// Bytes are always copied before the commit that makes them part of the queue (put) or after
// nothing was committed yet (get).
//
// Kept as two parts in shared memory, so that a put or get of the ring (the fast path) writes
// one cache line of state and the mutex's line, nothing else: with a producer and a consumer on
// two cores, every line both write crosses between them on every item.
struct RingState {         // what every put and get changes
  std::uint64_t head = 0;  // ring byte positions, only ever growing (masked into the ring)
  std::uint64_t tail = 0;
  std::uint64_t ring_items = 0;
  std::uint64_t unfinished = 0;  // puts minus task_done()s (JoinableQueue)
};
struct OverflowState {           // changes only while items go out of line
  std::uint64_t chunk_head = 0;  // overflow chunks [chunk_head, chunk_next) exist
  std::uint64_t chunk_next = 0;
  std::uint64_t chunk_read = 0;  // read offset in chunk_head
  std::uint64_t chunk_used = 0;  // bytes written in the last chunk (chunk_next - 1)
  std::uint64_t chunk_items = 0;
  bool operator==(const OverflowState&) const = default;
};
static_assert(sizeof(RingState) == 32);

// Producers that copy a large item into the ring outside the lock. Each holds one of these
// mutexes from before its reservation is committed until the item is published (its record's
// word loses kPending); a consumer that finds such a record at the head waits for that mutex.
// Holding it then proves the record's producer gone if the record is still pending: a
// producer publishes before it lets go, and a dead one is found by the mutex (kOwnerDied).
// A producer only try-locks one, under the queue's lock, and copies under the lock when all are
// taken: it never waits while holding one, so a consumer's wait ends with the copy.
constexpr int kWriters = 4;
static_assert(std::has_single_bit(unsigned{kWriters}) && kWriterShift + kWriters <= 61);
struct alignas(64) Writer {
  PidMutex mutex;
};

struct State : RingState, OverflowState {
  [[nodiscard]] std::uint64_t items() const noexcept { return ring_items + chunk_items; }
  [[nodiscard]] bool overflowing() const noexcept { return chunk_next != chunk_head; }
};

// A futex word for sleepers waiting for some kind of change (an item, room, all tasks done). A
// waiter about to sleep registers under the mutex (`registered`), and the next commit that its
// kind of waiter may wait for moves the word on by 2 (once: every sleeper registered before it
// slept on the old value). Its low bit says "someone sleeps on this value": a sleeper sets it
// before sleeping, a bump clears it, and only a bump that cleared it makes the wake-up call.
// Waiters spin on `Header::current` before they register, never on this word, so a consumer that
// keeps up costs its producer no write here. Every sleeper on the old value is woken (the ones
// that find nothing sleep again): a sleeper killed in its sleep, or after its wake-up, can never
// leave another sleeper stranded.
struct alignas(64) Waitable {
  FutexWord seq{0};
  // Whether a waiter registered since the last bump; changed under the mutex only.
  std::atomic<std::uint32_t> registered{0};
};

struct Header {
  Header(std::uint64_t capacity_, std::uint64_t maxsize_)
      : capacity(capacity_), maxsize(maxsize_) {}

  // Each written part on a cache line of its own. Above all `current`, which waiters spin on:
  // next to the mutex or the state, every read of a spinning consumer would take that line away
  // from the producer in the middle of its put.
  alignas(64) PidMutex mutex;
  // Commits so far; its low bit picks the live copy of the state.
  alignas(64) std::atomic<std::uint32_t> current{0};
  // The live state's item count, stored by each commit beside `current` (a line that commit
  // writes anyway): what approx_qsize() reads without the lock.
  std::atomic<std::uint64_t> items_now{0};
  alignas(64) RingState ring[2];
  alignas(64) OverflowState overflow[2];
  // Read by every operation, written once.
  alignas(64) std::atomic<std::uint32_t> shut_down{0};
  // Set before the first item goes out of line (a parcel, or an overflow chunk made from one):
  // until then the creator's last handle has no such segment to look for in /dev/shm.
  std::atomic<std::uint32_t> spilled{0};
  std::atomic<std::uint64_t> magic{0};
  const std::uint64_t capacity;
  const std::uint64_t maxsize;
  Waitable items;  // an item arrived, or shutdown
  Waitable space;  // an item left, or shutdown
  Waitable done;   // unfinished reached zero, or shutdown
  Writer writers[kWriters];
};
static_assert(sizeof(Header) <= kRingOffset);

constexpr std::uint64_t record_size(std::uint64_t payload) noexcept {
  return kRecordHeader + ((payload + 7) & ~std::uint64_t{7});
}

// A record word's payload length (or an out-of-line name's), without its flags.
constexpr std::uint64_t record_length(std::uint64_t word) noexcept { return word & kLengthMask; }
constexpr int writer_of(std::uint64_t word) noexcept {
  return static_cast<int>((word >> kWriterShift) & (kWriters - 1));
}

std::string shm_path(const std::string& name) { return "/dev/shm/" + name; }

// An item as the two pieces it is put from (an encoding's header and its payload), so that its
// bytes are copied once, straight to where the queue keeps them.
struct Parts {
  std::string_view a, b;
  [[nodiscard]] std::uint64_t size() const noexcept { return a.size() + b.size(); }
};

// Writes a record (length, then the bytes) at `dst`.
void write_record(char* dst, const Parts& item) noexcept {
  std::uint64_t size = item.size();
  std::memcpy(dst, &size, sizeof size);
  if (!item.a.empty()) std::memcpy(dst + kRecordHeader, item.a.data(), item.a.size());
  if (!item.b.empty())
    std::memcpy(dst + kRecordHeader + item.a.size(), item.b.data(), item.b.size());
}

// Removes an out-of-line item's segment that nobody will take any more.
void discard_handoff(const std::string& name) noexcept {
  ::shm_unlink(name.c_str());
  untrack_segment(name, segment_owner(name));
}

// Holds the queue's mutex, spinning first (spin_to_lock).
class Locked {
 public:
  explicit Locked(Header& header) : header_(header) { lock(); }
  ~Locked() {
    if (held_) header_.mutex.unlock_held();
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

  void lock() {
    // kOwnerDied needs no repair of the state (see State), only of its count for spinners: the
    // dead holder may have stored a count and died before the commit that went with it.
    if (!spin_to_lock([&] {
          return header_.mutex.looks_free() && header_.mutex.try_lock() != LockResult::kTimedOut;
        }) &&
        header_.mutex.lock() == LockResult::kOwnerDied)
      header_.items_now.store(state().items(), std::memory_order_relaxed);
    held_ = true;
  }
  void unlock() {
    held_ = false;
    header_.mutex.unlock_held();
  }
  [[nodiscard]] State state() const noexcept {
    const std::uint32_t live = header_.current.load(std::memory_order_relaxed) & 1u;
    State s;
    static_cast<RingState&>(s) = header_.ring[live];
    static_cast<OverflowState&>(s) = header_.overflow[live];
    return s;
  }
  // Makes `next` the state; waiters spinning on `current` see it move on.
  void commit(const State& next) noexcept {
    const std::uint32_t now = header_.current.load(std::memory_order_relaxed);
    const std::uint32_t spare = (now + 1) & 1u;
    header_.ring[spare] = next;
    // The spare overflow copy usually holds the same already (it changes rarely): reading it
    // leaves its cache line shared, where writing it would move the line to this core.
    if (!(header_.overflow[spare] == static_cast<const OverflowState&>(next)))
      header_.overflow[spare] = next;
    header_.items_now.store(next.items(), std::memory_order_relaxed);
    header_.current.store(now + 1, std::memory_order_release);
  }

 private:
  Header& header_;
  bool held_ = false;
};

// Called under the lock after a commit that the sleepers of `w` may wait for. Returns whether
// anyone sleeps on it: then the caller calls wake() once it has unlocked.
[[nodiscard]] bool take_sleepers(Waitable& w) noexcept {
  if (w.registered.load(std::memory_order_relaxed) == 0) return false;
  w.registered.store(0, std::memory_order_relaxed);
  std::uint32_t old = w.seq.load(std::memory_order_relaxed);
  while (!w.seq.compare_exchange_weak(old, (old & ~1u) + 2, std::memory_order_seq_cst)) {
  }
  return (old & 1u) != 0;
}

void wake(Waitable& w) noexcept { futex_wake(w.seq, INT_MAX); }

// How long a waiter spins before it sleeps: about 4 us (a pause is ~20 ns on current x86). A
// wake-up from a futex sleep costs tens of microseconds, but on a machine with more runnable
// processes than cores a longer spin only burns the time slice the peer needs (measured: 20 us
// spins lowered the queue_64B_msgs row on a loaded 2-core machine).
constexpr int kWaitSpins = 200;

// Releases the lock, waits until a commit happens after the one seen now (spinning on
// `current`, then sleeping on `w`) or the deadline passes, and takes the lock again. Callers
// re-check their condition.
//
// `batch`: while spinning, wait for that many commits rather than one (still returning after
// the spin if there was at least one). A producer blocked on a full queue uses it: taking each
// slot as soon as it frees makes producer and consumer fight for the lock on every item, while
// letting the consumer free a few first has each side run alone for a while.
void wait_for_change(Locked& lock, Header& h, Waitable& w, const Deadline& deadline,
                     std::uint32_t batch = 1) {
  const std::uint32_t seen_commit = h.current.load(std::memory_order_relaxed);
  auto commits = [&] { return h.current.load(std::memory_order_acquire) - seen_commit; };
  lock.unlock();
  const bool moved = spin_until([&] { return commits() >= batch; }, kWaitSpins) || commits() != 0;
  lock.lock();
  // Only a waiter about to sleep registers, under the lock and only if nothing was committed
  // since its caller's check: a spinner writes no shared word at all.
  if (moved || commits() != 0) return;
  const std::uint32_t seen = w.seq.load(std::memory_order_relaxed) & ~1u;
  w.registered.store(1, std::memory_order_relaxed);
  lock.unlock();
  std::uint32_t expected = seen;
  // Set the bit (or find it set by another sleeper); fails only if the value moved on.
  if (w.seq.compare_exchange_strong(expected, seen | 1u, std::memory_order_seq_cst) ||
      expected == (seen | 1u)) {
    try {
      (void)futex_wait(w.seq, seen | 1u, deadline);
    } catch (...) {
      lock.lock();
      throw;
    }
  }
  lock.lock();
}

// A segment written by this process outside the lock, holding one record at offset 0 (and room
// for more if it is to start a new overflow chunk), not yet part of the queue; removed unless
// released.
struct Parcel {
  SharedSegment segment;
  std::string name;
  bool armed = true;

  Parcel(std::string name_, const Parts& item, std::uint64_t min_size) : name(std::move(name_)) {
    // + 8: a chunk always has room for its end marker.
    segment = SharedSegment::create_for_owner(
        name, std::max(min_size, record_size(item.size()) + kRecordHeader));
    write_record(static_cast<char*>(segment.data()), item);
  }
  ~Parcel() {
    if (armed) discard_handoff(name);
  }
  Parcel(const Parcel&) = delete;
  Parcel& operator=(const Parcel&) = delete;
};

// The bytes of the record at `offset` of `segment` (valid while it is mapped) and the record's
// size; nothing at the end of a chunk.
std::optional<std::pair<std::string_view, std::uint64_t>> record_at(const SharedSegment& segment,
                                                                    std::uint64_t offset) {
  const auto* base = static_cast<const char*>(segment.data());
  std::uint64_t word = kEndOfChunk;
  if (offset + kRecordHeader <= segment.size()) std::memcpy(&word, base + offset, sizeof word);
  if (word == kEndOfChunk) return std::nullopt;
  if (word > segment.size() - offset - kRecordHeader)
    throw Error("an item of the queue is corrupt: segment " + segment.name());
  return std::pair{std::string_view(base + offset + kRecordHeader, word), record_size(word)};
}

SharedSegment attach_item_segment(const std::string& name) {
  try {
    return SharedSegment::attach(name);
  } catch (const std::system_error& e) {
    throw Error("items of the queue were lost: segment " + name +
                " is gone (the process that created the queue dropped it)");
  }
}

// A writer slot taken by a consumer waiting for a pending record (PidMutex::lock: blocks until
// the producer lets it go, or takes it over from a dead one).
class HeldWriter {
 public:
  HeldWriter(PidMutex& mutex, int index, const Deadline& deadline)
      : mutex_(mutex), index_(index), held_(mutex.lock(deadline) != LockResult::kTimedOut) {}
  ~HeldWriter() {
    if (held_) mutex_.unlock_held();
  }
  HeldWriter(const HeldWriter&) = delete;
  HeldWriter& operator=(const HeldWriter&) = delete;

  [[nodiscard]] bool holds() const noexcept { return held_; }
  [[nodiscard]] int index() const noexcept { return index_; }

 private:
  PidMutex& mutex_;
  int index_;
  bool held_;
};

}  // namespace

struct ByteQueue::Impl {
  SharedSegment segment;
  Header* header = nullptr;
  char* ring = nullptr;
  std::uint64_t mask = 0;
  pid_t creator = 0;
  std::atomic<bool> closed{false};
  std::atomic<bool> used{false};
  std::atomic<std::uint64_t> next_parcel{0};
  // This process's mappings of overflow chunks by sequence number; used under the queue's mutex
  // only (which also serializes this process's threads). Keeps the first and last chunk.
  std::map<std::uint64_t, SharedSegment> chunks;

  explicit Impl(SharedSegment seg) : segment(std::move(seg)) {
    header = static_cast<Header*>(segment.data());
    ring = static_cast<char*>(segment.data()) + kRingOffset;
    mask = header->capacity - 1;
    creator = segment_owner(segment.name());
  }

  ~Impl() {
    // The creator's last handle: items still out of line go with the queue's name (a process
    // still mapping the ring finds them gone and gets an Error).
    if (!segment.owned() || header->spilled.load(std::memory_order_seq_cst) == 0) return;
    const std::string prefix_x = segment.name() + "x", prefix_o = segment.name() + "o";
    std::vector<std::string> names;
    if (DIR* dir = ::opendir("/dev/shm")) {
      while (dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name.starts_with(prefix_x) || name.starts_with(prefix_o)) names.emplace_back(name);
      }
      ::closedir(dir);
    }
    for (const auto& name : names) discard_handoff(name);
  }

  [[nodiscard]] std::uint64_t capacity() const noexcept { return mask + 1; }

  void ring_write(std::uint64_t pos, const void* src, std::size_t n) noexcept {
    if (n == 0) return;
    std::size_t offset = pos & mask;
    std::size_t first = std::min<std::size_t>(n, capacity() - offset);
    std::memcpy(ring + offset, src, first);
    if (n > first) std::memcpy(ring, static_cast<const char*>(src) + first, n - first);
  }
  void ring_read(std::uint64_t pos, void* dst, std::size_t n) const noexcept {
    std::size_t offset = pos & mask;
    std::size_t first = std::min<std::size_t>(n, capacity() - offset);
    std::memcpy(dst, ring + offset, first);
    if (n > first) std::memcpy(static_cast<char*>(dst) + first, ring, n - first);
  }
  // The `n` bytes at `pos`: in place, or copied into `wrapped` when they wrap around the end.
  [[nodiscard]] std::string_view ring_view(std::uint64_t pos, std::size_t n,
                                           std::string& wrapped) const {
    std::size_t offset = pos & mask;
    if (n <= capacity() - offset) return {ring + offset, n};
    wrapped.resize(n);
    ring_read(pos, wrapped.data(), n);
    return wrapped;
  }
  // Record words are 8-aligned (never wrap), and atomic: a pending record's word is published
  // outside the lock.
  [[nodiscard]] std::atomic_ref<std::uint64_t> word_at(std::uint64_t pos) const noexcept {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(ring + (pos & mask)));
  }
  [[nodiscard]] std::uint64_t read_word(std::uint64_t pos) const noexcept {
    return word_at(pos).load(std::memory_order_acquire);
  }
  void write_word(std::uint64_t pos, std::uint64_t word) noexcept {
    word_at(pos).store(word, std::memory_order_release);
  }

  // The word of the ring's first record in `s`, moving `s.head` past a padding record before it.
  [[nodiscard]] std::uint64_t head_word(State& s) const noexcept {
    std::uint64_t word = read_word(s.head);
    if (word & kPadding) {
      s.head += word & ~kPadding;
      word = read_word(s.head);
    }
    return word;
  }
  // Takes the ring's head record off `s`; `next` is where the record after it starts.
  void pop_ring_record(State& s, std::uint64_t next) const noexcept {
    s.head = next;
    // An empty ring starts over at its beginning: a producer and consumer that keep pace then
    // work on the same few cache-hot pages instead of sweeping the whole ring.
    if (--s.ring_items == 0) s.head = s.tail = (s.tail + mask) & ~mask;
  }

  // Under the lock: a free writer slot, now held by this process, or -1.
  [[nodiscard]] int take_writer() noexcept {
    for (int i = 0; i < kWriters; ++i) {
      PidMutex& m = header->writers[i].mutex;
      if (m.looks_free() && m.try_lock() == LockResult::kAcquired) return i;
    }
    return -1;
  }
  // Copies a reserved item's bytes in, outside the lock, then publishes its record and lets its
  // writer slot go, waking a consumer that waits for it.
  void publish(std::uint64_t at, const Parts& item, int writer) noexcept {
    ring_write(at + kRecordHeader, item.a.data(), item.a.size());
    ring_write(at + kRecordHeader + item.a.size(), item.b.data(), item.b.size());
    write_word(at, item.size());
    header->writers[writer].mutex.unlock_held();  // held since take_writer
  }

  // Outside the lock: spins while the record at `at` still holds `pending`, for about as long as
  // its copy should take (at 4 GB/s, between 5 and 200 us). Returns whether it changed (published,
  // or taken meanwhile); a caller that gets false waits for the record's writer slot instead.
  [[nodiscard]] bool await_published(std::uint64_t at, std::uint64_t pending) const noexcept {
    const auto budget = std::clamp<std::chrono::nanoseconds>(
        std::chrono::nanoseconds(record_length(pending) / 4), std::chrono::microseconds(5),
        std::chrono::microseconds(200));
    const auto until = Clock::now() + budget;
    for (;;) {
      if (spin_until([&] { return word_at(at).load(std::memory_order_acquire) != pending; }, 64))
        return true;
      if (Clock::now() >= until) return false;
    }
  }

  [[nodiscard]] std::string parcel_name() {
    return segment.name() + "x" + std::to_string(::getpid()) + "-" +
           std::to_string(next_parcel.fetch_add(1, std::memory_order_relaxed));
  }
  [[nodiscard]] std::string chunk_name(std::uint64_t seq) const {
    return segment.name() + "o" + std::to_string(seq);
  }

  // Under the lock.
  SharedSegment& chunk(std::uint64_t seq) {
    auto it = chunks.find(seq);
    if (it == chunks.end()) it = chunks.emplace(seq, attach_item_segment(chunk_name(seq))).first;
    return it->second;
  }
  // Under the lock: forgets the mappings of chunks this process will not need soon.
  void trim_chunks(const State& s) {
    for (auto it = chunks.begin(); it != chunks.end();) {
      bool keep = s.overflowing() && (it->first == s.chunk_head || it->first == s.chunk_next - 1);
      it = keep ? std::next(it) : chunks.erase(it);
    }
  }

  // Names of the segments holding items of `s`.
  [[nodiscard]] std::vector<std::string> segments_in(const State& s) const {
    std::vector<std::string> names;
    for (std::uint64_t pos = s.head; pos != s.tail;) {
      std::uint64_t word = read_word(pos);
      if (word & kPadding) {
        pos += word & ~kPadding;
        continue;
      }
      std::uint64_t len = record_length(word);
      if (word & kOutOfLine) {
        std::string name(len, '\0');
        ring_read(pos + kRecordHeader, name.data(), len);
        names.push_back(std::move(name));
      }
      pos += record_size(len);
    }
    for (std::uint64_t seq = s.chunk_head; seq != s.chunk_next; ++seq)
      names.push_back(chunk_name(seq));
    return names;
  }
};

namespace {

std::uint64_t ring_capacity(const QueueOptions& options) {
  return std::bit_ceil(std::max<std::uint64_t>(options.capacity, kMinCapacity));
}

// Lays a fresh queue out in `segment` (zero-filled, kRingOffset + capacity bytes).
SharedSegment lay_out(SharedSegment segment, const QueueOptions& options) {
  auto* header = new (segment.data()) Header(ring_capacity(options), options.maxsize);
  header->magic.store(kMagic, std::memory_order_release);
  return segment;
}

}  // namespace

ByteQueue::ByteQueue(const QueueOptions& options)
    : impl_(std::make_shared<Impl>(
          lay_out(SharedSegment::create(kRingOffset + ring_capacity(options)), options))) {}

ByteQueue ByteQueue::create_unnamed(const QueueOptions& options) {
  return ByteQueue(std::make_shared<Impl>(
      lay_out(SharedSegment::create_unnamed(kRingOffset + ring_capacity(options)), options)));
}

ByteQueue ByteQueue::attach(std::string_view name) {
  auto segment = SharedSegment::attach(name);
  const auto* header = static_cast<const Header*>(segment.data());
  if (segment.size() < kRingOffset || header->magic.load(std::memory_order_acquire) != kMagic ||
      segment.size() < kRingOffset + header->capacity)
    throw ValueError("shared segment " + std::string(name) + " is not a queue");
  return ByteQueue(std::make_shared<Impl>(std::move(segment)));
}

void ByteQueue::put(std::string_view bytes, const Deadline& deadline) {
  put(std::string_view(), bytes, deadline);
}

void ByteQueue::put(std::string_view head, std::string_view body, const Deadline& deadline) {
  Impl& q = *impl_;
  if (q.closed.load(std::memory_order_relaxed)) throw ValueError("Queue is closed");
  if (!q.used.load(std::memory_order_relaxed)) q.used.store(true, std::memory_order_relaxed);
  Header& h = *q.header;
  const Parts item{head, body};
  const std::uint64_t need = record_size(item.size());
  std::optional<Parcel> parcel;
  // How long this put may wait for the ring to drain before taking the out-of-line way (see
  // below); set at the first time the ring is short of room.
  std::optional<Deadline> ring_wait;
  auto wait_for_ring = [&](const State& s) {
    // Only for an item the ring can hold at all, while items in the ring show a consumer may
    // be about to make room, and never past the caller's deadline (put_nowait does not wait).
    if (s.overflowing() || parcel || need > q.capacity() / 2 || s.ring_items == 0) return false;
    if (!ring_wait) {
      // About what the out-of-line way would cost: a fresh segment, its page faults and the
      // resource tracker's messages, roughly 50 us plus 0.5 ns a byte.
      const auto budget = std::chrono::microseconds(50) + std::chrono::nanoseconds(need / 2);
      ring_wait = Deadline::at(std::min(deadline.when(), Clock::now() + budget));
    }
    return !ring_wait->expired();
  };
  // Gets to wait for (while spinning) when the queue is full: an eighth of it, at most 64.
  const auto full_batch =
      static_cast<std::uint32_t>(std::clamp<std::uint64_t>(h.maxsize / 8, 1, 64));
  // A large item's record once reserved in the ring, while this put holds writer `writer`.
  std::uint64_t reserved_at = 0;
  int writer = -1;
  Locked lock(h);
  for (;;) {
    if (h.shut_down.load(std::memory_order_relaxed)) throw ShutDown();
    State s = lock.state();
    if (h.maxsize != 0 && s.items() >= h.maxsize) {
      if (deadline.expired()) throw Full();
      wait_for_change(lock, h, h.space, deadline, full_batch);
      continue;
    }
    const std::uint64_t free = q.capacity() - (s.tail - s.head);
    if (!s.overflowing() && !parcel && need <= free) {
      // The fast path: into the ring, the item's only copy on the way in.
      const std::uint64_t to_end = q.capacity() - (s.tail & q.mask);
      if (need > to_end && to_end + need <= free) {
        q.write_word(s.tail, to_end | kPadding);
        s.tail += to_end;
      }
      if (item.size() >= kCopyOutsideLock && item.size() <= kLengthMask) writer = q.take_writer();
      if (writer >= 0) {
        // Reserved now, copied after the commit (below).
        reserved_at = s.tail;
        q.write_word(s.tail,
                     item.size() | kPending | (static_cast<std::uint64_t>(writer) << kWriterShift));
      } else {
        q.write_word(s.tail, item.size());
        q.ring_write(s.tail + kRecordHeader, item.a.data(), item.a.size());
        q.ring_write(s.tail + kRecordHeader + item.a.size(), item.b.data(), item.b.size());
      }
      s.tail += need;
      ++s.ring_items;
    } else if (!s.overflowing() && parcel && record_size(parcel->name.size()) <= free) {
      // Too large for the ring's free bytes: a reference to the parcel.
      q.write_word(s.tail, parcel->name.size() | kOutOfLine);
      q.ring_write(s.tail + kRecordHeader, parcel->name.data(), parcel->name.size());
      s.tail += record_size(parcel->name.size());
      ++s.ring_items;
      parcel->armed = false;
    } else if (s.overflowing() &&
               s.chunk_used + need + kRecordHeader <= q.chunk(s.chunk_next - 1).size()) {
      // Appended to the last overflow chunk (a parcel made meanwhile is not needed).
      auto* base = static_cast<char*>(q.chunk(s.chunk_next - 1).data()) + s.chunk_used;
      write_record(base, item);
      s.chunk_used += need;
      ++s.chunk_items;
    } else if (parcel) {
      // The parcel becomes the last overflow chunk. A rename is atomic and replaces what a
      // producer killed before its commit left under that name.
      if (s.overflowing()) {
        auto* end = static_cast<char*>(q.chunk(s.chunk_next - 1).data()) + s.chunk_used;
        std::memcpy(end, &kEndOfChunk, sizeof kEndOfChunk);
      }
      std::string target = q.chunk_name(s.chunk_next);
      if (::rename(shm_path(parcel->name).c_str(), shm_path(target).c_str()) != 0)
        throw_errno("move an item to the overflow of queue " + q.segment.name());
      track_segment(target, q.creator);
      untrack_segment(parcel->name, q.creator);
      parcel->armed = false;
      if (!s.overflowing()) s.chunk_read = 0;
      q.chunks.insert_or_assign(s.chunk_next, std::move(parcel->segment));
      ++s.chunk_next;
      s.chunk_used = need;
      ++s.chunk_items;
      q.trim_chunks(s);
    } else if (wait_for_ring(s)) {
      // A large item while a consumer drains the ring: a get usually makes room sooner than a
      // segment of its own could be made (and the consumer then reads it from warm pages).
      wait_for_change(lock, h, h.space, *ring_wait);
      continue;
    } else {
      // Write the item into a segment of its own, outside the lock, then try again. Sized for a
      // chunk unless a reference in the ring is likely to do.
      const bool reference_fits = !s.overflowing() && record_size(64) <= free;
      lock.unlock();
      h.spilled.store(1, std::memory_order_seq_cst);
      parcel.emplace(q.parcel_name(), item, reference_fits ? 0 : kChunkSize);
      lock.lock();
      continue;
    }
    ++s.unfinished;
    lock.commit(s);
    const bool sleepers = take_sleepers(h.items);
    lock.unlock();
    if (sleepers) wake(h.items);
    if (writer >= 0) q.publish(reserved_at, item, writer);
    return;
  }
}

void ByteQueue::get(std::string& out, const Deadline& deadline) {
  get_view(deadline, [&](std::string_view item) { out.assign(item.data(), item.size()); });
}

void ByteQueue::get(std::string& out, const Deadline& deadline,
                    const std::function<void(std::string_view item)>& claim) {
  get_view(
      deadline, [&](std::string_view item) { out.assign(item.data(), item.size()); }, &claim);
}

void ByteQueue::get_view(const Deadline& deadline, ItemSink sink,
                         const std::function<void(std::string_view item)>* claim) {
  (void)take_views(deadline, sink, claim, 0, 0);
}

std::size_t ByteQueue::get_views(const Deadline& deadline, ItemSink sink, std::size_t more,
                                 std::size_t small) {
  return take_views(deadline, sink, nullptr, more, small);
}

std::size_t ByteQueue::take_views(const Deadline& deadline, ItemSink sink,
                                  const std::function<void(std::string_view item)>* claim,
                                  std::size_t more, std::size_t small) {
  Impl& q = *impl_;
  if (q.closed.load(std::memory_order_relaxed)) throw ValueError("Queue is closed");
  Header& h = *q.header;
  // The writer slot of a pending record at the head, held by this get once it waited for it.
  std::optional<HeldWriter> held;
  Locked lock(h);
  for (;;) {
    State s = lock.state();
    if (s.items() != 0) {
      const std::uint64_t word = s.ring_items != 0 ? q.head_word(s) : 0;
      if (word & kPending) {
        const std::uint64_t at = s.head;
        const int writer = writer_of(word);
        if (held && held->index() == writer) {
          // Still pending while this get holds its slot: its producer died before it
          // finished. Its put never returned; the record goes as if it was never made.
          held.reset();
          q.pop_ring_record(s, at + record_size(record_length(word)));
          if (s.unfinished != 0) --s.unfinished;
          lock.commit(s);
          const bool putters = take_sleepers(h.space);
          const bool joiners = s.unfinished == 0 && take_sleepers(h.done);
          lock.unlock();
          if (putters) wake(h.space);
          if (joiners) wake(h.done);
          lock.lock();
          continue;
        }
        held.reset();
        lock.unlock();
        if (!q.await_published(at, word)) {
          held.emplace(h.writers[writer].mutex, writer, deadline);
          if (!held->holds()) throw Empty();
        }
        lock.lock();
        continue;
      }
      held.reset();
      // Read in place first, commit after: a consumer killed while copying takes nothing.
      std::optional<SharedSegment> parcel;
      std::vector<std::string> finished;  // overflow chunks now read to the end
      std::optional<Error> lost;
      std::string wrapped;  // a ring record that wraps around the ring's end, made contiguous
      std::string_view item;
      const bool from_chunks = s.ring_items == 0;
      if (!from_chunks) {
        std::uint64_t len = record_length(word);
        if (word & kOutOfLine) {
          std::string name(len, '\0');
          q.ring_read(s.head + kRecordHeader, name.data(), len);
          try {
            parcel = attach_item_segment(name);
            auto record = record_at(*parcel, 0);
            if (!record) throw Error("empty parcel " + name);
            item = record->first;
          } catch (const Error& e) {
            lost = e;
          }
        } else {
          item = q.ring_view(s.head + kRecordHeader, len, wrapped);
        }
        q.pop_ring_record(s, s.head + record_size(len));
      } else {
        try {
          auto record = record_at(q.chunk(s.chunk_head), s.chunk_read);
          if (!record) {  // on to the next chunk: each holds at least one record
            finished.push_back(q.chunk_name(s.chunk_head));
            ++s.chunk_head;
            s.chunk_read = 0;
            record = record_at(q.chunk(s.chunk_head), 0);
            if (!record) throw Error("empty overflow chunk " + q.chunk_name(s.chunk_head));
          }
          item = record->first;
          s.chunk_read += record->second;
          --s.chunk_items;
        } catch (const Error& e) {
          lost = e;  // the rest of the overflow is unreadable: drop it
          s.chunk_items = 0;
        }
        if (s.chunk_items == 0) {
          // The chunks' mappings stay until the end of this get (`item` may point into one).
          for (auto seq = s.chunk_head; seq != s.chunk_next; ++seq)
            finished.push_back(q.chunk_name(seq));
          s.chunk_head = s.chunk_next;
          s.chunk_read = s.chunk_used = 0;
        }
      }
      if (claim && *claim && !lost) (*claim)(item);
      // The sink's failure (an item that does not decode) still takes the item, as a get whose
      // decoding failed after it returned would.
      std::exception_ptr failed;
      if (!lost) {
        try {
          sink(item);
        } catch (...) {
          failed = std::current_exception();
        }
      }
      std::size_t taken = 1;
      // The batch (get_views): plain records that follow in the ring, read in place as the first.
      for (; !lost && !failed && taken <= more && s.ring_items != 0; ++taken) {
        const std::uint64_t next = q.head_word(s);
        if ((next & (kPending | kOutOfLine)) != 0 || record_length(next) > small) break;
        item = q.ring_view(s.head + kRecordHeader, record_length(next), wrapped);
        q.pop_ring_record(s, s.head + record_size(record_length(next)));
        try {
          sink(item);
        } catch (...) {
          failed = std::current_exception();
        }
      }
      if (from_chunks) q.trim_chunks(s);
      lock.commit(s);
      const bool sleepers = take_sleepers(h.space);
      lock.unlock();
      if (sleepers) wake(h.space);
      if (parcel) parcel->unlink();
      for (const auto& name : finished) discard_handoff(name);
      if (lost) throw *lost;
      if (failed) std::rethrow_exception(failed);
      return taken;
    }
    held.reset();
    if (h.shut_down.load(std::memory_order_relaxed)) throw ShutDown();
    if (deadline.expired()) throw Empty();
    wait_for_change(lock, h, h.items, deadline);
  }
}

std::size_t ByteQueue::qsize() const {
  Locked lock(*impl_->header);
  return lock.state().items();
}

std::size_t ByteQueue::approx_qsize() const noexcept {
  return impl_->header->items_now.load(std::memory_order_seq_cst);
}

std::size_t ByteQueue::maxsize() const noexcept { return impl_->header->maxsize; }

bool ByteQueue::full() const {
  const std::uint64_t max = impl_->header->maxsize;
  return max != 0 && qsize() >= max;
}

bool ByteQueue::is_shutdown() const noexcept {
  return impl_->header->shut_down.load(std::memory_order_acquire) != 0;
}

void ByteQueue::task_done() {
  Header& h = *impl_->header;
  Locked lock(h);
  State s = lock.state();
  if (s.unfinished == 0) throw ValueError("task_done() called too many times");
  --s.unfinished;
  lock.commit(s);
  if (s.unfinished != 0) return;
  const bool sleepers = take_sleepers(h.done);
  lock.unlock();
  if (sleepers) wake(h.done);
}

bool ByteQueue::join(const Deadline& deadline) {
  Header& h = *impl_->header;
  Locked lock(h);
  for (;;) {
    if (lock.state().unfinished == 0) return true;
    if (deadline.expired()) return false;
    wait_for_change(lock, h, h.done, deadline);
  }
}

void ByteQueue::shutdown(bool immediate) {
  Impl& q = *impl_;
  Header& h = *q.header;
  std::vector<std::string> discarded;
  Locked lock(h);
  h.shut_down.store(1, std::memory_order_release);
  State s = lock.state();
  if (immediate && s.items() != 0) {
    discarded = q.segments_in(s);
    // Discarded items count as done, as in Python.
    s.unfinished -= std::min(s.unfinished, s.items());
    s.head = s.tail;
    s.ring_items = 0;
    s.chunk_head = s.chunk_next;
    s.chunk_read = s.chunk_used = s.chunk_items = 0;
    q.trim_chunks(s);
  }
  lock.commit(s);  // even when nothing changed: waiters spinning on `current` see the shutdown
  const bool getters = take_sleepers(h.items), putters = take_sleepers(h.space),
             joiners = take_sleepers(h.done);
  lock.unlock();
  if (getters) wake(h.items);
  if (putters) wake(h.space);
  if (joiners) wake(h.done);
  for (const auto& name : discarded) discard_handoff(name);
}

void ByteQueue::close() noexcept { impl_->closed.store(true, std::memory_order_relaxed); }

bool ByteQueue::closed() const noexcept { return impl_->closed.load(std::memory_order_relaxed); }

bool ByteQueue::used() const noexcept { return impl_->used.load(std::memory_order_relaxed); }

const std::string& ByteQueue::name() const noexcept {
  static const std::string none;  // a blank handle's (what a load reads before it attaches)
  return impl_ ? impl_->segment.name() : none;
}

}  // namespace mproc::detail
