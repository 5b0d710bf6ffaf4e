// Cleanup of shared-memory names whose owner died without unlinking them (SIGKILL, abort).
//
// Three layers, each covering what the one before cannot:
//  1. The parent that reaps a dead child removes the child's segments (remove_segments_of).
//  2. A tracker process per process tree (Python's resource tracker) hears "created"/"unlinked"
//     from every process of the tree over one pipe and watches each owner through a pidfd: when
//     an owner exits, its remaining names are unlinked; when the whole tree is gone (EOF on the
//     pipe), everything left is.
//  3. Every owner holds an flock on /dev/shm/.mproc-owners/<pid>; a process taking its own lock
//     first sweeps segments whose owner's lock is free, which covers `kill -9 -PGID` of a whole
//     tree, tracker included.
#pragma once

#include <sys/types.h>

#include <string_view>

namespace mproc::detail {

// Makes sure this process holds its owner lock (sweeping dead owners on first use) and has a
// tracker; then tells the tracker that `name` exists. Called before a segment is created.
void track_segment(std::string_view name);
// Tells the tracker that `name` was unlinked by its owner.
void untrack_segment(std::string_view name) noexcept;
// The same for a hand-off segment created by this process on behalf of `owner`
// (SharedSegment::create_for_owner): the tracker removes it when `owner` exits, not when we do.
void track_segment(std::string_view name, pid_t owner);
void untrack_segment(std::string_view name, pid_t owner) noexcept;

// remove_segments_of (mproc/shm.h) for a reaped child known to have left by _exit, so that no
// atexit handler removed its owner lock file: without one, it never registered a segment
// (track_segment takes the lock first), and /dev/shm is not scanned. (Should it have failed to
// make the file, the tracker still removes what it left.)
void remove_segments_of_exited(pid_t pid) noexcept;

// Parses "mproc-<pid>-<n>"; returns 0 for any other name.
[[nodiscard]] pid_t segment_owner(std::string_view name) noexcept;

}  // namespace mproc::detail
