// mproc/shared_memory.h
//
// `SharedMemory` is a block of named POSIX shared memory (/dev/shm/<name>) mapped into this
// process, like Python's `multiprocessing.shared_memory.SharedMemory`: one process creates it,
// others attach to it by name and see the same bytes. `ShareableList` is a fixed-length list of
// int64, double, bool, str, bytes and None items stored in one such block, like Python's
// `ShareableList` (and laid out byte for byte the same way, so a Python process can attach to a
// list made here, and the other way round).
//
//   mproc::SharedMemory shm({.create = true, .size = 4096});
//   std::string name = shm.name();                     // pass it on
//   mproc::SharedMemory same(name);                    // in another process: attach
//   same.buf()[0] = std::byte{42};
//
//   mproc::ShareableList sl{"howdy", mproc::ShareableList::Bytes{"HoWdY"}, -273.154, 100,
//                           nullptr, true, 42};
//   auto other = mproc::ShareableList::attach(sl.shm().name());
//   other.set(3, 7);                                   // sl.get(3) is now 7
//
// Names: as in Python, `name()` carries no leading '/', and a name given with one is the same
// name. A name must be non-empty, without '\0' and without any other '/' (ValueError).
//
// Ownership (where mproc differs from Python on purpose): Python leaves the name in /dev/shm until
// someone calls `unlink()`, and its resource tracker unlinks it when *any* process that touched
// it exits, the creator or not (gh-82300). Here only the creator owns the name: with
// `track = true` (the default) the creator's handle unlinks it when it is destroyed, and the
// resource tracker unlinks it if the creator dies first (even by SIGKILL); attaching never
// unlinks. With `track = false` the name outlives its creator until some process calls
// `unlink()`. A child forked from the creator shares the mapping, not the ownership.
//
// Thread safety: a const handle may be used from several threads; the bytes are shared with other
// processes and need their own synchronization (ShareableList has none, like Python's).
// Fork safety: the mapping is inherited by children. Lifetime: a handle is move-only; `close()` or
// the destructor unmaps it (after which `buf()` is empty). Attached mappings stay valid after the
// name is unlinked.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mproc {

// Python's keyword arguments of `SharedMemory(name=None, create=False, size=0)`, plus `track`.
struct SharedMemoryOptions {
  // nullopt with `create`: a fresh unique name (mproc-<pid>-shm<n>, or psm_<hex> untracked).
  std::optional<std::string> name{};
  bool create = false;
  // Bytes to create (above 0 when creating); ignored when attaching, which maps the whole block.
  std::int64_t size = 0;
  // The creator unlinks the name at destruction and after a crash (see the file comment).
  bool track = true;
  // With `create` and a `name`: attach when the name exists instead of throwing FileExistsError
  // (Python's subclass with `_flags = O_CREAT | O_RDWR`). Only a block made here is owned.
  bool exist_ok = false;
};

class SharedMemory {
 public:
  // An empty handle (closed, no name); something to assign or deserialize into.
  SharedMemory() = default;
  // Python `SharedMemory(name, create, size)`. Throws ValueError (bad name or size, no name
  // without `create`), FileExistsError (`create` with a name that exists), FileNotFoundError
  // (attaching to a name that does not), std::system_error for other OS failures.
  explicit SharedMemory(const SharedMemoryOptions& options);
  // Attaches to the existing block `name`: Python `SharedMemory(name)`.
  explicit SharedMemory(std::string_view name);

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  // The mapped bytes (at least `size()` of them); empty once closed.
  [[nodiscard]] std::span<std::byte> buf() const noexcept {
    return {static_cast<std::byte*>(data_), data_ != nullptr ? mapped_ : 0};
  }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool closed() const noexcept { return data_ == nullptr; }
  // True in the process that created the block with `track = true`, until it unlinks it.
  [[nodiscard]] bool owns_name() const noexcept;
  // Python's repr: SharedMemory('name', size=N).
  [[nodiscard]] std::string repr() const;

  // Unmaps this handle; the block and its name stay. Idempotent.
  void close() noexcept;
  // Removes the name now; every mapping stays valid. Throws FileNotFoundError when the name is
  // already gone (a second unlink, as in Python).
  void unlink();
  // Removes the block `name` without attaching (Python's `_posixshmem.shm_unlink`). Throws
  // ValueError for a bad name, FileNotFoundError when it does not exist.
  static void unlink_name(std::string_view name);

  // Serialization (Boost.Serialization or any archive with `is_loading`) sends only the name;
  // loading attaches to the same block, so writes are seen both ways. Loading a block that was
  // unlinked throws FileNotFoundError.
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    std::string name = name_;
    ar& name;
    if constexpr (Archive::is_loading::value) *this = SharedMemory(std::string_view(name));
  }

 private:
  void reset() noexcept;

  std::string name_;
  void* data_ = nullptr;
  std::size_t size_ = 0;    // the block's size (st_size)
  std::size_t mapped_ = 0;  // bytes mapped (= size_)
  pid_t owner_ = 0;         // the creating process while it owns the name (track = true)
};

