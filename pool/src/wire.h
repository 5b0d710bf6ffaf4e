// The pool's internal messages. Task queue: chunks ('T', built by ChunkWriter in pool.h; 'B', the
// batch form of task.h's BatchInvoker) and poison pills ('P'). Result queue: a chunk's results
// ('R'; 'Q' for a 'B' chunk), and notices from the zygote and
// the workers ('W' started, 'D' died, 'I' initializer failed, 'C' a cancelled chunk sent back)
// and from the pool itself ('S' stop the collector, 'A' wake it). All little-endian; every read is
// bounds-checked (SerializationError).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mproc/async_result.h"

namespace mproc::detail {

inline constexpr char kChunkMessage = 'T';
inline constexpr char kPackedChunk = 'B';
inline constexpr char kPackedResults = 'Q';
inline constexpr char kNeedInline = 'N';
inline constexpr char kPoisonPill = 'P';
inline constexpr char kResultMessage = 'R';
inline constexpr char kWorkerStarted = 'W';
inline constexpr char kWorkerDied = 'D';
inline constexpr char kInitializerFailed = 'I';
inline constexpr char kStopCollector = 'S';
// Result queue: a chunk of a cancelled job, sent back unrun by a worker ('C' then the chunk
// message); and the pool waking its collector to watch timed tasks ('A').
inline constexpr char kBouncedChunk = 'C';
inline constexpr char kWakeCollector = 'A';
// What every chunk message ('T', 'B') starts with: its tag, u64 job and u32 chunk.
inline constexpr std::size_t kChunkPrefixSize = 1 + 8 + 4;

// Reads fixed-size fields and sized strings off a message, throwing on a short one.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : bytes_(bytes) {}
  char tag();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::string_view bytes(std::size_t size);
  // A u32 length and that many bytes (put_sized's).
  std::string_view sized() { return bytes(u32()); }
  [[nodiscard]] bool done() const noexcept { return bytes_.empty(); }
  // What is left to read, for a message that ends in another one (the reader does not move).
  [[nodiscard]] std::string_view remaining() const noexcept { return bytes_; }

 private:
  std::string_view bytes_;
};

void put_u32(std::string& out, std::uint32_t v);
// A u32 length, then `bytes`.
void put_sized(std::string& out, std::string_view bytes);

struct ChunkHeader {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::string_view name;
  std::uint32_t count = 0;
};

// Reads a chunk message's header; `reader` is left at the first item.
ChunkHeader read_chunk_header(WireReader& reader);

// 'B' u64 job  u32 chunk  u32 name_size name  u32 count  u32 arg_size  u8 where, then
//   where 0: { args }*count
//   where 1: i32 pid  u64 address (the arguments are in process pid's memory)
// A worker that cannot read another process's memory (ptrace rules) sends the message back
// with the tag 'N'; the collector then sends the chunk again with its arguments inline.
struct PackedChunk {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::string_view name;
  std::uint32_t count = 0;
  std::uint32_t arg_size = 0;
  std::string_view args;  // count * arg_size bytes, when inline
  bool remote = false;
  pid_t pid = 0;
  std::uint64_t address = 0;
};
PackedChunk read_packed_chunk(WireReader& reader);

// 'Q' u64 job  u32 chunk  u32 count  u32 result_size  u8 where, then
//     where 0: { result }*count
//     where 1: i32 pid  u64 address  u32 slot  u64 seq (in the worker's memory: the collector
//              reads them, then stores seq in the slot's results_read, and only then may the
//              worker free or reuse them)
//   then u32 errors  { u32 index  u64 size  captured exception }*errors
// Each exception replaces the result at its index (ascending); those bytes are no result (zero
// inline; by reference, whatever the worker's reused array held).
// Inline results are written in place: begin_packed_results returns where the values start.
struct RemoteResults {
  pid_t pid = 0;
  std::uint64_t address = 0;
  std::uint32_t slot = 0;
  std::uint64_t seq = 0;
};
std::size_t begin_packed_results(std::string& out, std::uint64_t job, std::uint32_t chunk,
                                 std::uint32_t count, std::uint32_t result_size,
                                 const RemoteResults* remote = nullptr);
void end_packed_results(std::string& out,
                        const std::vector<std::pair<std::uint32_t, std::string>>& errors);
struct PackedChunkResults {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  PackedResults results;  // points into the message (values empty when remote)
  bool remote = false;
  RemoteResults where;
};
PackedChunkResults read_packed_results(WireReader& reader);

// 'R' job chunk count { u8 status, u64 size, payload }*
void begin_results(std::string& out, std::uint64_t job, std::uint32_t chunk, std::uint32_t count);
void add_result(std::string& out, ResultStatus status, std::string_view payload);

struct ChunkResults {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::vector<ItemResult> items;  // point into the message
};
ChunkResults read_results(WireReader& reader);

using LargeBytes = std::vector<char, LargeAllocator<char>>;

// Copies `size` bytes at `address` in process `pid` into `out` (process_vm_readv); false when
// this process may not read there (ptrace rules) or the process or the memory is gone.
[[nodiscard]] bool read_remote(pid_t pid, std::uint64_t address, void* out,
                               std::size_t size) noexcept;

// 'W' slot pid / 'D' slot pid wait-status / 'I' slot pid message
std::string worker_notice(char tag, std::uint32_t slot, pid_t pid, std::int32_t detail = 0,
                          std::string_view text = {});

// The collector's and the workers' message buffers: once a message of a MiB or more has passed
// through `buffer`, it gets room for 16 MiB in huge pages (memory.cc), kept for the next ones.
// Not before: most pools never move such messages, and a reservation made up front costs system
// calls and page-table work at every pool start.
void reserve_for_large(std::string& buffer);

}  // namespace mproc::detail
