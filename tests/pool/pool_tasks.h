// Tasks shared by the pool test binaries (each binary registers its own copy: MPROC_TASK in a
// header is harmless, and a worker finds them under the same names).
#pragma once

#include <chrono>
#include <thread>

#include "mproc/task.h"

namespace pooltasks {

inline int square(int x) { return x * x; }

inline int sleepy_square(int x, int millis) {
  std::this_thread::sleep_for(std::chrono::milliseconds(millis));
  return x * x;
}

}  // namespace pooltasks

MPROC_TASK(pooltasks::square);
MPROC_TASK(pooltasks::sleepy_square);
