// mproc/connection.h
//
// `Connection` is one end of a message channel between processes, and `Pipe()` makes a connected
// pair, like Python's `multiprocessing.Pipe` and `multiprocessing.connection.Connection`.
//
//   auto [parent, child] = mproc::Pipe();
//   // ... fork; the child does child.send_bytes("hello") ...
//   std::string msg = parent.recv_bytes();
//   parent.send(std::tuple{4, 5});                 // any value serialize.h can encode
//   int sum = parent.recv<int>();
//
// Messages keep their boundaries: each `send_bytes` arrives as exactly one `recv_bytes`, never
// merged or split. The wire format is Python's: a 4-byte big-endian signed length, or -1 followed
// by an 8-byte big-endian length for a message of 2 GiB or more, then the payload. So an mproc
// Connection talks to a Python `Connection` over the same descriptor or socket (see listener.h for
// `Listener`/`Client`), and messages over 2 GiB work.
//
// Errors, mapped from Python's: a closed peer is `EOFError` (only between messages); Python's
// `OSError` is `std::system_error` with an errno that says what went wrong: EBADF for a closed
// connection ("handle is closed") or the wrong direction ("connection is read-only"), EMSGSIZE for
// a message longer than `maxlength` (the connection can then no longer be read, as in Python),
// EPROTO for a peer that closed in the middle of a message or sent a bad length, EPIPE when the
// reader is gone. SIGPIPE is never raised by mproc (MSG_NOSIGNAL on sockets; on a one-way pipe the
// signal is blocked around the write and a pending one is consumed), so no process-wide signal
// setting is needed. EINTR is retried everywhere: a signal handler never makes a call fail.
//
// Thread safety: like Python's, a Connection is for one thread at a time per direction: two
// threads may not send (or receive) on the same end concurrently. Fork safety: a Connection made
// before a fork is open in both processes (the descriptors are inherited, as Python's are with the
// fork start method); each process should close the end it does not use, so that the reader sees
// EOF when the last writer closes. Every descriptor is O_CLOEXEC: an exec'd program gets none.
// Lifetime: a Connection owns its descriptor and closes it when destroyed or closed; it is
// move-only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mproc/deadline.h"
#include "mproc/detail/handle_passing.h"
#include "mproc/serialize.h"

namespace mproc {

class Connection {
 public:
  // A Deadline that waits for ever: `conn.poll(Connection::forever)` is Python's `poll(None)`.
  static constexpr Deadline forever = Deadline::never();

  // A closed connection (the state of a moved-from one).
  Connection() noexcept = default;
  // Takes ownership of `fd`, a pipe end or a stream socket in blocking mode. Throws ValueError
  // when `fd` is negative or neither direction is allowed (Python: "invalid handle").
  explicit Connection(int fd, bool readable = true, bool writable = true);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Sends `buf[offset, offset + size)` as one message (all of `buf` from `offset` when `size` is
  // nullopt). Throws ValueError for a negative offset or size or a range past the end of `buf`;
  // std::system_error (EBADF) when closed or read-only, (EPIPE) when no reader is left. Blocks
  // while the channel is full, until the reader makes room.
  void send_bytes(std::span<const std::byte> buf, std::int64_t offset = 0,
                  std::optional<std::int64_t> size = std::nullopt);
  void send_bytes(std::string_view buf, std::int64_t offset = 0,
                  std::optional<std::int64_t> size = std::nullopt);

  // Receives one whole message. Blocks until a message arrives (or until `deadline`: then throws
  // TimeoutError, consuming nothing; once a message has begun, the rest is waited for without a
  // deadline, since its writer is in the middle of sending it). Throws EOFError when the peer is
  // closed and everything it sent has been read; ValueError for a negative `maxlength`;
  // std::system_error(EMSGSIZE) for a message longer than `maxlength` (the message is left unread
  // and the connection stops being readable, or is closed if it was read-only, as in Python).
  // A receive that finds nothing polls for up to 20 us before it blocks: a reply usually comes
  // sooner than a process blocked in read() is woken up (tens of microseconds on a VM).
  [[nodiscard]] std::string recv_bytes(std::optional<std::int64_t> maxlength = std::nullopt);
  [[nodiscard]] std::string recv_bytes(Deadline deadline,
                                       std::optional<std::int64_t> maxlength = std::nullopt);
  template <class Rep, class Period>
  [[nodiscard]] std::string recv_bytes(std::chrono::duration<Rep, Period> timeout,
                                       std::optional<std::int64_t> maxlength = std::nullopt) {
    return recv_bytes(Deadline::after(timeout), maxlength);
  }

  // Sends `obj` as one message (serialize.h's `encode`), Python's `send(obj)`. Throws
  // SerializationError if `obj` cannot be encoded; otherwise as `send_bytes`.
  template <class T>
  void send(const T& obj) {
    send_bytes(encode(obj));
  }

  // Receives one message sent by `send<T>` and decodes it as a T, Python's `recv()`. Throws
  // SerializationError when the message is not a T; otherwise as `recv_bytes` (EOFError when the
  // peer is closed, TimeoutError when `deadline` passes first).
  template <class T>
  [[nodiscard]] T recv() {
    return decode<T>(recv_bytes());
  }
  template <class T>
  [[nodiscard]] T recv(Deadline deadline) {
    return decode<T>(recv_bytes(deadline));
  }
  template <class T, class Rep, class Period>
  [[nodiscard]] T recv(std::chrono::duration<Rep, Period> timeout) {
    return recv<T>(Deadline::after(timeout));
  }

  // Receives one whole message into `buf` at `offset` and returns its size; the payload is read
  // straight into `buf`, with no intermediate copy. Throws ValueError when `offset` is negative or
  // past the end; BufferTooShort (whose `message()` is the whole message, now consumed) when the
  // message does not fit in `buf[offset, end)`; otherwise as `recv_bytes`.
  std::size_t recv_bytes_into(std::span<std::byte> buf, std::int64_t offset = 0);
  std::size_t recv_bytes_into(std::span<char> buf, std::int64_t offset = 0);

  // Whether a message (or EOF) is ready to be read, without consuming anything. `poll()` returns
  // at once; `poll(timeout)` waits at most `timeout` (a negative one is zero); `poll(forever)`
  // waits until something arrives. Woken by data arriving or by the peer closing. Throws
  // std::system_error(EBADF) when closed or write-only.
  [[nodiscard]] bool poll() const { return poll(Deadline::now()); }
  [[nodiscard]] bool poll(Deadline deadline) const;
  template <class Rep, class Period>
  [[nodiscard]] bool poll(std::chrono::duration<Rep, Period> timeout) const {
    return poll(Deadline::after(timeout));
  }

  // The descriptor (still owned by the connection). Throws std::system_error(EBADF) when closed.
  [[nodiscard]] int fileno() const;
  // Closes the descriptor; idempotent.
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return fd_ < 0; }
  [[nodiscard]] bool readable() const noexcept { return readable_; }
  [[nodiscard]] bool writable() const noexcept { return writable_; }

