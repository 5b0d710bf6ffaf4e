// mproc/shm.h
//
// `SharedSegment` is a named POSIX shared-memory segment (`/dev/shm/mproc-<pid>-<n>`) mapped into
// this process. It is the storage under every process-shared object of mproc: locks, queues,
// values. A segment created before a fork is mapped in both processes; any other process can
// `attach` to it by name.
//
//   auto seg = mproc::SharedSegment::create(4096);
//   std::string name = seg.name();                      // pass it on
//   auto same = mproc::SharedSegment::attach(name);     // in another process
//
// Ownership: the process that created a segment owns its name and unlinks it when its last
// handle goes away; attaching never unlinks. A child forked from the owner shares the handle but
// not the ownership. If the owner dies without unlinking (SIGKILL), the name is removed by
// whichever comes first: the parent reaping it (`Process::join`), the resource tracker of its
// process tree, or the next mproc program to create a segment (it removes segments whose owner's
// lock file is no longer locked). So `/dev/shm` holds no mproc segment for long after any exit.
//
// Thread safety: a const SharedSegment may be used from several threads; the bytes it maps are
// shared and need their own synchronization. Lifetime: the mapping lives as long as the handle
// (copies share it).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace mproc {

class SharedSegment {
 public:
  // Creates a zero-filled segment of `size` bytes under a fresh unique name; this process owns it.
  [[nodiscard]] static SharedSegment create(std::size_t size);
  // Creates a zero-filled segment under the given `name`, which must read
  // "mproc-<owner pid>-<suffix>", on behalf of process <owner>: a hand-off (a queue's out-of-line
  // item) that must outlive the process creating it. No handle unlinks it by itself: whoever
  // takes it calls unlink(); if nobody does, it is cleaned up like <owner>'s own segments once
  // <owner> is gone. Throws ValueError for a name without an owner, std::system_error (EEXIST
  // when the name is taken).
  [[nodiscard]] static SharedSegment create_for_owner(std::string_view name, std::size_t size);
  // Creates a zero-filled segment of `size` bytes with no name in /dev/shm: only this process and
  // the children it forks from now on map it, and it goes with the last of their mappings, so
  // there is nothing to unlink, track or clean up after a crash. name() still gives a fresh
  // "mproc-<pid>-<n>" (this process owns what is named after it), which attach() cannot find.
  [[nodiscard]] static SharedSegment create_unnamed(std::size_t size);
  // Maps the existing segment `name` (throws std::system_error when it does not exist).
  [[nodiscard]] static SharedSegment attach(std::string_view name);

  SharedSegment() = default;

  [[nodiscard]] void* data() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] bool valid() const noexcept { return mapping_ != nullptr; }
  // True in the process that created the segment (not in its forked children).
  [[nodiscard]] bool owned() const noexcept;

  // Removes the name now (the memory stays mapped where it is mapped). Idempotent.
  void unlink() const;

 private:
  struct Mapping;
  explicit SharedSegment(std::shared_ptr<Mapping> mapping) : mapping_(std::move(mapping)) {}
  std::shared_ptr<Mapping> mapping_;
};

namespace detail {
// Removes every mproc segment created by `pid` (a reaped, dead child). Called by the process
// layer after waitpid; harmless if there are none.
void remove_segments_of(pid_t pid) noexcept;
// The pid of this process tree's resource tracker, 0 before this process created a segment.
[[nodiscard]] pid_t resource_tracker_pid() noexcept;
// Number of mproc segments in /dev/shm created by `pid` (for tests and diagnostics).
[[nodiscard]] std::size_t count_segments_of(pid_t pid);
// To be called in a freshly forked child before it creates segments: forgets the parent's
// owner-lock so that the child takes its own.
void after_fork_in_child() noexcept;
}  // namespace detail

}  // namespace mproc