// Python's keyword arguments of `ShareableList(sequence, name=None)`, plus `track`.
struct ShareableListOptions {
  std::optional<std::string> name{};  // nullopt: a fresh unique name
  bool track = true;                  // see SharedMemoryOptions::track
};

class ShareableList {
 public:
  // Python `bytes` (a str is `std::string`): raw bytes, kept apart from text as Python does.
  struct Bytes {
    std::string value;
    friend bool operator==(const Bytes&, const Bytes&) = default;
  };
  // One item: None (`nullptr`), int, float, bool, str, bytes. Two items are equal when they hold
  // the same alternative and value (unlike Python, 1 != 1.0 != true here).
  using Item = std::variant<std::nullptr_t, std::int64_t, double, bool, std::string, Bytes>;

  using Options = ShareableListOptions;

  // Writes through `list[i] = value`, reads through conversion to Item.
  class Reference {
   public:
    Reference& operator=(const Item& value) {
      list_->set(index_, value);
      return *this;
    }
    operator Item() const { return list_->get(index_); }  // NOLINT: a proxy converts implicitly
    friend bool operator==(const Reference& ref, const Item& value) {
      return ref.list_->get(ref.index_) == value;
    }

   private:
    friend class ShareableList;
    Reference(ShareableList* list, std::ptrdiff_t index) : list_(list), index_(index) {}
    ShareableList* list_;
    std::ptrdiff_t index_;
  };

  // An empty handle, attached to nothing (an empty list is `ShareableList(std::vector<Item>{})`).
  ShareableList() = default;
  // Creates a block holding `items`: Python `ShareableList(sequence, name=...)`. A str or bytes
  // item gets a slot of its UTF-8 length rounded up to the next multiple of 8 (Python counts
  // characters; bytes are what has to fit). Throws what SharedMemory's constructor throws.
  explicit ShareableList(const std::vector<Item>& items, const Options& options = {});
  ShareableList(std::initializer_list<Item> items, const Options& options = {})
      : ShareableList(std::vector<Item>(items), options) {}
  // An independent copy of `other` in a new block: Python `ShareableList(sl, name=...)`.
  ShareableList(const ShareableList& other, const Options& options)
      : ShareableList(other.to_vector(), options) {}
  // Attaches to an existing list: Python `ShareableList(name=...)`. Throws FileNotFoundError, or
  // ValueError when the block does not hold a ShareableList layout.
  [[nodiscard]] static ShareableList attach(std::string_view name);

  ShareableList(ShareableList&&) noexcept = default;
  ShareableList& operator=(ShareableList&&) noexcept = default;

  [[nodiscard]] std::size_t size() const;
  // Negative positions count from the end; anything outside throws IndexError.
  [[nodiscard]] Item get(std::ptrdiff_t position) const;
  // Throws IndexError, or ValueError "bytes/str item exceeds available storage" (the old value
  // stays). A str or bytes keeps its slot's width; other types take 8 bytes of it.
  void set(std::ptrdiff_t position, const Item& value);
  [[nodiscard]] Item operator[](std::ptrdiff_t position) const { return get(position); }
  [[nodiscard]] Reference operator[](std::ptrdiff_t position) { return {this, position}; }

  [[nodiscard]] std::size_t count(const Item& value) const;
  // The first position holding `value`; throws ValueError when there is none.
  [[nodiscard]] std::size_t index(const Item& value) const;
  // Python's struct packing format of all items, e.g. "8s8sdqxxxxxx?xxxxxxxx?q".
  [[nodiscard]] std::string format() const;
  [[nodiscard]] std::vector<Item> to_vector() const;
  // Python's repr: ShareableList(['howdy', b'HoWdY', 100, None, True], name='...').
  [[nodiscard]] std::string repr() const;
  [[nodiscard]] const SharedMemory& shm() const noexcept { return shm_; }
  // Python's repr of one item: 'text', b'bytes', 1, -273.154, 2.0, None, True.
  [[nodiscard]] static std::string item_repr(const Item& item);
  [[nodiscard]] SharedMemory& shm() noexcept { return shm_; }

  // Sends only the name; loading attaches to the same list (FileNotFoundError once unlinked).
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    std::string name = shm_.name();
    ar& name;
    if constexpr (Archive::is_loading::value) *this = attach(name);
  }

 private:
  explicit ShareableList(SharedMemory shm);
  [[nodiscard]] std::size_t checked_position(std::ptrdiff_t position) const;
  [[nodiscard]] std::byte* bytes() const;
  [[nodiscard]] std::string packing_format(std::size_t position) const;

  SharedMemory shm_;
  std::vector<std::int64_t> offsets_;  // N + 1 slot offsets into the data area (Python's layout)
};

}  // namespace mproc
