#include "wire.h"

#include <unistd.h>

#include <cstring>

#include "mproc/errors.h"
#include "mproc/pool.h"

namespace mproc::detail {

char WireReader::tag() { return bytes(1)[0]; }

std::uint32_t WireReader::u32() {
  std::string_view b = bytes(4);
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  return v;
}

std::uint64_t WireReader::u64() {
  std::string_view b = bytes(8);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  return v;
}

std::string_view WireReader::bytes(std::size_t size) {
  if (size > bytes_.size()) throw SerializationError("a pool message is truncated");
  std::string_view part = bytes_.substr(0, size);
  bytes_.remove_prefix(size);
  return part;
}

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}

void put_sized(std::string& out, std::string_view bytes) {
  put_u32(out, static_cast<std::uint32_t>(bytes.size()));
  out += bytes;
}

ChunkHeader read_chunk_header(WireReader& reader) {
  ChunkHeader header;
  if (reader.tag() != kChunkMessage) throw SerializationError("not a pool task chunk");
  header.job = reader.u64();
  header.chunk = reader.u32();
  header.name = reader.sized();
  header.count = reader.u32();
  return header;
}

void begin_results(std::string& out, std::uint64_t job, std::uint32_t chunk, std::uint32_t count) {
  out.clear();
  out += kResultMessage;
  put_u64(out, job);
  put_u32(out, chunk);
  put_u32(out, count);
}

void add_result(std::string& out, ResultStatus status, std::string_view payload) {
  out += static_cast<char>(status);
  put_u64(out, payload.size());
  out += payload;
}

ChunkResults read_results(WireReader& reader) {
  ChunkResults results;
  results.job = reader.u64();
  results.chunk = reader.u32();
  std::uint32_t count = reader.u32();
  for (std::uint32_t i = 0; i < count; ++i) {
    char status = reader.tag();
    if (status != 0 && status != 1) throw SerializationError("a pool result has a bad status");
    std::uint64_t size = reader.u64();
    results.items.push_back({static_cast<ResultStatus>(status), reader.bytes(size)});
  }
  return results;
}

PackedChunk read_packed_chunk(WireReader& reader) {
  PackedChunk chunk;
  char tag = reader.tag();
  if (tag != kPackedChunk && tag != kNeedInline) throw SerializationError("not a pool batch chunk");
  chunk.job = reader.u64();
  chunk.chunk = reader.u32();
  chunk.name = reader.sized();
  chunk.count = reader.u32();
  chunk.arg_size = reader.u32();
  char where = reader.tag();
  if (where == 0) {
    chunk.args = reader.bytes(std::size_t{chunk.count} * chunk.arg_size);
  } else if (where == 1) {
    chunk.remote = true;
    chunk.pid = reader.i32();
    chunk.address = reader.u64();
  } else {
    throw SerializationError("a pool batch chunk has a bad argument location");
  }
  return chunk;
}

std::size_t begin_packed_results(std::string& out, std::uint64_t job, std::uint32_t chunk,
                                 std::uint32_t count, std::uint32_t result_size,
                                 const RemoteResults* remote) {
  out.clear();
  out += kPackedResults;
  put_u64(out, job);
  put_u32(out, chunk);
  put_u32(out, count);
  put_u32(out, result_size);
  out += remote ? '\1' : '\0';
  if (remote) {
    put_u32(out, static_cast<std::uint32_t>(remote->pid));
    put_u64(out, remote->address);
    put_u32(out, remote->slot);
    put_u64(out, remote->seq);
    return std::string::npos;
  }
  std::size_t at = out.size();
  out.resize(at + std::size_t{count} * result_size);
  return at;
}

void end_packed_results(std::string& out,
                        const std::vector<std::pair<std::uint32_t, std::string>>& errors) {
  put_u32(out, static_cast<std::uint32_t>(errors.size()));
  for (const auto& [index, payload] : errors) {
    put_u32(out, index);
    put_u64(out, payload.size());
    out += payload;
  }
}

