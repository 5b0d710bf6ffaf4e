// mproc/sync.h
//
// The synchronization primitives of Python's `multiprocessing` (and `threading`), shared between
// processes: Lock, RLock (lock.h), Semaphore, BoundedSemaphore (semaphore.h), Event (event.h),
// Condition (condition.h) and Barrier (barrier.h). Each is a cheap copyable handle on a small
// shared-memory segment: create it before a fork and use it on both sides, or pass `name()` to
// another process, which calls `T::attach(name)`.
#pragma once

#include "mproc/barrier.h"
#include "mproc/condition.h"
#include "mproc/event.h"
#include "mproc/lock.h"
#include "mproc/semaphore.h"