  // Gives up ownership of the descriptor (the connection is then closed) and returns it.
  [[nodiscard]] int release() noexcept;

  // Serialization sends the descriptor itself, so it works only where a descriptor can go along:
  // as an argument of a Process started by spawn or by the fork server (the child gets its own
  // duplicate, with the same access). Anywhere else it is a SerializationError: use
  // send_connection. A closed connection travels as a closed one.
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    std::int64_t index = -1;
    bool readable = readable_;
    bool writable = writable_;
    if constexpr (!Archive::is_loading::value) {
      if (!closed()) index = detail::export_handle(fd_);
    }
    ar& index& readable& writable;
    if constexpr (Archive::is_loading::value) {
      close();
      if (index >= 0)
        adopt(detail::import_handle(static_cast<std::uint32_t>(index)), readable, writable);
    }
  }

 private:
  void check_readable() const;
  void check_writable() const;
  // Reads a header; returns the payload size. EOFError if the peer closed before it.
  std::uint64_t recv_header();
  void recv_exact(void* dst, std::size_t n);
  void bad_message_length();
  void send_frame(const std::byte* data, std::size_t size);
  void adopt(int fd, bool readable, bool writable);

  int fd_ = -1;
  bool readable_ = false;
  bool writable_ = false;
  bool is_socket_ = false;  // sockets get MSG_NOSIGNAL; pipes need SIGPIPE blocked around writes
};

// Python's `multiprocessing.connection.wait` over connections: blocks until at least one of
// `connections` has a message or EOF ready (what `poll` reports) and returns those, in the order
// given; an empty result means the deadline passed (a zero or negative timeout checks once).
// Woken by data or a peer closing, never by a timer; EINTR is retried with the time left. Throws
// std::system_error(EBADF) for a closed or write-only connection. For a mix with process sentinels
// or other descriptors, pass `fileno()`s to the fd-based `mproc::wait` of wait.h.
[[nodiscard]] std::vector<Connection*> wait(std::span<Connection* const> connections,
                                            Deadline deadline = Deadline::never());
[[nodiscard]] inline std::vector<Connection*> wait(std::initializer_list<Connection*> connections,
                                                   Deadline deadline = Deadline::never()) {
  return wait(std::span<Connection* const>(connections.begin(), connections.size()), deadline);
}
template <class Rep, class Period>
[[nodiscard]] std::vector<Connection*> wait(std::span<Connection* const> connections,
                                            std::chrono::duration<Rep, Period> timeout) {
  return wait(connections, Deadline::after(timeout));
}
template <class Rep, class Period>
[[nodiscard]] std::vector<Connection*> wait(std::initializer_list<Connection*> connections,
                                            std::chrono::duration<Rep, Period> timeout) {
  return wait(connections, Deadline::after(timeout));
}

// Python's `multiprocessing.reduction.send_handle` / `recv_handle`: pass an open descriptor to
// the process at the other end of a Unix-socket connection (a duplex Pipe, or a Unix
// Listener/Client), which receives its own duplicate (SCM_RIGHTS; the wire format is Python's,
// so either end may be Python). `send_handle` does not give up `fd`; `recv_handle` returns a new
// O_CLOEXEC descriptor that the caller owns and must close. Use them between messages only: the
// descriptor travels with a one-byte message of its own. Throws std::system_error for a
// connection that is not a Unix socket; `recv_handle` throws EOFError when the peer is closed and
// mproc::Error (Python's RuntimeError) when the data arrived without a descriptor.
void send_handle(Connection& connection, int fd);
[[nodiscard]] int recv_handle(Connection& connection);

// A whole Connection handed to another process over `via` (Python pickling a Connection to send
// it): the receiver gets a duplicate with the same `readable`/`writable` access. `connection`
// stays open here. Throws as send_handle/recv_handle.
void send_connection(Connection& via, const Connection& connection);
[[nodiscard]] Connection recv_connection(Connection& via);

// Python's `multiprocessing.Pipe(duplex)`: a connected pair. Duplex: a Unix stream socketpair, both
// ends read and write. Not duplex: a pipe(2); the first end only reads, the second only writes.
[[nodiscard]] std::pair<Connection, Connection> Pipe(bool duplex = true);

}  // namespace mproc
