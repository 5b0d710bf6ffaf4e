#include "mproc/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include "mproc/errors.h"

#include "os_error.h"
#include "resource_tracker.h"
#include "unique_fd.h"

namespace mproc {
namespace {

constexpr std::size_t kMaxNameLength = 255;  // NAME_MAX of /dev/shm

std::atomic<unsigned long> next_block_number{0};

// The name as the user sees it (no leading '/'); ValueError for what shm_open cannot take.
std::string checked_name(std::string_view name) {
  if (name.find('\0') != std::string_view::npos)
    throw ValueError("a shared memory name cannot contain a null character");
  while (name.starts_with('/')) name.remove_prefix(1);
  if (name.empty()) throw ValueError("a shared memory name cannot be empty");
  if (name.find('/') != std::string_view::npos)
    throw ValueError("a shared memory name cannot contain '/': " + std::string(name));
  if (name.size() > kMaxNameLength) throw ValueError("shared memory name too long");
  return std::string(name);
}

std::string os_name(const std::string& name) { return "/" + name; }

[[noreturn]] void throw_shm_error(int error, const std::string& what, const std::string& name) {
  if (error == EEXIST) throw FileExistsError("shared memory '" + name + "' already exists");
  if (error == ENOENT) throw FileNotFoundError("no shared memory named '" + name + "'");
  if (error == ENAMETOOLONG || error == EINVAL)
    throw ValueError("invalid shared memory name '" + name + "'");
  detail::throw_errno(error, what + " shared memory '" + name + "'");
}

std::string fresh_name(bool track) {
  if (track) {
    // The resource tracker and the test harness know this scheme: the owner's pid is in it.
    return "mproc-" + std::to_string(::getpid()) + "-shm" +
           std::to_string(next_block_number.fetch_add(1, std::memory_order_relaxed));
  }
  // Untracked blocks outlive their creator: a pid-free name, as Python's psm_<hex>.
  static thread_local std::mt19937_64 random{std::random_device{}()};
  char hex[17];
  auto [end, ec] = std::to_chars(hex, hex + 16, random(), 16);
  (void)ec;
  return "psm_" + std::string(hex, end);
}

}  // namespace

SharedMemory::SharedMemory(std::string_view name)
    : SharedMemory(SharedMemoryOptions{.name = std::string(name)}) {}

SharedMemory::SharedMemory(const SharedMemoryOptions& options) {
  if (options.size < 0) throw ValueError("'size' must be a positive integer");
  if (options.create && options.size == 0)
    throw ValueError("'size' must be a positive number different from zero");
  if (!options.name && !options.create) throw ValueError("'name' can only be None if create=True");

  detail::UniqueFd fd;
  const bool owns = options.create && options.track;
  bool attach = !options.create;
  if (options.create) {
    const int flags = O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC;
    for (;;) {
      name_ = options.name ? checked_name(*options.name) : fresh_name(options.track);
      // Registered before it exists, so that no crash can leave it behind untracked.
      if (owns) detail::track_segment(name_);
      fd.reset(::shm_open(os_name(name_).c_str(), flags, 0600));
      if (fd) break;
      int error = errno;
      if (owns) detail::untrack_segment(name_);
      // A generated name that exists (a leftover, a collision): take another one.
      if (error == EEXIST && !options.name) continue;
      if (error == EEXIST && options.exist_ok) {
        attach = true;
        break;
      }
      throw_shm_error(error, "cannot create", name_);
    }
  }
  if (!attach) {
    if (owns) owner_ = ::getpid();
    size_ = static_cast<std::size_t>(options.size);
    if (detail::retry_on_eintr([&] { return ::ftruncate(fd.get(), options.size); }) != 0) {
      int error = errno;
      ::shm_unlink(os_name(name_).c_str());
      if (owns) detail::untrack_segment(name_);
      owner_ = 0;
      detail::throw_errno(error, "set the size of shared memory '" + name_ + "'");
    }
  } else {
    name_ = checked_name(*options.name);
    fd.reset(::shm_open(os_name(name_).c_str(), O_RDWR | O_CLOEXEC, 0600));
    if (!fd) throw_shm_error(errno, "cannot open", name_);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) detail::throw_errno("stat shared memory '" + name_ + "'");
    size_ = static_cast<std::size_t>(st.st_size);
  }
  mapped_ = size_;
  if (mapped_ > 0) {
    void* address = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (address == MAP_FAILED) {
      int error = errno;
      if (owner_ != 0) {
        ::shm_unlink(os_name(name_).c_str());
        detail::untrack_segment(name_);
      }
      owner_ = 0;
      detail::throw_errno(error, "map shared memory '" + name_ + "'");
    }
    data_ = address;
  } else {
    // An empty block (attached): mmap refuses length 0, and there is nothing to map.
    data_ = nullptr;
  }
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)),
      owner_(std::exchange(other.owner_, 0)) {
  other.name_.clear();
}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    reset();
    name_ = std::move(other.name_);
    other.name_.clear();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
    owner_ = std::exchange(other.owner_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() { reset(); }

void SharedMemory::reset() noexcept {
  close();
  if (owns_name()) {
    if (::shm_unlink(os_name(name_).c_str()) != 0 && errno != ENOENT)
      detail::report_error("cannot unlink shared memory '" + name_ + "': " + std::strerror(errno));
    detail::untrack_segment(name_);
  }
  owner_ = 0;
}

bool SharedMemory::owns_name() const noexcept { return owner_ != 0 && owner_ == ::getpid(); }

std::string SharedMemory::repr() const {
  return "SharedMemory('" + name_ + "', size=" + std::to_string(size_) + ")";
}

void SharedMemory::close() noexcept {
  if (data_ != nullptr && ::munmap(data_, mapped_) != 0)
    detail::report_error("cannot unmap shared memory '" + name_ + "': " + std::strerror(errno));
  data_ = nullptr;
}

void SharedMemory::unlink() {
  if (name_.empty()) throw ValueError("this SharedMemory handle has no name");
  if (::shm_unlink(os_name(name_).c_str()) != 0) {
    int error = errno;
    if (owns_name()) detail::untrack_segment(name_);
    owner_ = 0;
    throw_shm_error(error, "cannot unlink", name_);
  }
  if (owns_name()) detail::untrack_segment(name_);
  owner_ = 0;
}

void SharedMemory::unlink_name(std::string_view name) {
  std::string checked = checked_name(name);
  if (::shm_unlink(os_name(checked).c_str()) != 0) throw_shm_error(errno, "cannot unlink", checked);
}

}  // namespace mproc
