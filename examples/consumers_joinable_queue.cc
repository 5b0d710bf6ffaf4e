// Seed a: consumer processes (one per CPU) pull callable Task objects from a JoinableQueue, call
// them, call task_done(), and push the answer to a result Queue; one None poison pill per
// consumer; the main process joins the task queue, then prints the results.
//
//   class Consumer(multiprocessing.Process):
//       def __init__(self, task_queue, result_queue):
//           multiprocessing.Process.__init__(self)
//           self.task_queue = task_queue
//           self.result_queue = result_queue
//       def run(self):
//           proc_name = self.name
//           while True:
//               next_task = self.task_queue.get()
//               if next_task is None:
//                   # Poison pill means shutdown
//                   print('%s: Exiting' % proc_name)
//                   self.task_queue.task_done()
//                   break
//               print('%s: %s' % (proc_name, next_task))
//               answer = next_task()  # __call__()
//               self.task_queue.task_done()
//               self.result_queue.put(answer)
//           return
//
//   class Task(object):
//       def __init__(self, a, b):
//           self.a = a
//           self.b = b
//       def __call__(self):
//           time.sleep(0.1)  # pretend to take some time to do the work
//           return '%s * %s = %s' % (self.a, self.b, self.a * self.b)
//       def __str__(self):
//           return '%s * %s' % (self.a, self.b)
//
//   if __name__ == '__main__':
//       tasks = multiprocessing.JoinableQueue()
//       results = multiprocessing.Queue()
//       num_consumers = multiprocessing.cpu_count()
//       print('Creating %d consumers' % num_consumers)
//       consumers = [Consumer(tasks, results) for i in range(num_consumers)]
//       for w in consumers:
//           w.start()
//       num_jobs = 10
//       for i in range(num_jobs):
//           tasks.put(Task(i, i))
//       for i in range(num_consumers):
//           tasks.put(None)
//       tasks.join()
//       while num_jobs:
//           result = results.get()
//           print('Result:', result)
//           num_jobs -= 1
//
// `None` becomes std::nullopt: the queue carries std::optional<Task>.
//
// In C++ the consumer is a registered callable type that a Process runs, rather than a Process
// subclass: a registered type with its queues travels by name, so the example runs unchanged
// under every start method (MPROC_START_METHOD=fork|forkserver|spawn).

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mproc/init.h"
#include "mproc/process.h"
#include "mproc/queue.h"
#include "mproc/task.h"

namespace mp = mproc;
using namespace std::chrono_literals;

struct Task {
  int a = 0, b = 0;
  std::string operator()() const {
    std::this_thread::sleep_for(100ms);  // pretend to take some time to do the work
    return std::to_string(a) + " * " + std::to_string(b) + " = " + std::to_string(a * b);
  }
  [[nodiscard]] std::string str() const { return std::to_string(a) + " * " + std::to_string(b); }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& a& b;
  }
};

// What each consumer process runs: a callable type, registered so that it can be sent by name to
// a process started by spawn or by the fork server along with its two queues.
class Consumer {
 public:
  Consumer() = default;  // what a child decodes into
  Consumer(mp::JoinableQueue<std::optional<Task>> task_queue, mp::Queue<std::string> result_queue)
      : task_queue_(std::move(task_queue)), result_queue_(std::move(result_queue)) {}

  void operator()() {
    const std::string proc_name = mp::current_process().name();
    for (;;) {
      std::optional<Task> next_task = task_queue_.get();
      if (!next_task) {  // poison pill means shutdown
        std::printf("%s: Exiting\n", proc_name.c_str());
        std::fflush(stdout);
        task_queue_.task_done();
        break;
      }
      std::printf("%s: %s\n", proc_name.c_str(), next_task->str().c_str());
      std::fflush(stdout);
      std::string answer = (*next_task)();
      task_queue_.task_done();
      result_queue_.put(answer);
    }
  }

  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& task_queue_& result_queue_;
  }

 private:
  mp::JoinableQueue<std::optional<Task>> task_queue_;
  mp::Queue<std::string> result_queue_;
};
MPROC_TASK(Consumer);

int main(int argc, char** argv) {
  mp::init(argc, argv);
  mp::JoinableQueue<std::optional<Task>> tasks;
  mp::Queue<std::string> results;
  const int num_consumers = mp::cpu_count();
  std::printf("Creating %d consumers\n", num_consumers);
  std::fflush(stdout);
  std::vector<mp::Process> consumers;
  for (int i = 0; i < num_consumers; ++i) consumers.emplace_back(Consumer{tasks, results});
  for (auto& w : consumers) w.start();
  int num_jobs = 10;
  for (int i = 0; i < num_jobs; ++i) tasks.put(Task{i, i});
  for (int i = 0; i < num_consumers; ++i) tasks.put(std::nullopt);
  tasks.join();
  while (num_jobs) {
    std::string result = results.get();
    std::printf("Result: %s\n", result.c_str());
    --num_jobs;
  }
  std::fflush(stdout);
  for (auto& w : consumers) w.join();
  return 0;
}
