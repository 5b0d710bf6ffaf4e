#include "mproc/sharedctypes.h"

#include <cstring>
#include <string>

#include "mproc/errors.h"

namespace mproc::detail {
namespace {

constexpr std::uint64_t kMagic = 0x6d70726f63736376ull;  // "mprocscv"
constexpr std::size_t kLockNameSize = 64;

// At the start of every segment of a Value, Array, RawValue or RawArray. The elements follow at
// kDataOffset. Written once by the creator before any other process can know the name.
struct Header {
  std::uint64_t magic;
  std::uint64_t type_id;
  std::uint64_t element_size;
  std::uint64_t count;
  std::uint32_t lock_kind;
  char lock_name[kLockNameSize];
};

constexpr std::size_t kDataOffset = 192;
static_assert(sizeof(Header) <= kDataOffset && kDataOffset % SharedBlock::kMaxAlignment == 0);

Header* header_of(const SharedSegment& segment) { return static_cast<Header*>(segment.data()); }

}  // namespace

SharedBlock SharedBlock::create(std::size_t element_size, std::size_t count, std::uint64_t type_id,
                                SharedLockKind lock_kind, std::string_view lock_name) {
  if (lock_name.size() >= kLockNameSize)
    throw ValueError("lock name too long for a shared value: " + std::string(lock_name));
  if (element_size != 0 && count > (SIZE_MAX - kDataOffset) / element_size)
    throw ValueError("shared array too large");
  SharedBlock block;
  block.segment_ = SharedSegment::create(kDataOffset + element_size * count);
  Header* header = ::new (block.segment_.data()) Header{};
  header->magic = kMagic;
  header->type_id = type_id;
  header->element_size = element_size;
  header->count = count;
  header->lock_kind = static_cast<std::uint32_t>(lock_kind);
  if (!lock_name.empty()) std::memcpy(header->lock_name, lock_name.data(), lock_name.size());
  block.data_ = static_cast<char*>(block.segment_.data()) + kDataOffset;
  block.count_ = count;
  return block;
}

SharedBlock SharedBlock::attach(std::string_view name, std::size_t element_size,
                                std::uint64_t type_id) {
  SharedBlock block;
  block.segment_ = SharedSegment::attach(name);
  const std::size_t size = block.segment_.size();
  const Header* header = header_of(block.segment_);
  const std::string what = "shared segment '" + std::string(name) + "'";
  if (size < kDataOffset || header->magic != kMagic)
    throw ValueError(what + " is not a shared value or array");
  if (header->type_id != type_id || header->element_size != element_size)
    throw ValueError(what + " holds another element type");
  if (header->count > (size - kDataOffset) / (element_size == 0 ? 1 : element_size))
    throw ValueError(what + " is shorter than its header says");
  if (header->lock_kind > static_cast<std::uint32_t>(SharedLockKind::kRLock) ||
      ::strnlen(header->lock_name, kLockNameSize) == kLockNameSize)
    throw ValueError(what + " has a corrupt header");
  block.data_ = static_cast<char*>(block.segment_.data()) + kDataOffset;
  block.count_ = header->count;
  return block;
}

SharedLockKind SharedBlock::lock_kind() const noexcept {
  return segment_.valid() ? static_cast<SharedLockKind>(header_of(segment_)->lock_kind)
                          : SharedLockKind::kNone;
}

std::string SharedBlock::lock_name() const {
  if (!segment_.valid()) return {};
  const Header* header = header_of(segment_);
  return std::string(header->lock_name, ::strnlen(header->lock_name, kLockNameSize));
}

}  // namespace mproc::detail