PackedChunkResults read_packed_results(WireReader& reader) {
  PackedChunkResults packed;
  packed.job = reader.u64();
  packed.chunk = reader.u32();
  PackedResults& r = packed.results;
  r.count = reader.u32();
  r.size = reader.u32();
  char where = reader.tag();
  if (where == 0) {
    r.values = reader.bytes(std::size_t{r.count} * r.size);
  } else if (where == 1) {
    packed.remote = true;
    packed.where.pid = reader.i32();
    packed.where.address = reader.u64();
    packed.where.slot = reader.u32();
    packed.where.seq = reader.u64();
  } else {
    throw SerializationError("a pool batch result has a bad location");
  }
  std::uint32_t errors = reader.u32();
  for (std::uint32_t i = 0; i < errors; ++i) {
    std::uint32_t index = reader.u32();
    if (index >= r.count || (!r.errors.empty() && index <= r.errors.back().first))
      throw SerializationError("a pool batch result has a bad error index");
    r.errors.emplace_back(index, reader.bytes(reader.u64()));
  }
  return packed;
}

std::string worker_notice(char tag, std::uint32_t slot, pid_t pid, std::int32_t detail,
                          std::string_view text) {
  std::string out(1, tag);
  put_u32(out, slot);
  put_u32(out, static_cast<std::uint32_t>(pid));
  put_u32(out, static_cast<std::uint32_t>(detail));
  out += text;
  return out;
}

// ---- pool.h's ChunkWriter ----

void ChunkWriter::begin(std::uint64_t job, std::uint32_t chunk, std::string_view name) {
  buffer_.clear();
  buffer_ += kChunkMessage;
  put_u64(buffer_, job);
  put_u32(buffer_, chunk);
  put_u32(buffer_, static_cast<std::uint32_t>(name.size()));
  buffer_ += name;
  count_at_ = buffer_.size();
  put_u32(buffer_, 0);
  count_ = 0;
}

std::string_view ChunkWriter::packed(std::uint64_t job, std::uint32_t chunk, std::string_view name,
                                     const void* args, std::uint32_t count,
                                     std::uint32_t arg_size) {
  buffer_.clear();
  buffer_ += kPackedChunk;
  put_u64(buffer_, job);
  put_u32(buffer_, chunk);
  put_u32(buffer_, static_cast<std::uint32_t>(name.size()));
  buffer_ += name;
  put_u32(buffer_, count);
  put_u32(buffer_, arg_size);
  buffer_ += '\0';
  buffer_.append(static_cast<const char*>(args), std::size_t{count} * arg_size);
  count_ = count;
  return buffer_;
}

std::string_view ChunkWriter::packed_remote(std::uint64_t job, std::uint32_t chunk,
                                            std::string_view name, const void* args,
                                            std::uint32_t count, std::uint32_t arg_size) {
  buffer_.clear();
  buffer_ += kPackedChunk;
  put_u64(buffer_, job);
  put_u32(buffer_, chunk);
  put_u32(buffer_, static_cast<std::uint32_t>(name.size()));
  buffer_ += name;
  put_u32(buffer_, count);
  put_u32(buffer_, arg_size);
  buffer_ += '\1';
  put_u32(buffer_, static_cast<std::uint32_t>(::getpid()));
  put_u64(buffer_, reinterpret_cast<std::uintptr_t>(args));
  count_ = count;
  return buffer_;
}

std::string_view ChunkWriter::finish() {
  for (int i = 0; i < 4; ++i)
    buffer_[count_at_ + i] = static_cast<char>((count_ >> (8 * i)) & 0xff);
  return buffer_;
}

std::size_t default_chunksize(std::size_t items, std::size_t workers) noexcept {
  if (items == 0) return 1;
  std::size_t per = workers * 4;
  std::size_t chunksize = items / per + (items % per != 0 ? 1 : 0);
  return chunksize == 0 ? 1 : chunksize;
}

}  // namespace mproc::detail
