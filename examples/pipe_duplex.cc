// Seed f: a conversation over a duplex Pipe between two processes.
//
//   import multiprocessing as mp
//
//   def proc_1(pipe):
//       pipe.send('hello')
//       print('proc_1 received: %s' %pipe.recv())
//       pipe.send("what is your name?")
//       print('proc_1 received: %s' %pipe.recv())
//
//   def proc_2(pipe):
//       print('proc_2 received: %s' %pipe.recv())
//       pipe.send('hello, too')
//       print('proc_2 received: %s' %pipe.recv())
//       pipe.send("I don't tell you!")
//
//   if __name__ == '__main__':
//       pipe = mp.Pipe()
//       print(len(pipe))
//       print(type(pipe))
//       p1 = mp.Process(target=proc_1, args=(pipe[0], ))
//       p2 = mp.Process(target=proc_2, args=(pipe[1], ))
//       p2.start()
//       p1.start()
//       p2.join()
//       p1.join()
//
// Each print is flushed at once: the processes share stdout, and the order of the lines is the
// order of the conversation only if no line waits in a buffer.
#include <cstdio>
#include <string>
#include <tuple>

#include "mproc/connection.h"
#include "mproc/process.h"

namespace mp = mproc;

void say(const std::string& who, const std::string& what) {
  std::printf("%s received: %s\n", who.c_str(), what.c_str());
  std::fflush(stdout);
}

void proc_1(mp::Connection& pipe) {
  pipe.send(std::string("hello"));
  say("proc_1", pipe.recv<std::string>());
  pipe.send(std::string("what is your name?"));
  say("proc_1", pipe.recv<std::string>());
}

void proc_2(mp::Connection& pipe) {
  say("proc_2", pipe.recv<std::string>());
  pipe.send(std::string("hello, too"));
  say("proc_2", pipe.recv<std::string>());
  pipe.send(std::string("I don't tell you!"));
}

int main() {
  auto pipe = mp::Pipe();
  std::printf("%zu\n", std::tuple_size_v<decltype(pipe)>);
  std::printf("std::pair<mproc::Connection, mproc::Connection>\n");
  std::fflush(stdout);
  mp::Process p1([&] { proc_1(pipe.first); });
  mp::Process p2([&] { proc_2(pipe.second); });
  p2.start();
  p1.start();
  p2.join();
  p1.join();
  return 0;
}
