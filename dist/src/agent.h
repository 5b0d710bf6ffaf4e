// A node agent: what every MPI rank but the first becomes in mproc::init. It starts this node's
// worker pool (forked before MPI_Init: Open MPI does not support fork() after it), then serves
// the chunks rank 0 sends until rank 0 says stop, and leaves the process (the program's main
// never runs here).
#pragma once

namespace mproc::dist {

[[noreturn]] void run_agent();

}  // namespace mproc::dist
