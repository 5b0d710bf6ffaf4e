// The server's side of managed pools that the server loop needs (managed_pool.cc).
#pragma once

namespace mproc::detail {

// Terminates and joins every managed Pool of this process (their workers and helper processes
// are gone when it returns). A server process calls it once it stops serving, so that a pool
// still held by a client, or by a call blocked in it, does not outlive the server. Blocked
// calls on those pools fail with ProcessError. Never throws.
void shut_down_managed_pools() noexcept;

}  // namespace mproc::detail
