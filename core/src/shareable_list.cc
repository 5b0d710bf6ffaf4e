// ShareableList in Python's own layout (Lib/multiprocessing/shared_memory.py), so that the two
// can attach to each other's lists:
//   int64 N | int64 offsets[N + 1] (into the data area) | data area | char formats[N][8]
//   | int8 back-transform codes[N]
// Formats are Python struct codes: "q" int, "d" float, "xxxxxxx?" bool, "xxxxxx?x" None, "<n>s"
// str/bytes; codes say how to read the value back: 0 as is, 1 str, 2 bytes, 3 None. Every slot is
// a multiple of 8 bytes, so native alignment adds no padding.
#include <charconv>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "mproc/errors.h"
#include "mproc/shared_memory.h"

namespace mproc {
namespace {

constexpr std::size_t kSlot = 8;
constexpr std::string_view kBoolFormat = "xxxxxxx?";
constexpr std::string_view kNoneFormat = "xxxxxx?x";

enum Code : std::int8_t { kPlain = 0, kStr = 1, kBytes = 2, kNone = 3 };

std::int64_t load_i64(const std::byte* at) {
  std::int64_t v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

void store_i64(std::byte* at, std::int64_t v) { std::memcpy(at, &v, sizeof v); }

// Python's `struct` "<n>s" width for a new str/bytes item: its length rounded up past a multiple
// of 8 (so a string of 8 bytes gets 16, as in Python).
std::size_t slot_width(std::size_t length) { return kSlot * (length / kSlot + 1); }

const std::string* text_of(const ShareableList::Item& item) {
  if (auto* s = std::get_if<std::string>(&item)) return s;
  if (auto* b = std::get_if<ShareableList::Bytes>(&item)) return &b->value;
  return nullptr;
}

std::int8_t code_of(const ShareableList::Item& item) {
  if (std::holds_alternative<std::string>(item)) return kStr;
  if (std::holds_alternative<ShareableList::Bytes>(item)) return kBytes;
  if (std::holds_alternative<std::nullptr_t>(item)) return kNone;
  return kPlain;
}

// The format of a non-text item.
std::string_view fixed_format(const ShareableList::Item& item) {
  if (std::holds_alternative<std::int64_t>(item)) return "q";
  if (std::holds_alternative<double>(item)) return "d";
  if (std::holds_alternative<bool>(item)) return kBoolFormat;
  return kNoneFormat;
}

// Writes a non-text item as Python's struct.pack_into does (pad bytes are zeros).
void pack_fixed(std::byte* at, const ShareableList::Item& item) {
  std::memset(at, 0, kSlot);
  if (auto* i = std::get_if<std::int64_t>(&item)) {
    std::memcpy(at, i, sizeof *i);
  } else if (auto* d = std::get_if<double>(&item)) {
    std::memcpy(at, d, sizeof *d);
  } else if (auto* b = std::get_if<bool>(&item)) {
    at[7] = std::byte{static_cast<unsigned char>(*b ? 1 : 0)};
  }  // None: "xxxxxx?x" packs False, all zeros
}

void store_format(std::byte* at, std::string_view format) {
  std::memset(at, 0, kSlot);
  std::memcpy(at, format.data(), std::min(format.size(), kSlot));
}

std::string quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

ShareableList::ShareableList(const std::vector<Item>& items, const Options& options) {
  const std::size_t n = items.size();
  offsets_.assign(1, 0);
  for (const Item& item : items) {
    const std::string* text = text_of(item);
    offsets_.push_back(offsets_.back() +
                       static_cast<std::int64_t>(text ? slot_width(text->size()) : kSlot));
  }
  const std::size_t data_start = (n + 2) * kSlot;
  const std::size_t total = data_start + static_cast<std::size_t>(offsets_.back()) + n * kSlot + n;
  shm_ = SharedMemory({.name = options.name,
                       .create = true,
                       .size = static_cast<std::int64_t>(total),
                       .track = options.track});
  std::byte* base = bytes();
  store_i64(base, static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i <= n; ++i) store_i64(base + (i + 1) * kSlot, offsets_[i]);
  std::byte* formats = base + data_start + offsets_.back();
  for (std::size_t i = 0; i < n; ++i) {
    const Item& item = items[i];
    std::byte* slot = base + data_start + offsets_[i];
    if (const std::string* text = text_of(item)) {
      const std::size_t width = static_cast<std::size_t>(offsets_[i + 1] - offsets_[i]);
      std::memcpy(slot, text->data(), text->size());  // the rest is still zero
      store_format(formats + i * kSlot, std::to_string(width) + "s");
    } else {
      pack_fixed(slot, item);
      store_format(formats + i * kSlot, fixed_format(item));
    }
    formats[n * kSlot + i] = std::byte{static_cast<unsigned char>(code_of(item))};
  }
}

ShareableList::ShareableList(SharedMemory shm) : shm_(std::move(shm)) {
  const std::size_t size = shm_.size();
  const std::byte* base = bytes();
  auto invalid = [&] {
    return ValueError("shared memory '" + shm_.name() + "' does not hold a ShareableList");
  };
  if (size < 2 * kSlot) throw invalid();
  const std::int64_t n = load_i64(base);
  if (n < 0 || static_cast<std::uint64_t>(n) > size / kSlot) throw invalid();
  const auto count = static_cast<std::size_t>(n);
  if ((count + 2) * kSlot > size) throw invalid();
  offsets_.resize(count + 1);
  for (std::size_t i = 0; i <= count; ++i) {
    offsets_[i] = load_i64(base + (i + 1) * kSlot);
    if (offsets_[i] < 0 || (i > 0 && offsets_[i] < offsets_[i - 1])) throw invalid();
  }
  const std::size_t end =
      (count + 2) * kSlot + static_cast<std::size_t>(offsets_.back()) + count * kSlot + count;
  if (offsets_.back() > static_cast<std::int64_t>(size) || end > size) throw invalid();
}

ShareableList ShareableList::attach(std::string_view name) {
  return ShareableList(SharedMemory(name));
}

std::byte* ShareableList::bytes() const {
  if (shm_.closed()) throw ValueError("the ShareableList's shared memory is closed");
  return shm_.buf().data();
}

std::size_t ShareableList::size() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }

std::size_t ShareableList::checked_position(std::ptrdiff_t position) const {
  const auto n = static_cast<std::ptrdiff_t>(size());
  if (position < 0) position += n;
  if (position < 0 || position >= n) throw IndexError("index out of range");
  return static_cast<std::size_t>(position);
}

std::string ShareableList::packing_format(std::size_t position) const {
  const std::size_t n = size();
  const char* at =
      reinterpret_cast<const char*>(bytes() + (n + 2) * kSlot + offsets_.back() + position * kSlot);
  return std::string(at, strnlen(at, kSlot));
}

ShareableList::Item ShareableList::get(std::ptrdiff_t position) const {
  const std::size_t i = checked_position(position);
  const std::size_t n = size();
  const std::byte* base = bytes();
  const std::byte* slot = base + (n + 2) * kSlot + offsets_[i];
  const auto code =
      static_cast<std::int8_t>(base[(n + 2) * kSlot + offsets_.back() + n * kSlot + i]);
  const std::string format = packing_format(i);
  if (code == kNone) return nullptr;
  if (format == "q") return load_i64(slot);
  if (format == "d") {
    double d;
    std::memcpy(&d, slot, sizeof d);
    return d;
  }
  if (format == kBoolFormat) return slot[7] != std::byte{0};
  if (format == kNoneFormat) return nullptr;
  if (!format.empty() && format.back() == 's') {
    std::size_t width = 0;
    std::from_chars(format.data(), format.data() + format.size() - 1, width);
    width = std::min<std::size_t>(width, static_cast<std::size_t>(offsets_[i + 1] - offsets_[i]));
    std::string text(reinterpret_cast<const char*>(slot), width);
    // Python strips trailing nulls: they are the padding of a shorter value.
    text.erase(text.find_last_not_of('\0') + 1);
    if (code == kBytes) return Bytes{std::move(text)};
    return text;
  }
  throw ValueError("unknown ShareableList item format '" + format + "'");
}

void ShareableList::set(std::ptrdiff_t position, const Item& value) {
  const std::size_t i = checked_position(position);
  const std::size_t n = size();
  std::byte* base = bytes();
  std::byte* slot = base + (n + 2) * kSlot + offsets_[i];
  std::byte* format_at = base + (n + 2) * kSlot + offsets_.back() + i * kSlot;
  std::byte* code_at = base + (n + 2) * kSlot + offsets_.back() + n * kSlot + i;
  if (const std::string* text = text_of(value)) {
    const std::size_t width = static_cast<std::size_t>(offsets_[i + 1] - offsets_[i]);
    if (text->size() > width) throw ValueError("bytes/str item exceeds available storage");
    std::string format = packing_format(i);
    if (format.empty() || format.back() != 's') format = std::to_string(width) + "s";
    store_format(format_at, format);
    *code_at = std::byte{static_cast<unsigned char>(code_of(value))};
    std::memset(slot, 0, width);
    std::memcpy(slot, text->data(), text->size());
  } else {
    store_format(format_at, fixed_format(value));
    *code_at = std::byte{static_cast<unsigned char>(code_of(value))};
    pack_fixed(slot, value);
  }
}

std::size_t ShareableList::count(const Item& value) const {
  std::size_t found = 0;
  for (std::size_t i = 0; i < size(); ++i) found += get(static_cast<std::ptrdiff_t>(i)) == value;
  return found;
}

std::size_t ShareableList::index(const Item& value) const {
  for (std::size_t i = 0; i < size(); ++i)
    if (get(static_cast<std::ptrdiff_t>(i)) == value) return i;
  throw ValueError(item_repr(value) + " not in this container");
}

std::string ShareableList::format() const {
  std::string all;
  for (std::size_t i = 0; i < size(); ++i) all += packing_format(i);
  return all;
}

std::vector<ShareableList::Item> ShareableList::to_vector() const {
  std::vector<Item> items;
  items.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) items.push_back(get(static_cast<std::ptrdiff_t>(i)));
  return items;
}

std::string ShareableList::repr() const {
  std::string out = "ShareableList([";
  for (std::size_t i = 0; i < size(); ++i) {
    if (i > 0) out += ", ";
    out += item_repr(get(static_cast<std::ptrdiff_t>(i)));
  }
  return out + "], name=" + quoted(shm_.name()) + ")";
}

std::string ShareableList::item_repr(const Item& item) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          return "None";
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "True" : "False";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          char buffer[32];
          auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
          std::string text(buffer, ec == std::errc{} ? end : buffer);
          // Python writes a float with a point: 2.0, not 2.
          if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
          return text;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return quoted(v);
        } else {
          // Appended, not `"b" + quoted(...)`: GCC 12 -O3 reports a false -Wrestrict on the
          // insert at the front that the operator does.
          std::string text = "b";
          text += quoted(v.value);
          return text;
        }
      },
      item);
}

}  // namespace mproc
