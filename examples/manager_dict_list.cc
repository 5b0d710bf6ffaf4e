// Seed j: a Manager's dict and list, changed by a child. Python:
//
//   from multiprocessing import Process, Manager
//
//   def f(shareDict, shareList):
//       shareDict[1] = '1'
//       shareDict['2'] = 2
//       shareDict[0.25] = None
//       shareList.reverse()
//
//   if __name__ == '__main__':
//       manager = Manager()
//       shareDict = manager.dict()
//       shareList = manager.list(range(10))
//       p = Process(target=f, args=(shareDict, shareList))
//       p.start()
//       p.join()
//       print(shareDict)                   # {1: '1', '2': 2, 0.25: None}
//       print(shareList)                   # [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//
// `manager.dict()` is a DictProxy<Object, Object>: keys and values of mixed types, printed as
// Python prints them. Each `d[k] = v` and `reverse()` is one request to the manager's server.
#include <iostream>
#include <ranges>

#include "mproc/object.h"
#include "mproc/process.h"
#include "mproc/sync_manager.h"

namespace mp = mproc;

void f(const mp::DictProxy<>& share_dict, const mp::ListProxy<>& share_list) {
  share_dict[1] = "1";
  share_dict["2"] = 2;
  share_dict[0.25] = mp::None;
  share_list.reverse();
}

int main() {
  mp::Manager manager;
  auto share_dict = manager.dict();
  auto share_list = manager.list(std::views::iota(0, 10));
  mp::Process p(f, share_dict, share_list);
  p.start();
  p.join();
  std::cout << share_dict << "\n" << share_list << "\n";
  return 0;
}
