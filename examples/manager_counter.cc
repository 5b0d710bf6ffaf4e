// Seed l: a BaseManager serves a registered `Counter` (a lock inside); five Pool tasks share one
// proxy and increment it 50 times each. Python:
//
//   class MyManager(BaseManager): pass
//   MyManager.register('Counter', Counter)
//   manager = MyManager(); manager.start()
//   counter = manager.Counter(0)
//   p = Pool()
//   for i in range(5): p.apply_async(long_time_task, args=(str(i), counter))
//   p.close(); p.join()
//   print(counter.value())                          # 250
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mproc/mproc.h"

namespace mp = mproc;

// The shared class: it lives in the manager's server, which calls it from several threads.
class Counter {
 public:
  explicit Counter(int value) : value_(value) {}
  void increment() {
    std::lock_guard lock(mutex_);
    ++value_;
  }
  int value() const {
    std::lock_guard lock(mutex_);
    return value_;
  }

 private:
  mutable std::mutex mutex_;
  int value_;
};
MPROC_PROXY(Counter, increment, value);

void long_time_task(std::string name, mp::Proxy<Counter> counter) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::printf("Run task %s (%d)...\n", name.c_str(), static_cast<int>(::getpid()));
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    counter.increment();
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("Task %s runs %0.2f seconds.\n", name.c_str(), took.count());
  std::fflush(stdout);
}
MPROC_TASK(long_time_task);

int main(int argc, char** argv) {
  mp::init(argc, argv);  // spawned pool workers start here
  mp::BaseManager manager;
  manager.register_type<Counter, int>("Counter");
  manager.start();
  auto counter = manager.create<Counter>("Counter", 0);
  std::printf("Parent process %d.\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  mp::Pool pool;
  std::vector<mp::AsyncResult<void>> tasks;
  for (int i = 0; i < 5; ++i)
    tasks.push_back(pool.apply_async(long_time_task, std::to_string(i), counter));
  std::printf("Waiting for all subprocesses done...\n");
  std::fflush(stdout);
  pool.close();
  pool.join();
  for (auto& task : tasks) task.get();  // rethrows a task's error, if any
  std::printf("All subprocesses done.\n");
  std::printf("%d\n", counter.value());
}
