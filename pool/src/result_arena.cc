// The memory of results' states (ResultState: what apply_async hands back). A stream of
// apply_async keeps one state per task alive until its result is taken, and from malloc each is
// fresh memory that the kernel faults in 4 KiB at a time: in a virtual machine with shadow page
// tables a first touch costs ~12 us, so 50,000 states of 192 bytes took 29 ms of faults, against
// 4 ms in 2 MiB pages (measured on the AMD EPYC VM, 2026-12-07). States are allocated here
// instead, in slabs of one block size each: the first slabs of a size are small (64 KiB, plain
// pages, for a program that holds few results), the later ones 2 MiB huge pages. Freed blocks go
// back to their slab and are reused first; a slab whose blocks are all free is unmapped, except a
// size's last one, so a result made and dropped in a loop does not map and unmap every time.
//
// One mutex for everything: an allocation or free holds it for a few pointer moves, at most a
// few million times a second. Fork: a child of a threaded process could inherit it locked, so
// fork takes it first (pthread_atfork).
#include "result_arena.h"

#include <pthread.h>
#include <sys/mman.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "mproc/async_result.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define MPROC_ARENA_ASAN 1
#endif

namespace mproc::detail {
namespace {

constexpr std::size_t kSmallSlab = std::size_t{64} << 10;
// A size's first slabs are small, this many of them: a program with a handful of results never
// touches a 2 MiB page for them.
constexpr std::size_t kSmallSlabsPerSize = 4;
// Before each block: its slab, padded so the block keeps operator new's alignment.
constexpr std::size_t kBlockHeader = 16;
static_assert(kBlockHeader >= sizeof(void*) &&
              kBlockHeader % __STDCPP_DEFAULT_NEW_ALIGNMENT__ == 0);
constexpr std::size_t kClasses = kMaxArenaBlock / kBlockHeader;

struct FreeBlock {
  FreeBlock* next;
};

struct Slab {
  Slab* prev = nullptr;  // in its size's list of slabs with room
  Slab* next = nullptr;
  std::size_t mapped = 0;     // bytes, the header included
  std::size_t block = 0;      // a block's bytes, its header included
  std::size_t used = 0;       // bytes handed out from the start, never reused by bump
  std::size_t live = 0;       // blocks allocated and not freed
  FreeBlock* free = nullptr;  // freed blocks, reused before new ones
  bool listed = false;
  std::size_t size_class = 0;
  [[nodiscard]] bool has_room() const noexcept { return free != nullptr || used + block <= mapped; }
};
constexpr std::size_t kSlabHeader = (sizeof(Slab) + kBlockHeader - 1) / kBlockHeader * kBlockHeader;

struct SizeClass {
  Slab* with_room = nullptr;  // slabs with a free or never-used block
  std::size_t slabs = 0;
  std::size_t small_slabs_made = 0;
};

class Arena {
 public:
  void* allocate(std::size_t bytes) {
    if (bytes > kMaxArenaBlock) throw std::bad_alloc();  // ArenaAllocator never asks for it
    const std::size_t index = class_of(bytes);
    std::scoped_lock lock(mutex_);
    SizeClass& size = classes_[index];
    Slab* slab = size.with_room;
    if (slab == nullptr) {
      slab = map_slab(size, index);
      link(size, slab);
    }
    char* block = nullptr;
    if (slab->free != nullptr) {
      block = reinterpret_cast<char*>(slab->free);
      slab->free = slab->free->next;
    } else {
      block = reinterpret_cast<char*>(slab) + slab->used;
      slab->used += slab->block;
    }
    unpoison(block, slab->block);
    ++slab->live;
    if (!slab->has_room()) unlink(size, slab);
    *reinterpret_cast<Slab**>(block) = slab;
    return block + kBlockHeader;
  }

  void free(void* p) noexcept {
    char* block = static_cast<char*>(p) - kBlockHeader;
    std::scoped_lock lock(mutex_);
    Slab* slab = *reinterpret_cast<Slab**>(block);
    SizeClass& size = classes_[slab->size_class];
    auto* freed = reinterpret_cast<FreeBlock*>(block);
    freed->next = slab->free;
    slab->free = freed;
    poison(block, slab->block);
    --slab->live;
    if (!slab->listed) link(size, slab);
    if (slab->live == 0 && size.slabs > 1) {
      unlink(size, slab);
      unmap_slab(size, slab);
    }
  }

