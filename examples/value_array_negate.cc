// Seed h: a child sets a shared double and negates a shared int array; the parent sees both.
//
//   from multiprocessing import Process, Value, Array
//
//   def f(n, a):
//       n.value = 3.1415927
//       print('子进程改变的n', n)
//       for i in range(len(a)):
//           a[i] = -a[i]
//           print('子进程改变的元素: ', a[i])
//
//   if __name__ == '__main__':
//       num = Value('d', 0.0)  # 进程间共享的数字类型,默认值为0,d 的类型为双精度小数
//       arr = Array('i', range(10))  # 进程间共享的数组类型,初始值为range[10],i是指整型
//       p = Process(target=f, args=(num, arr))
//       p.start()
//       p.join()
//       print(num.value)  # 获取共享变量num的值
//       print(arr[:])
//
//   结果:
//   子进程改变的n 3.1415927
//   子进程改变的元素:  0
//   子进程改变的元素:  -1
//   ...
//   子进程改变的元素:  -9
//   3.1415927
//   [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
//
// `Value<double>` is Python's `Value('d')`, `Array<int>` its `Array('i')`. Numbers print as
// Python prints them (the shortest text that reads back as the same double).
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <ranges>
#include <string>
#include <vector>

#include "mproc/process.h"
#include "mproc/sharedctypes.h"

namespace mp = mproc;

// Python's str(float): 3.1415927, 0.0.
std::string str(double value) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, ec == std::errc{} ? end : buffer);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

void f(const mp::Value<double>& n, const mp::Array<int>& a) {
  n = 3.1415927;
  std::printf("子进程改变的n %s\n", str(n.value()).c_str());
  for (std::size_t i = 0; i < a.size(); ++i) {
    a.set(i, -a.get(i));
    std::printf("子进程改变的元素:  %d\n", a.get(i));
  }
}

int main() {
  mp::Value<double> num(0.0);                   // 进程间共享的数字类型,默认值为0
  mp::Array<int> arr(std::views::iota(0, 10));  // 进程间共享的数组类型,初始值为range(10)
  mp::Process p(f, num, arr);
  p.start();
  p.join();
  std::printf("%s\n", str(num.value()).c_str());  // 获取共享变量num的值
  std::vector<int> values = arr.to_vector();
  std::string line = "[";
  for (std::size_t i = 0; i < values.size(); ++i)
    line += (i > 0 ? ", " : "") + std::to_string(values[i]);
  std::printf("%s]\n", line.c_str());
  return 0;
}
