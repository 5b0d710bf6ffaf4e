// What rank 0 and the node agents say to each other (one MPI message each, little-endian).
//   rank 0 -> agent: 'J' u64 job  u32 chunk  i64 timeout_ns (-1: none)  i64 kill_grace_ns
//                        u32 task_size task  then a pool chunk message ('T' or inline 'B')
//                    'K' u64 job   stop the job's chunks (cancel with interrupt)
//                    'S'           stop serving: the program on rank 0 is ending
//   agent -> rank 0: 'H' u32 workers  u32 host_size host   once, when it is ready
//                    'R' / 'Q'     a chunk's results, as the pool's wire.h has them
//                    'F' u64 job  u32 chunk  captured exception (the rest)
// Every 'J' is answered by exactly one 'R', 'Q' or 'F'.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mproc::dist {

inline constexpr char kRunChunk = 'J';
inline constexpr char kKillJob = 'K';
inline constexpr char kStop = 'S';
inline constexpr char kHello = 'H';
inline constexpr char kChunkFailed = 'F';

struct RunChunk {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::optional<std::chrono::nanoseconds> timeout;
  std::chrono::nanoseconds kill_grace{0};
  std::string_view task;
  std::string_view message;  // the pool's chunk message
};

std::string encode_run_chunk(const RunChunk& run);
RunChunk decode_run_chunk(std::string_view bytes);

std::string encode_kill_job(std::uint64_t job);
std::uint64_t decode_kill_job(std::string_view bytes);

struct Hello {
  std::uint32_t workers = 0;
  std::string host;
};
std::string encode_hello(const Hello& hello);
Hello decode_hello(std::string_view bytes);

struct ChunkFailed {
  std::uint64_t job = 0;
  std::uint32_t chunk = 0;
  std::string_view error;  // capture_exception's payload
};
std::string encode_chunk_failed(std::uint64_t job, std::uint32_t chunk, std::string_view error);
ChunkFailed decode_chunk_failed(std::string_view bytes);

}  // namespace mproc::dist
