// Seed s: a Pipe as producer and consumer. Each side closes the end it does not use, so that the
// consumer's recv() raises EOFError once the producer closes its end.
//
//   from multiprocessing import Pipe, Process
//   import time
//
//   def mark(pipe):
//       output_p, input_p = pipe
//       print("mark方法内部调用input_p.close()")
//       input_p.close()
//       while True:
//           try:
//               item = output_p.recv()
//           except EOFError:
//               print("报错了")
//               break
//           print(item)
//           time.sleep(1)
//       print("mark执行完成")
//
//   if __name__ == "__main__":
//       (output_p, input_p) = Pipe()
//       p = Process(target=mark, args=((output_p, input_p),))
//       p.start()
//       output_p.close()
//       for item in list(range(5)):
//           input_p.send(item)
//       print("主方法内部调用input_p.close()()")
//       input_p.close()
//
// The messages: "mark calls input_p.close()", "EOFError" ("an error was raised"), "mark done",
// "main calls input_p.close()". The consumer sleeps 0.1 s per item instead of 1 s.
#include <chrono>
#include <cstdio>
#include <thread>

#include "mproc/connection.h"
#include "mproc/errors.h"
#include "mproc/process.h"

namespace mp = mproc;
using namespace std::chrono_literals;

void print_line(const char* line) {
  std::printf("%s\n", line);
  std::fflush(stdout);
}

void mark(mp::Connection& output_p, mp::Connection& input_p) {
  print_line("mark calls input_p.close()");
  input_p.close();  // this consumer only reads
  for (;;) {
    int item = 0;
    try {
      item = output_p.recv<int>();
    } catch (const mp::EOFError&) {
      print_line("EOFError");
      break;
    }
    std::printf("%d\n", item);
    std::fflush(stdout);
    std::this_thread::sleep_for(100ms);
  }
  print_line("mark done");
}

int main() {
  auto [output_p, input_p] = mp::Pipe();
  mp::Process p([&] { mark(output_p, input_p); });
  p.start();
  output_p.close();  // this producer only writes
  for (int item = 0; item < 5; ++item) input_p.send(item);
  print_line("main calls input_p.close()");
  input_p.close();
  p.join();
  return 0;
}
