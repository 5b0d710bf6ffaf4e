// Large arrays in huge pages. A first touch of a 4 KiB page costs a page fault in every process
// that touches it, and in a virtual machine with shadow page tables (PVM) several microseconds:
// 8 MiB of fresh 4 KiB pages cost ~25 ms there, of 2 MiB pages under 1 ms. A map over a million
// items moves arrays of that size, so its buffers ask for huge pages (madvise: the kernel gives
// them where it can and falls back to small pages otherwise).
#include <sys/mman.h>
#include <sys/uio.h>

#include <cstdint>
#include <new>
#include <string>

#include "mproc/async_result.h"
#include "mproc/pool.h"

#include "wire.h"

namespace mproc::detail {
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) & ~(to - 1); }

}  // namespace

std::size_t large_capacity(std::size_t bytes) noexcept { return round_up(bytes, kHugePageBytes); }

void* allocate_large(std::size_t bytes) {
  const std::size_t size = large_capacity(bytes);
  // Over-allocate by a huge page and trim, so the block starts on a huge page boundary.
  void* raw = ::mmap(nullptr, size + kHugePageBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = round_up(start, kHugePageBytes);
  if (aligned != start) ::munmap(raw, aligned - start);
  std::size_t tail = (start + size + kHugePageBytes) - (aligned + size);
  if (tail != 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void free_large(void* p, std::size_t bytes) noexcept {
  if (p != nullptr) ::munmap(p, large_capacity(bytes));
}

void advise_huge_pages(const void* p, std::size_t bytes) noexcept {
  auto start = round_up(reinterpret_cast<std::uintptr_t>(p), kHugePageBytes);
  auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHugePageBytes - 1);
  if (end > start) ::madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
}

void reserve_for_large(std::string& buffer) {
  constexpr std::size_t kLarge = std::size_t{1} << 20;
  constexpr std::size_t kRoom = std::size_t{16} << 20;
  if (buffer.size() < kLarge || buffer.capacity() >= kRoom) return;
  buffer.reserve(kRoom);
  advise_huge_pages(buffer.data(), buffer.capacity());
}

bool read_remote(pid_t pid, std::uint64_t address, void* out, std::size_t size) noexcept {
  std::size_t done = 0;
  while (done < size) {
    iovec local{static_cast<char*>(out) + done, size - done};
    iovec remote{reinterpret_cast<void*>(address + done), size - done};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace mproc::detail
