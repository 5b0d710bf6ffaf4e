// Seed t: a "server" process adds the pairs it receives and sends back the sum, until the client
// closes its end.
//
//   from multiprocessing import Pipe, Process
//
//   def mark(pipe):
//       server_p, client_p = pipe
//       client_p.close()
//       while True:
//           try:
//               x,y = server_p.recv()
//           except EOFError:
//               print("报错了")
//               break
//           result=x+y
//           server_p.send(result)
//       print("mark执行完成")
//
//   if __name__ == "__main__":
//       (server_p, client_p) = Pipe()
//       p = Process(target=mark, args=((server_p, client_p),))
//       p.start()
//       server_p.close()
//       client_p.send((4,5))
//       print(client_p.recv())
//       client_p.send(("Mark", "大帅哥"))
//       print(client_p.recv())
//       client_p.close()
//
// Python's pairs are of ints or of strings; in C++ a request is a variant of the two tuple types,
// and the answer a variant of int and string.
#include <cstdio>
#include <string>
#include <tuple>
#include <variant>

#include "mproc/connection.h"
#include "mproc/errors.h"
#include "mproc/process.h"

namespace mp = mproc;

using Request = std::variant<std::tuple<int, int>, std::tuple<std::string, std::string>>;
using Answer = std::variant<int, std::string>;

void mark(mp::Connection& server_p, mp::Connection& client_p) {
  client_p.close();
  for (;;) {
    Request request;
    try {
      request = server_p.recv<Request>();
    } catch (const mp::EOFError&) {
      std::printf("EOFError\n");
      break;
    }
    Answer result = std::visit(
        [](const auto& xy) -> Answer { return std::get<0>(xy) + std::get<1>(xy); }, request);
    server_p.send(result);
  }
  std::printf("mark done\n");
}

void print(const Answer& answer) {
  std::visit(
      [](const auto& v) {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, int>) {
          std::printf("%d\n", v);
        } else {
          std::printf("%s\n", v.c_str());
        }
      },
      answer);
  std::fflush(stdout);
}

int main() {
  auto [server_p, client_p] = mp::Pipe();
  mp::Process p([&] { mark(server_p, client_p); });
  p.start();
  server_p.close();
  client_p.send(Request{std::tuple{4, 5}});
  print(client_p.recv<Answer>());
  client_p.send(Request{std::tuple<std::string, std::string>{"Mark", "大帅哥"}});
  print(client_p.recv<Answer>());
  client_p.close();
  p.join();
  return 0;
}
