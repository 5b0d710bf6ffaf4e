// Helper for pool_test: a Pool with static storage duration, never closed or joined; the
// program must still exit 0 without output on stderr (its destructor runs at exit).
#include <cstdio>

#include "mproc/init.h"
#include "mproc/pool.h"

int square(int x) { return x * x; }
MPROC_TASK(square);

mproc::Pool& pool() {
  static mproc::Pool instance(2);
  return instance;
}

int main(int argc, char** argv) {
  mproc::init(argc, argv);  // under spawn and forkserver the zygote starts here
  std::printf("%d\n", pool().apply(square, 7));
  return 0;
}
