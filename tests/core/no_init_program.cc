// A program whose main does not call mproc::init: starting a process by spawn or by the fork
// server must fail with a clear error (never run main again in a chain of copies). Prints what
// each start method said and exits 0 when both refused.
#include <cstdio>
#include <string>

#include "mproc/process.h"
#include "mproc/start_method.h"
#include "mproc/task.h"

void nothing() {}
MPROC_TASK(nothing);

int main() {
  int refused = 0;
  for (auto method : {mproc::StartMethod::spawn, mproc::StartMethod::forkserver}) {
    mproc::Process p(mproc::ProcessOptions{.start_method = method}, nothing);
    try {
      p.start();
      p.join();
      std::printf("%s: started\n", std::string(mproc::to_string(method)).c_str());
    } catch (const mproc::ProcessError& e) {
      std::printf("%s: %s\n", std::string(mproc::to_string(method)).c_str(), e.what());
      ++refused;
    }
  }
  return refused == 2 ? 0 : 1;
}
