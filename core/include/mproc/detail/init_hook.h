// mproc/detail/init_hook.h (INTERNAL)
//
// A step that `mproc::init` runs last, in the program itself (never in a process it started by
// spawn or as its fork server): how a layer above core takes part in start-up without core
// depending on it. mproc::dist installs one (its static initializer) that turns every MPI rank
// but the first into a node agent there, and that returns at once outside `mpirun`.
#pragma once

namespace mproc::detail {

using InitHook = void (*)(int argc, char** argv);

// Installed by a static initializer; the last one installed wins.
void set_init_hook(InitHook hook) noexcept;

}  // namespace mproc::detail
