// mproc/init.h
//
// `mproc::init(argc, argv)`: the first line of `main` in a program that starts processes by spawn
// or by the fork server (start_method.h), as Python's `if __name__ == "__main__":` guard.
//
//   int main(int argc, char** argv) {
//     mproc::init(argc, argv);
//     ...
//   }
//
// In the program itself it records argv[0] and, when the default start method is forkserver,
// starts the fork server now, while the program runs no thread yet. In a process that this program
// started by spawn, or as its fork server, it never returns: it becomes that process and exits
// when it is done. A program that only forks does not need it.
//
// Thread safety: call it once, from main, before starting threads.
#pragma once

namespace mproc {

void init(int argc, char** argv);

}  // namespace mproc