  std::size_t mapped_bytes() noexcept {
    std::scoped_lock lock(mutex_);
    return mapped_bytes_;
  }

  void lock_for_fork() { mutex_.lock(); }
  void unlock_after_fork() { mutex_.unlock(); }

 private:
  // Sizes go by steps of the header's size: 0..16 bytes class 0, 17..32 class 1 ...
  static std::size_t class_of(std::size_t bytes) noexcept {
    return bytes == 0 ? 0 : (bytes - 1) / kBlockHeader;
  }

  Slab* map_slab(SizeClass& size, std::size_t index) {
    const bool small = size.small_slabs_made < kSmallSlabsPerSize;
    const std::size_t bytes = small ? kSmallSlab : kHugePageBytes;
    void* memory = nullptr;
    if (small) {
      memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (memory == MAP_FAILED) throw std::bad_alloc();
      ++size.small_slabs_made;
    } else {
      memory = allocate_large(bytes);  // aligned, advised for huge pages
    }
    auto* slab = new (memory) Slab;
    slab->mapped = bytes;
    slab->block = (index + 1) * kBlockHeader + kBlockHeader;
    slab->used = kSlabHeader;
    slab->size_class = index;
    ++size.slabs;
    mapped_bytes_ += bytes;
#if defined(MPROC_ARENA_ASAN)
    // The states hold pointers into the heap (values, callbacks, exceptions): LeakSanitizer must
    // see them, as it sees what heap blocks hold.
    __lsan_register_root_region(memory, bytes);
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(memory) + kSlabHeader, bytes - kSlabHeader);
#endif
    return slab;
  }

  void unmap_slab(SizeClass& size, Slab* slab) noexcept {
    --size.slabs;
    const std::size_t bytes = slab->mapped;
    mapped_bytes_ -= bytes;
#if defined(MPROC_ARENA_ASAN)
    __lsan_unregister_root_region(slab, bytes);
    ASAN_UNPOISON_MEMORY_REGION(slab, bytes);
#endif
    slab->~Slab();
    if (bytes == kSmallSlab) {
      ::munmap(slab, bytes);
    } else {
      free_large(slab, bytes);
    }
  }

  static void link(SizeClass& size, Slab* slab) noexcept {
    slab->prev = nullptr;
    slab->next = size.with_room;
    if (size.with_room != nullptr) size.with_room->prev = slab;
    size.with_room = slab;
    slab->listed = true;
  }

  static void unlink(SizeClass& size, Slab* slab) noexcept {
    if (slab->prev != nullptr) slab->prev->next = slab->next;
    if (slab->next != nullptr) slab->next->prev = slab->prev;
    if (size.with_room == slab) size.with_room = slab->next;
    slab->prev = slab->next = nullptr;
    slab->listed = false;
  }

  // A freed block is off limits until it is handed out again (under AddressSanitizer).
  static void poison([[maybe_unused]] char* block, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(MPROC_ARENA_ASAN)
    ASAN_POISON_MEMORY_REGION(block + sizeof(FreeBlock), bytes - sizeof(FreeBlock));
#endif
  }
  static void unpoison([[maybe_unused]] char* block, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(MPROC_ARENA_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(block, bytes);
#endif
  }

  std::mutex mutex_;
  std::array<SizeClass, kClasses> classes_{};
  std::size_t mapped_bytes_ = 0;
};

// Never destroyed: results in static storage may be freed after any other static is gone.
Arena& arena() {
  static Arena* const instance = [] {
    auto* made = new Arena;
    ::pthread_atfork([] { arena().lock_for_fork(); }, [] { arena().unlock_after_fork(); },
                     [] { arena().unlock_after_fork(); });
    return made;
  }();
  return *instance;
}

// Made while the program loads, single-threaded: a fork while another thread made it on first
// use would leave the child waiting for that thread to finish it.
[[maybe_unused]] const bool made_at_load = (arena(), true);

}  // namespace

void* allocate_arena_block(std::size_t bytes) { return arena().allocate(bytes); }

void free_arena_block(void* p) noexcept {
  if (p != nullptr) arena().free(p);
}

std::size_t arena_mapped_bytes() noexcept { return arena().mapped_bytes(); }

}  // namespace mproc::detail
