// The pool's internal messages. Task queue: chunks ('T', built by ChunkWriter in pool.h) and
// poison pills ('P'). Result queue: a chunk's results ('R'), and notices from the zygote and
// the workers ('W' started, 'D' died, 'I' initializer failed) and from the pool itself ('S' stop
// the collector). All little-endian; every read is bounds-checked (SerializationError).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mproc/async_result.h"

namespace mproc::detail {

inline constexpr char kChunkMessage = 'T';
inline constexpr char kPoisonPill = 'P';
inline constexpr char kResultMessage = 'R';
inline constexpr char kWorkerStarted = 'W';
inline constexpr char kWorkerDied = 'D';
inline constexpr char kInitializerFailed = 'I';
inline constexpr char kStopCollector = 'S';

// Reads fixed-size fields and sized strings off a message, throwing on a short one.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : bytes_(bytes) {}
  char tag();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::string_view bytes(std::size_t size);
  [[nodiscard]] bool done() const noexcept { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

void put_u32(std::string& out, std::uint32_t v);

struct ChunkHeader {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::string_view name;
  std::uint32_t count = 0;
};

// Reads a chunk message's header; `reader` is left at the first item.
ChunkHeader read_chunk_header(WireReader& reader);

// 'R' job chunk count { u8 status, u64 size, payload }*
void begin_results(std::string& out, std::uint64_t job, std::uint32_t chunk, std::uint32_t count);
void add_result(std::string& out, ResultStatus status, std::string_view payload);

struct ChunkResults {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::vector<ItemResult> items;  // point into the message
};
ChunkResults read_results(WireReader& reader);

// 'W' slot pid / 'D' slot pid wait-status / 'I' slot pid message
std::string worker_notice(char tag, std::uint32_t slot, pid_t pid, std::int32_t detail = 0,
                          std::string_view text = {});

}  // namespace mproc::detail
