// mproc/errors.h
//
// The exceptions mproc throws, named after the Python exceptions they stand for, so that a reader
// of `multiprocessing` code knows what each one means. All derive from `mproc::Error`, itself a
// `std::runtime_error`, so `catch (const mproc::Error&)` catches everything mproc raises on
// purpose. Failures of the operating system come as `std::system_error` (errno and a short "cannot
// ..." context), raised by one helper in core/src/syscall.cc.
#pragma once

#include <stdexcept>
#include <string>

namespace mproc {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Python `ValueError`: a call on an object in the wrong state (a closed queue, an unstarted
// process), or a value out of range (a `task_done()` too many, a semaphore released too often).
class ValueError : public Error {
 public:
  using Error::Error;
};

// Python `ProcessError`: misuse of a `Process` (started twice, a daemon starting children).
class ProcessError : public Error {
 public:
  using Error::Error;
};

// Python `TimeoutError`: a wait with a deadline ran out (`AsyncResult::get(timeout)`).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// Python `concurrent.futures.CancelledError`: `get()` of a pool result that was cancelled
// (`AsyncResult::cancel()`, or a queued task dropped by `Pool::terminate_workers()`).
class CancelledError : public Error {
 public:
  using Error::Error;
};

// Python `queue.Empty` / `queue.Full`: a non-blocking or timed `get` / `put` found nothing / no
// room.
class Empty : public Error {
 public:
  Empty() : Error("queue is empty") {}
  using Error::Error;
};

class Full : public Error {
 public:
  Full() : Error("queue is full") {}
  using Error::Error;
};

// Queues
// Python 3.13 `queue.ShutDown`: a `put` on a queue that was shut down, or a `get` on one that was
// shut down and is empty (or was shut down with `immediate`).
class ShutDown : public Error {
 public:
  ShutDown() : Error("queue is shut down") {}
  using Error::Error;
};

// Python `EOFError`: reading from a connection whose writers are all closed.
class EOFError : public Error {
 public:
  using Error::Error;
};

// Python `BufferTooShort`: `recv_bytes_into` with a buffer too small; holds the whole message.
class BufferTooShort : public Error {
 public:
  BufferTooShort(std::string message, std::string what)
      : Error(std::move(what)), message_(std::move(message)) {}
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

// Python `AuthenticationError`: the HMAC handshake of a Listener/Client failed.
class AuthenticationError : public Error {
 public:
  using Error::Error;
};

// Python `threading.BrokenBarrierError`: a `Barrier` was aborted, reset or timed out.
class BrokenBarrierError : public Error {
 public:
  BrokenBarrierError() : Error("barrier is broken") {}
  using Error::Error;
};

// A message that cannot be decoded as the type asked for (truncated, corrupt, another type).
class SerializationError : public Error {
 public:
  using Error::Error;
};

// A callable submitted to a worker that was never registered with MPROC_TASK.
class NotRegisteredError : public Error {
 public:
  using Error::Error;
};

// A worker process died (signal or exit) while it ran a task; only that task fails with it.
class WorkerLostError : public Error {
 public:
  using Error::Error;
};

// A task's exception whose type cannot be rethrown as itself: its type name, message and the pid
// of the worker that raised it.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, std::string message, int pid)
      : Error(type_name + ": " + message + " (in worker " + std::to_string(pid) + ")"),
        type_name_(std::move(type_name)),
        message_(std::move(message)),
        pid_(pid) {}
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] int pid() const noexcept { return pid_; }

 private:
  std::string type_name_;
  std::string message_;
  int pid_;
};

// Shared memory
// Python `FileExistsError` / `FileNotFoundError`: creating a shared-memory name that exists,
// attaching to (or unlinking) one that does not. Python's `IndexError`: a position outside a
// ShareableList or a shared Array.
class FileExistsError : public Error {
 public:
  using Error::Error;
};

class FileNotFoundError : public Error {
 public:
  using Error::Error;
};

class IndexError : public Error {
 public:
  using Error::Error;
};

// ---- Dynamic values (mproc::Object)

// Python `TypeError`: an operation on a value of the wrong type (`as_int()` on a str, `<`
// between a str and an int, a list used as a dict key).
class TypeError : public Error {
 public:
  using Error::Error;
};

// Python `KeyError`: a dict has no such key.
class KeyError : public Error {
 public:
  using Error::Error;
};

// Python `AttributeError`: a manager proxy's object exposes no such method, a Namespace has no such
// attribute.
class AttributeError : public Error {
 public:
  using Error::Error;
};

}  // namespace mproc
