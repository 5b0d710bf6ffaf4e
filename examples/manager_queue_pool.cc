// Seed k: a Pool's tasks share a queue that lives in a manager (an mproc::Queue lives in shared
// memory and is inherited by forked processes; a manager's queue is reachable from any process
// that holds its proxy, such as a Pool task that received it as an argument). Python:
//
//   def func(q):
//       print("*" * 10)
//       q.put("12346")
//
//   manager = Manager()
//   q = manager.Queue()
//   pool = Pool(processes=4)
//   for i in range(5):
//       pool.apply_async(func, (q,))
//   pool.close()
//   pool.join()
//   print(q.qsize())                                # 5
#include <cstdio>
#include <string>
#include <vector>

#include "mproc/mproc.h"

namespace mp = mproc;

void func(mp::QueueProxy<std::string> q) {
  std::printf("**********\n");
  std::fflush(stdout);
  q.put("12346");
}
MPROC_TASK(func);

int main(int argc, char** argv) {
  mp::init(argc, argv);  // spawned pool workers start here
  mp::Manager manager;
  mp::QueueProxy<std::string> q = manager.Queue<std::string>();
  mp::Pool pool(4);
  std::vector<mp::AsyncResult<void>> results;
  for (int i = 0; i < 5; ++i) results.push_back(pool.apply_async(func, q));
  pool.close();
  pool.join();
  for (auto& r : results) r.get();  // rethrows a task's error, if any
  std::printf("%zu\n", q.qsize());
}
