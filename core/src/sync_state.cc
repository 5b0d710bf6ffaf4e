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

void register_fork_handler() noexcept {
  // The forking thread carries its cache into the child, where its ids are different.
  static const int registered = ::pthread_atfork(nullptr, nullptr, &forget_ids_in_child);
  (void)registered;
}

}  // namespace

pid_t this_thread_id() noexcept {
  if (cached_tid == 0) {
    register_fork_handler();
    cached_tid = ::gettid();
  }
  return cached_tid;
}

pid_t this_process_id() noexcept {
  if (cached_pid == 0) {
    register_fork_handler();
    cached_pid = ::getpid();
  }
  return cached_pid;
}

}  // namespace mproc::detail
