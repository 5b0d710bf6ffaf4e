// Seed c: a shared `Value` and `Array`, changed by two child processes in turn.
//
//   from multiprocessing import Process, Value, Array
//
//   def f(n, a):
//       n.value = n.value + 1
//       for i in range(len(a)):
//           a[i] = a[i] * 10
//
//   if __name__ == '__main__':
//       num = Value('i', 1)
//       arr = Array('i', range(10))
//       p = Process(target=f, args=(num, arr))
//       p.start()
//       p.join()
//       print(num.value)
//       print(arr[:])
//       p2 = Process(target=f, args=(num, arr))
//       p2.start()
//       p2.join()
//       print(num.value)
//       print(arr[:])
//
//   # the output is :
//   # 2
//   # [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
//   # 3
//   # [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]
//
// `Value<int>` is Python's `Value('i')`; passing it to a Process copies the handle, not the
// number, so parent and children share it. Each `value()`, `=`, `get(i)` and `set(i, v)` takes
// the object's lock, as Python's synchronized wrappers do.
#include <cstddef>
#include <cstdio>
#include <ranges>
#include <string>
#include <vector>

#include "mproc/init.h"
#include "mproc/process.h"
#include "mproc/sharedctypes.h"
#include "mproc/task.h"

namespace mp = mproc;

void f(const mp::Value<int>& n, const mp::Array<int>& a) {
  n = n.value() + 1;
  for (std::size_t i = 0; i < a.size(); ++i) a.set(i, a.get(i) * 10);
}
MPROC_TASK(f);  // so that spawn and forkserver children can run it by name

// Python's print(list): [0, 10, 20].
void print(const std::vector<int>& values) {
  std::string line = "[";
  for (std::size_t i = 0; i < values.size(); ++i)
    line += (i > 0 ? ", " : "") + std::to_string(values[i]);
  std::printf("%s]\n", line.c_str());
}

int main(int argc, char** argv) {
  mp::init(argc, argv);
  mp::Value<int> num(1);
  mp::Array<int> arr(std::views::iota(0, 10));

  mp::Process p(f, num, arr);
  p.start();
  p.join();
  std::printf("%d\n", num.value());
  print(arr.to_vector());

  mp::Process p2(f, num, arr);
  p2.start();
  p2.join();
  std::printf("%d\n", num.value());
  print(arr.to_vector());
  return 0;
}
