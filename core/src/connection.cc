#include "mproc/connection.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>

#include "mproc/errors.h"

#include "os_error.h"
#include "poll_until.h"

namespace mproc {
namespace {

// Python writes the 4-byte form for anything up to INT32_MAX and -1 + 8 bytes beyond.
constexpr std::uint64_t kMaxShortFrame = 0x7fffffff;
constexpr std::size_t kMaxHeader = 12;

void put_be32(std::byte* out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) out[i] = static_cast<std::byte>(v & 0xff);
}
void put_be64(std::byte* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<std::byte>(v & 0xff);
}
std::uint64_t get_be(const std::byte* in, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint64_t>(in[i]);
  return v;
}

// Blocks SIGPIPE in this thread for the duration of a write to a pipe, so that a reader that went
// away shows up as EPIPE instead of killing the process; a SIGPIPE our write raised is then
// consumed before the mask is restored (the recipe of the Linux pipe(7)/signal(7) man pages).
// A SIGPIPE that was already pending before the write is left alone.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
    if (sigismember(&old_mask_, SIGPIPE) == 1) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  void got_epipe() noexcept { got_epipe_ = true; }
  ~SigpipeBlock() {
    if (got_epipe_ && !was_pending_) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_set_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  sigset_t pipe_set_{};
  sigset_t old_mask_{};
  bool was_pending_ = false;
  bool got_epipe_ = false;
};

[[noreturn]] void throw_closed() { detail::throw_errno(EBADF, "use a closed connection"); }

// Writes all of `iov[0..count)`, looping over partial writes.
void write_all(int fd, bool is_socket, iovec* iov, int count) {
  while (count > 0) {
    ssize_t n;
    if (is_socket) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(count);
      n = detail::retry_on_eintr([&] { return ::sendmsg(fd, &msg, MSG_NOSIGNAL); });
    } else {
      n = detail::retry_on_eintr([&] { return ::writev(fd, iov, count); });
    }
    if (n < 0) detail::throw_errno("send a message on the connection");
    auto left = static_cast<std::size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

}  // namespace

Connection::Connection(int fd, bool readable, bool writable) {
  if (fd < 0) throw ValueError("invalid handle");
  if (!readable && !writable)
    throw ValueError("at least one of `readable` and `writable` must be true");
  fd_ = fd;
  readable_ = readable;
  writable_ = writable;
  struct stat st {};
  is_socket_ = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

void Connection::adopt(int fd, bool readable, bool writable) {
  close();
  *this = Connection(fd, readable, writable);
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      readable_(std::exchange(other.readable_, false)),
      writable_(std::exchange(other.writable_, false)),
      is_socket_(other.is_socket_) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    readable_ = std::exchange(other.readable_, false);
    writable_ = std::exchange(other.writable_, false);
    is_socket_ = other.is_socket_;
  }
  return *this;
}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  // close(2) is not retried on EINTR: on Linux the descriptor is gone either way.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int Connection::release() noexcept { return std::exchange(fd_, -1); }

int Connection::fileno() const {
  if (fd_ < 0) throw_closed();
  return fd_;
}

void Connection::check_readable() const {
  if (fd_ < 0) throw_closed();
  if (!readable_) detail::throw_errno(EBADF, "receive on a write-only connection");
}

void Connection::check_writable() const {
  if (fd_ < 0) throw_closed();
  if (!writable_) detail::throw_errno(EBADF, "send on a read-only connection");
}

void Connection::send_bytes(std::span<const std::byte> buf, std::int64_t offset,
                            std::optional<std::int64_t> size) {
  check_writable();
  auto n = static_cast<std::uint64_t>(buf.size());
  if (offset < 0) throw ValueError("offset is negative");
  if (n < static_cast<std::uint64_t>(offset)) throw ValueError("buffer length < offset");
  std::uint64_t count = n - static_cast<std::uint64_t>(offset);
  if (size) {
    if (*size < 0) throw ValueError("size is negative");
    if (static_cast<std::uint64_t>(offset) + static_cast<std::uint64_t>(*size) > n)
      throw ValueError("buffer length < offset + size");
    count = static_cast<std::uint64_t>(*size);
  }
  send_frame(buf.data() + offset, static_cast<std::size_t>(count));
}

void Connection::send_bytes(std::string_view buf, std::int64_t offset,
                            std::optional<std::int64_t> size) {
  send_bytes(std::as_bytes(std::span<const char>(buf.data(), buf.size())), offset, size);
}

void Connection::send_frame(const std::byte* data, std::size_t size) {
  // Header and payload leave in one writev, so a small message costs one system call and a TCP
  // peer never sees a header alone (Nagle).
  std::array<std::byte, kMaxHeader> header;
  std::size_t header_size = 4;
  if (size <= kMaxShortFrame) {
    put_be32(header.data(), static_cast<std::uint32_t>(size));
  } else {
    put_be32(header.data(), 0xffffffffu);
    put_be64(header.data() + 4, size);
    header_size = 12;
  }
  std::array<iovec, 2> iov{{{header.data(), header_size},
                            {const_cast<std::byte*>(data), size}}};  // writev does not write to it
  int count = size > 0 ? 2 : 1;
  if (is_socket_) {
    write_all(fd_, true, iov.data(), count);
    return;
  }
  SigpipeBlock block;
  try {
    write_all(fd_, false, iov.data(), count);
  } catch (const std::system_error& e) {
    if (e.code().value() == EPIPE) block.got_epipe();
    throw;
  }
}

namespace {

std::size_t read_upto(int fd, std::byte* dst, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    // read(2) moves at most about 2 GiB per call on Linux; the loop takes care of the rest.
    ssize_t r = detail::retry_on_eintr([&] { return ::read(fd, dst + got, n - got); });
    if (r < 0) detail::throw_errno("receive a message on the connection");
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

// How long a receive that finds nothing waits by polling before it blocks in read(). The peer of
// a request usually answers within microseconds, while waking up a process blocked in read()
// takes tens of microseconds on a virtual machine (measured here: a wake-up each way of a pipe
// round trip cost 45 us on one VM, 7 us on another); a wait that lasts longer costs this much
// CPU once.
constexpr auto kRecvSpin = std::chrono::microseconds(20);

void await_readable_briefly(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  const auto until = std::chrono::steady_clock::now() + kRecvSpin;
  do {
    if (::poll(&pfd, 1, 0) != 0) return;  // data, the end, or an error: read() reports it
  } while (std::chrono::steady_clock::now() < until);
}

}  // namespace

void Connection::recv_exact(void* dst, std::size_t n) {
  if (read_upto(fd_, static_cast<std::byte*>(dst), n) != n)
    detail::throw_errno(EPROTO, "receive a whole message: end of file during the message");
}

std::uint64_t Connection::recv_header() {
  std::array<std::byte, 8> buf;
  await_readable_briefly(fd_);
  std::size_t got = read_upto(fd_, buf.data(), 4);
  if (got == 0) throw EOFError("the connection was closed by its peer");
  if (got != 4) detail::throw_errno(EPROTO, "receive a whole message: end of file in a header");
  std::uint64_t size = get_be(buf.data(), 4);
  if (size == 0xffffffffu) {
    recv_exact(buf.data(), 8);
    size = get_be(buf.data(), 8);
  } else if (size > kMaxShortFrame) {
    detail::throw_errno(EPROTO, "receive a message: negative message length");
  }
  return size;
}

void Connection::bad_message_length() {
  // The payload is still in the channel: nothing sane can be read after it, so the reading side
  // is disabled, as Python does.
  if (writable_) {
    readable_ = false;
  } else {
    close();
  }
  detail::throw_errno(EMSGSIZE, "receive a message longer than maxlength (bad message length)");
}

std::string Connection::recv_bytes(std::optional<std::int64_t> maxlength) {
  check_readable();
  if (maxlength && *maxlength < 0) throw ValueError("negative maxlength");
  std::uint64_t size = recv_header();
  if (maxlength && size > static_cast<std::uint64_t>(*maxlength)) bad_message_length();
  std::string out;
  if (size > out.max_size()) bad_message_length();
  out.resize(static_cast<std::size_t>(size));
  recv_exact(out.data(), out.size());
  return out;
}

std::string Connection::recv_bytes(Deadline deadline, std::optional<std::int64_t> maxlength) {
  check_readable();
  if (!deadline.is_never() && !poll(deadline))
    throw TimeoutError("no message arrived on the connection before the deadline");
  return recv_bytes(maxlength);
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buf, std::int64_t offset) {
  check_readable();
  if (offset < 0) throw ValueError("negative offset");
  if (static_cast<std::uint64_t>(offset) > buf.size()) throw ValueError("offset too large");
  std::uint64_t size = recv_header();
  std::size_t room = buf.size() - static_cast<std::size_t>(offset);
  if (size <= room) {
    recv_exact(buf.data() + offset, static_cast<std::size_t>(size));
    return static_cast<std::size_t>(size);
  }
  std::string message;
  if (size > message.max_size()) bad_message_length();
  message.resize(static_cast<std::size_t>(size));
  recv_exact(message.data(), message.size());
  std::string what = "buffer too short: a message of " + std::to_string(size) +
                     " bytes does not fit in " + std::to_string(room) + " bytes";
  throw BufferTooShort(std::move(message), std::move(what));
}

std::size_t Connection::recv_bytes_into(std::span<char> buf, std::int64_t offset) {
  return recv_bytes_into(std::as_writable_bytes(buf), offset);
}

bool Connection::poll(Deadline deadline) const {
  check_readable();
  pollfd pfd{fd_, POLLIN, 0};
  if (detail::poll_until(&pfd, 1, deadline) == 0) return false;
  if (pfd.revents & POLLNVAL) detail::throw_errno(EBADF, "poll an invalid descriptor");
  return true;  // data, or the peer closed (then recv throws EOFError)
}

std::vector<Connection*> wait(std::span<Connection* const> connections, Deadline deadline) {
  std::vector<pollfd> pfds;
  pfds.reserve(connections.size());
  for (Connection* c : connections) {
    if (!c->readable()) detail::throw_errno(EBADF, "wait on a write-only connection");
    pfds.push_back({c->fileno(), POLLIN, 0});
  }
  std::vector<Connection*> ready;
  if (detail::poll_until(pfds.data(), pfds.size(), deadline) == 0) return ready;
  for (std::size_t i = 0; i < pfds.size(); ++i) {
    if (pfds[i].revents & POLLNVAL) detail::throw_errno(EBADF, "wait on an invalid descriptor");
    if (pfds[i].revents != 0) ready.push_back(connections[i]);
  }
  return ready;
}

void send_handle(Connection& connection, int fd) {
  // Python's sendfds: one byte (the count mod 256) carrying the descriptors as SCM_RIGHTS.
  char count = 1;
  iovec iov{&count, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  int sock = connection.fileno();
  if (detail::retry_on_eintr([&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL); }) < 0)
    detail::throw_errno("send a descriptor over the connection");
}

int recv_handle(Connection& connection) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  int sock = connection.fileno();
  ssize_t n = detail::retry_on_eintr([&] { return ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) detail::throw_errno("receive a descriptor over the connection");
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  if (n == 0 && fds.empty()) throw EOFError("the connection was closed by its peer");
  if (fds.size() != 1 || (msg.msg_flags & MSG_CTRUNC) != 0) {
    for (int fd : fds) ::close(fd);
    throw Error("received " + std::to_string(fds.size()) +
                " descriptors where one was expected (invalid data received)");
  }
  return fds[0];
}

void send_connection(Connection& via, const Connection& connection) {
  send_handle(via, connection.fileno());
  const char access =
      static_cast<char>((connection.readable() ? 1 : 0) | (connection.writable() ? 2 : 0));
  via.send_bytes(std::string_view(&access, 1));
}

Connection recv_connection(Connection& via) {
  Connection received(recv_handle(via));  // owns the descriptor while the access byte arrives
  std::string access = via.recv_bytes(1);
  if (access.size() != 1) throw Error("invalid data received for a connection");
  int fd = received.release();
  return Connection(fd, (access[0] & 1) != 0, (access[0] & 2) != 0);
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  if (duplex) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      detail::throw_errno("create a socket pair");
    return {Connection(sv[0]), Connection(sv[1])};
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) detail::throw_errno("create a pipe");
  return {Connection(fds[0], true, false), Connection(fds[1], false, true)};
}

}  // namespace mproc
