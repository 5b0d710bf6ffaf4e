// Helper for shm_test (parity test_resource_tracker): creates two segments, prints their names,
// then dies by SIGTERM without unlinking them, so that its resource tracker has to. With the
// argument "tracker": prints the pid of its (fresh) tracker and exits normally.
#include <signal.h>

#include <cstdio>
#include <string>

#include "mproc/shm.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "tracker") {
    // Creates a segment, prints its tracker's pid and exits normally.
    auto seg = mproc::SharedSegment::create(64);
    std::printf("%d\n", static_cast<int>(mproc::detail::resource_tracker_pid()));
    return 0;
  }
  auto a = mproc::SharedSegment::create(4096);
  auto b = mproc::SharedSegment::create(4096);
  std::printf("%s\n%s\n", a.name().c_str(), b.name().c_str());
  std::fflush(stdout);
  ::raise(SIGTERM);
  return 1;
}
