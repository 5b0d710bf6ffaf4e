#include "sync_state.h"

#include <pthread.h>
#include <unistd.h>

namespace mproc::detail {
namespace {

// gettid() and getpid() are system calls; a lock's fast path should not pay for them on every
// acquire.
thread_local pid_t cached_tid = 0;
thread_local pid_t cached_pid = 0;

void forget_ids_in_child() noexcept {
  cached_tid = 0;
  cached_pid = 0;
}

// The forking thread carries its cache into the child, where its ids are different. Registered
// when the library loads, while the process has one thread, not by a function-local static: one
// that a thread initialised while another forked would leave the child waiting on its guard.
const int fork_handler_registered = ::pthread_atfork(nullptr, nullptr, &forget_ids_in_child);

}  // namespace

pid_t this_thread_id() noexcept {
  if (cached_tid == 0) cached_tid = ::gettid();
  return cached_tid;
}

pid_t this_process_id() noexcept {
  if (cached_pid == 0) cached_pid = ::getpid();
  return cached_pid;
}

}  // namespace mproc::detail
