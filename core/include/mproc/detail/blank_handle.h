// Handles to shared objects (a queue, a lock, a value) in messages: what one sends, and what a
// loaded one starts from.
#pragma once

#include <string>

namespace mproc::detail {

// The tag of the constructor that makes a handle only to be loaded into: it owns nothing, and
// is only good for being assigned to or loaded into. Loading a handle attaches to the sender's
// object, so `mproc::decode` starts from this state rather than from a default-constructed
// handle, which would create a segment (a 4 MiB ring for a queue) only to drop it.
struct BlankHandle {
  explicit BlankHandle() = default;
};

// A handle's `serialize` (mproc/serialize.h, any archive with `is_loading`): it sends the
// object's name only, and loading attaches to it, so the receiving process uses the same object.
// `attach` makes the handle for a name: the type's own, unless the handle keeps more of its
// own (a Barrier its local action).
template <class Archive, class Handle, class Attach>
void serialize_by_name(Archive& ar, Handle& handle, Attach&& attach) {
  std::string name = handle.name();
  ar& name;
  if constexpr (Archive::is_loading::value) handle = attach(name);
}

template <class Archive, class Handle>
void serialize_by_name(Archive& ar, Handle& handle) {
  serialize_by_name(ar, handle, [](const std::string& name) { return Handle::attach(name); });
}

}  // namespace mproc::detail
