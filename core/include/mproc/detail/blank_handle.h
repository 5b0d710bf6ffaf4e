// A handle to a shared object (a queue, a lock, a value) made only to be loaded into.
#pragma once

namespace mproc::detail {

// The tag of the constructor that makes such a handle: it owns nothing, and is only good for
// being assigned to or loaded into. Loading a handle attaches to the sender's object, so
// `mproc::decode` starts from this state rather than from a default-constructed handle, which
// would create a segment (a 4 MiB ring for a queue) only to drop it.
struct BlankHandle {
  explicit BlankHandle() = default;
};

}  // namespace mproc::detail
