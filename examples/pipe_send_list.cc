// Seed b: a child sends a heterogeneous list through a Pipe; the parent receives it intact.
//
//   from multiprocessing import Process, Pipe
//
//   def f(conn):
//       conn.send([42, None, 'hello'])
//       conn.close()
//
//   if __name__ == '__main__':
//       parent_conn, child_conn = Pipe()
//       p = Process(target=f, args=(child_conn,))
//       p.start()
//       p.join()
//       print(parent_conn.recv())   # prints "[42, None, 'hello']"
//
// `mproc::Object` is the dynamic, Python-like value that a list of mixed types needs in C++.
#include <iostream>

#include "mproc/connection.h"
#include "mproc/object.h"
#include "mproc/process.h"

namespace mp = mproc;

void f(mp::Connection& conn) {
  conn.send(mp::Object::list({42, mp::None, "hello"}));
  conn.close();
}

int main() {
  auto [parent_conn, child_conn] = mp::Pipe();
  mp::Process p([&] { f(child_conn); });
  p.start();
  p.join();
  std::cout << parent_conn.recv<mp::Object>() << std::endl;  // [42, None, 'hello']
  return 0;
}
