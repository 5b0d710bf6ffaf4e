#include <unistd.h>

#include <atomic>
#include <string>
#include <system_error>

#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include "mproc/errors.h"
#include "mproc/shm.h"

#include "os_error.h"
#include "resource_tracker.h"

namespace bip = boost::interprocess;

namespace mproc {

struct SharedSegment::Mapping {
  std::string name;
  pid_t owner = 0;       // pid of the creator, 0 when attached
  bool unnamed = false;  // create_unnamed: no file behind the name
  bip::mapped_region region;

  ~Mapping() {
    if (!unnamed && owner != 0 && owner == ::getpid()) {
      bip::shared_memory_object::remove(name.c_str());
      detail::untrack_segment(name);
    }
  }
};

namespace {

std::atomic<unsigned long> next_segment_number{0};

[[noreturn]] void rethrow_boost(const bip::interprocess_exception& e, const std::string& what) {
  int error = e.get_native_error();
  detail::throw_errno(error != 0 ? error : EIO, what + ": " + e.what());
}

}  // namespace

SharedSegment SharedSegment::create(std::size_t size) {
  if (size == 0) throw ValueError("a shared segment needs a size above 0");
  auto mapping = std::make_shared<Mapping>();
  for (;;) {
    mapping->name = "mproc-" + std::to_string(::getpid()) + "-" +
                    std::to_string(next_segment_number.fetch_add(1, std::memory_order_relaxed));
    detail::track_segment(mapping->name);
    try {
      bip::shared_memory_object shm(bip::create_only, mapping->name.c_str(), bip::read_write, 0600);
      mapping->owner = ::getpid();  // from here on the destructor unlinks
      shm.truncate(static_cast<bip::offset_t>(size));
      mapping->region = bip::mapped_region(shm, bip::read_write, 0, size);
      break;
    } catch (const bip::interprocess_exception& e) {
      // A leftover of a dead process whose pid we now have: take the next number.
      if (e.get_error_code() == bip::already_exists_error) continue;
      rethrow_boost(e, "create shared segment " + mapping->name);
    }
  }
  return SharedSegment(std::move(mapping));
}

SharedSegment SharedSegment::create_unnamed(std::size_t size) {
  if (size == 0) throw ValueError("a shared segment needs a size above 0");
  auto mapping = std::make_shared<Mapping>();
  mapping->name = "mproc-" + std::to_string(::getpid()) + "-" +
                  std::to_string(next_segment_number.fetch_add(1, std::memory_order_relaxed));
  mapping->owner = ::getpid();
  mapping->unnamed = true;
  try {
    mapping->region = bip::anonymous_shared_memory(size);
  } catch (const bip::interprocess_exception& e) {
    rethrow_boost(e, "create shared memory of " + std::to_string(size) + " bytes");
  }
  return SharedSegment(std::move(mapping));
}

SharedSegment SharedSegment::create_for_owner(std::string_view name, std::size_t size) {
  if (size == 0) throw ValueError("a shared segment needs a size above 0");
  pid_t owner = detail::segment_owner(name);
  if (owner <= 0) throw ValueError("not an mproc segment name: " + std::string(name));
  auto mapping = std::make_shared<Mapping>();  // owner 0: this handle never unlinks
  mapping->name = std::string(name);
  detail::track_segment(mapping->name, owner);
  try {
    bip::shared_memory_object shm(bip::create_only, mapping->name.c_str(), bip::read_write, 0600);
    try {
      shm.truncate(static_cast<bip::offset_t>(size));
      mapping->region = bip::mapped_region(shm, bip::read_write, 0, size);
    } catch (...) {
      bip::shared_memory_object::remove(mapping->name.c_str());
      throw;
    }
  } catch (const bip::interprocess_exception& e) {
    detail::untrack_segment(mapping->name, owner);
    rethrow_boost(e, "create shared segment " + mapping->name);
  }
  return SharedSegment(std::move(mapping));
}

SharedSegment SharedSegment::attach(std::string_view name) {
  auto mapping = std::make_shared<Mapping>();
  mapping->name = std::string(name);
  try {
    bip::shared_memory_object shm(bip::open_only, mapping->name.c_str(), bip::read_write);
    mapping->region = bip::mapped_region(shm, bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    rethrow_boost(e, "attach to shared segment " + mapping->name);
  }
  return SharedSegment(std::move(mapping));
}

void* SharedSegment::data() const noexcept {
  return mapping_ ? mapping_->region.get_address() : nullptr;
}

std::size_t SharedSegment::size() const noexcept {
  return mapping_ ? mapping_->region.get_size() : 0;
}

const std::string& SharedSegment::name() const noexcept {
  static const std::string empty;
  return mapping_ ? mapping_->name : empty;
}

bool SharedSegment::owned() const noexcept { return mapping_ && mapping_->owner == ::getpid(); }

void SharedSegment::unlink() const {
  if (!mapping_ || mapping_->name.empty() || mapping_->unnamed) return;
  bip::shared_memory_object::remove(mapping_->name.c_str());
  if (owned()) {
    detail::untrack_segment(mapping_->name);
  } else if (pid_t owner = detail::segment_owner(mapping_->name); owner > 0) {
    detail::untrack_segment(mapping_->name, owner);  // a hand-off taken by its consumer
  }
}

}  // namespace mproc
