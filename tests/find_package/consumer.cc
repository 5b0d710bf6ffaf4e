// Built against the installed package by tests/find_package/run.cmake.
#include <cstdio>

#include "mproc/mproc.h"

int main() {
  auto segment = mproc::SharedSegment::create(64);
  std::printf("consumer ok %zu\n", segment.size() >= 64 ? std::size_t{64} : std::size_t{0});
  return 0;
}
