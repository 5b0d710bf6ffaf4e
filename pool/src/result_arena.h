// What the arena of results' states (result_arena.cc) has mapped, for its tests.
#pragma once

#include <cstddef>

namespace mproc::detail {

// The bytes of every slab now mapped, headers included.
[[nodiscard]] std::size_t arena_mapped_bytes() noexcept;

}  // namespace mproc::detail
