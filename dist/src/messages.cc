#include "messages.h"

#include "mproc/detail/call_codec.h"
#include "mproc/errors.h"

#include "wire.h"

namespace mproc::dist {

using detail::put_sized;
using detail::put_u32;
using detail::put_u64;
using detail::WireReader;

namespace {

void expect_tag(WireReader& reader, char tag, const char* what) {
  if (reader.tag() != tag) throw SerializationError(std::string("not a ") + what + " message");
}

}  // namespace

// 'J', job, chunk, timeout, kill grace, and the task name's length.
constexpr std::size_t kRunChunkHeaderSize = 1 + 8 + 4 + 8 + 8 + 4;

std::string encode_run_chunk(const RunChunk& run) {
  std::string out;
  out.reserve(kRunChunkHeaderSize + run.task.size() + run.message.size());
  out += kRunChunk;
  put_u64(out, run.job);
  put_u32(out, run.chunk);
  put_u64(out, static_cast<std::uint64_t>(run.timeout ? run.timeout->count() : -1));
  put_u64(out, static_cast<std::uint64_t>(run.kill_grace.count()));
  put_sized(out, run.task);
  out += run.message;
  return out;
}

RunChunk decode_run_chunk(std::string_view bytes) {
  WireReader reader(bytes);
  expect_tag(reader, kRunChunk, "run-chunk");
  RunChunk run;
  run.job = reader.u64();
  run.chunk = reader.u32();
  auto timeout = static_cast<std::int64_t>(reader.u64());
  if (timeout >= 0) run.timeout = std::chrono::nanoseconds(timeout);
  run.kill_grace = std::chrono::nanoseconds(static_cast<std::int64_t>(reader.u64()));
  run.task = reader.sized();
  run.message = reader.remaining();
  if (run.message.size() < detail::kChunkPrefixSize)
    throw SerializationError("a run-chunk message without its chunk");
  return run;
}

std::string encode_kill_job(std::uint64_t job) {
  std::string out(1, kKillJob);
  put_u64(out, job);
  return out;
}

std::uint64_t decode_kill_job(std::string_view bytes) {
  WireReader reader(bytes);
  expect_tag(reader, kKillJob, "kill-job");
  return reader.u64();
}

std::string encode_hello(const Hello& hello) {
  std::string out(1, kHello);
  put_u32(out, hello.workers);
  put_sized(out, hello.host);
  return out;
}

Hello decode_hello(std::string_view bytes) {
  WireReader reader(bytes);
  expect_tag(reader, kHello, "hello");
  Hello hello;
  hello.workers = reader.u32();
  hello.host = std::string(reader.sized());
  return hello;
}

std::string encode_chunk_failed(std::uint64_t job, std::uint32_t chunk, std::string_view error) {
  std::string out(1, kChunkFailed);
  put_u64(out, job);
  put_u32(out, chunk);
  out += error;
  return out;
}

ChunkFailed decode_chunk_failed(std::string_view bytes) {
  WireReader reader(bytes);
  expect_tag(reader, kChunkFailed, "chunk-failed");
  ChunkFailed failed;
  failed.job = reader.u64();
  failed.chunk = reader.u32();
  failed.error = reader.remaining();
  return failed;
}

}  // namespace mproc::dist
