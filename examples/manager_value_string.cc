// Seed i: a string `Value` held by a Manager; a child appends ", World!". Python:
//
//   from multiprocessing import Process, Manager
//   from ctypes import c_char_p
//
//   def greet(shareStr):
//       shareStr.value = shareStr.value + ", World!"
//
//   if __name__ == '__main__':
//       manager = Manager()
//       shareStr = manager.Value(c_char_p, "Hello")
//       process = Process(target=greet, args=(shareStr,))
//       process.start()
//       process.join()
//       print(shareStr.value)              # Hello, World!
//
// `manager.Value("Hello")` is a ValueProxy<std::string>; the string lives in the manager's
// server. `+=` is one request that appends in the server (Python's get-then-set is two, and can
// lose a concurrent update).
#include <iostream>
#include <string>

#include "mproc/process.h"
#include "mproc/sync_manager.h"

namespace mp = mproc;

void greet(const mp::ValueProxy<std::string>& share_str) { share_str += ", World!"; }

int main() {
  mp::Manager manager;
  auto share_str = manager.Value("Hello");
  mp::Process process(greet, share_str);
  process.start();
  process.join();
  std::cout << share_str.value() << "\n";
  return 0;
}
