// A pool worker: take a chunk, run its calls, send the results, until a poison pill, the
// maxtasksperchild limit or the end of the queue. Nothing escapes: every exception of a task is
// captured into its result (run_call never throws), and the worker leaves with _exit.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "mproc/envelope.h"
#include "mproc/log.h"

#include "engine.h"
#include "wire.h"

namespace mproc::detail {

void PoolEngine::worker_main(std::uint32_t slot_index) {
  ::signal(SIGINT, SIG_IGN);
  set_log_process_name("PoolWorker-" + std::to_string(slot_index + 1));
  WorkerSlot& me = slot(slot_index);
  pid_t self = ::getpid();
  me.pid.store(self, std::memory_order_release);
  me.state.store(WorkerSlot::kIdle, std::memory_order_release);
  auto leave = [](int code) {
    std::fflush(nullptr);
    ::_exit(code);
  };
  if (config_.initializer) {
    try {
      config_.initializer();
    } catch (...) {
      std::string text;
      try {
        throw;
      } catch (const std::exception& e) {
        text = e.what();
      } catch (...) {
        text = "a non-std exception";
      }
      me.state.store(WorkerSlot::kInitFailed, std::memory_order_release);
      try {
        results_.put(worker_notice(kInitializerFailed, slot_index, self, 0, text),
                     Deadline::never());
      } catch (...) {
      }
      leave(1);
    }
  }
  std::string message;
  std::string results;
  int done = 0;
  // Runs under the task queue's lock, before the item leaves the queue: if this process dies
  // from here on, the slot already names the chunk, so the collector fails it.
  auto claim = [&](std::string_view item) {
    if (!item.empty() && item[0] == kPoisonPill) {
      me.state.store(WorkerSlot::kPill, std::memory_order_release);
      return;
    }
    // Never throws: a chunk too short to name its job is taken anyway (and reported below)
    // rather than left at the head of the queue to trip every worker in turn.
    std::uint64_t job = 0;
    std::uint32_t chunk = 0;
    if (item.size() >= 13) {
      WireReader reader(item.substr(0, 13));
      reader.tag();
      job = reader.u64();
      chunk = reader.u32();
    }
    me.job.store(job, std::memory_order_relaxed);
    me.chunk.store(chunk, std::memory_order_relaxed);
    me.state.store(WorkerSlot::kBusy, std::memory_order_release);
  };
  for (;;) {
    try {
      tasks_.get(message, Deadline::never(), claim);
    } catch (const std::exception& e) {
      get_logger()->error("pool worker cannot read the task queue: {}", e.what());
      leave(2);
    }
    if (message.empty() || message[0] == kPoisonPill) leave(0);
    try {
      WireReader reader(message);
      ChunkHeader header = read_chunk_header(reader);
      begin_results(results, header.job, header.chunk, header.count);
      for (std::uint32_t i = 0; i < header.count; ++i) {
        std::string_view args = reader.bytes(reader.u64());
        ResultEnvelope result = run_call(CallView{0, header.name, args});
        add_result(results, result.status, result.payload);
      }
      results_.put(results, Deadline::never());
    } catch (const std::exception& e) {
      // A malformed chunk or a result queue that refuses: this worker cannot go on. Leaving
      // makes the collector fail the chunk and start a replacement.
      get_logger()->error("pool worker failed on a chunk: {}", e.what());
      leave(3);
    }
    me.state.store(WorkerSlot::kIdle, std::memory_order_release);
    if (config_.maxtasksperchild > 0 && ++done >= config_.maxtasksperchild) {
      me.state.store(WorkerSlot::kRetired, std::memory_order_release);
      leave(0);
    }
  }
}

}  // namespace mproc::detail
