#include "mproc/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mproc/errors.h"

#include "os_error.h"
#include "poll_until.h"
#include "unique_fd.h"

namespace mproc {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint16_t parse_port(std::string_view digits) {
  unsigned long port = 0;
  for (char c : digits) {
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) throw ValueError("port out of range in address");
  }
  return static_cast<std::uint16_t>(port);
}

sockaddr_un unix_sockaddr(const std::string& path, socklen_t& len) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path))
    throw ValueError("Unix socket path empty or too long (at most " +
                     std::to_string(sizeof(sa.sun_path) - 1) + " bytes): " + path);
  std::memcpy(sa.sun_path, path.data(), path.size());
  // An abstract name is exactly its bytes; a path is NUL-terminated (sa is zero-filled).
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                               (path[0] == '\0' ? 0 : 1));
  return sa;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const noexcept { freeaddrinfo(ai); }
};

// The addresses of a TCP endpoint, IPv4 first: Python's AF_INET Listener and Client only speak
// IPv4, so "localhost" must mean 127.0.0.1 for a Python peer to meet us.
std::vector<const addrinfo*> resolve(const TcpAddress& tcp, bool passive,
                                     std::unique_ptr<addrinfo, AddrInfoDeleter>& holder) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  std::string port = std::to_string(tcp.port);
  int rc = ::getaddrinfo(tcp.host.empty() ? nullptr : tcp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 && tcp.host == "localhost") {
    // "localhost" is loopback by definition (RFC 6761), /etc/hosts or not: a minimal container
    // often has none.
    hints.ai_flags |= AI_NUMERICHOST;
    rc = ::getaddrinfo("127.0.0.1", port.c_str(), &hints, &res);
  }
  if (rc != 0) {
    if (rc == EAI_SYSTEM) detail::throw_errno("resolve host " + tcp.host);
    throw std::system_error(EHOSTUNREACH, std::generic_category(),
                            "cannot resolve host " + tcp.host + ": " + gai_strerror(rc));
  }
  holder.reset(res);
  std::vector<const addrinfo*> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) out.push_back(ai);
  std::stable_partition(out.begin(), out.end(),
                        [](const addrinfo* ai) { return ai->ai_family == AF_INET; });
  return out;
}

void set_nodelay(int fd) {
  // Every message leaves in one write, so Nagle's algorithm could only add latency.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// connect(2) that survives EINTR: the connection then completes asynchronously; wait for it.
int connect_fd(int fd, const sockaddr* sa, socklen_t len) {
  if (::connect(fd, sa, len) == 0) return 0;
  if (errno != EINTR) return errno;
  pollfd pfd{fd, POLLOUT, 0};
  while (::poll(&pfd, 1, -1) < 0) {
    if (errno != EINTR) return errno;
  }
  int err = 0;
  socklen_t err_len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) return errno;
  return err;
}

}  // namespace

Address::Address(std::string_view text) {
  bool path_like = text.empty() || text[0] == '/' || text[0] == '.' || text[0] == '\0';
  if (!path_like) {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && colon > 0 && all_digits(text.substr(colon + 1))) {
      std::string_view host = text.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      } else if (host.find(':') != std::string_view::npos ||
                 host.find('/') != std::string_view::npos) {
        value_ = std::string(text);
        return;
      }
      value_ = TcpAddress{std::string(host), parse_port(text.substr(colon + 1))};
      return;
    }
  }
  value_ = std::string(text);
}

Address Address::arbitrary_unix() {
  static std::atomic<unsigned> counter{0};
  const char* dir = std::getenv("TMPDIR");
  std::string base = dir != nullptr && dir[0] == '/' ? dir : "/tmp";
  unsigned char noise[4];
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  unsigned salt = 0;
  if (fd >= 0) {
    if (::read(fd, noise, sizeof(noise)) == static_cast<ssize_t>(sizeof(noise)))
      std::memcpy(&salt, noise, sizeof(salt));
    ::close(fd);
  }
  char name[96];
  std::snprintf(name, sizeof(name), "/mproc-listener-%d-%u-%08x", static_cast<int>(::getpid()),
                counter.fetch_add(1), salt);
  return Address(base + name);
}

std::string Address::to_string() const {
  if (is_unix()) return path();
  const TcpAddress& t = tcp();
  if (t.host.find(':') != std::string::npos) return "[" + t.host + "]:" + std::to_string(t.port);
  return t.host + ":" + std::to_string(t.port);
}

std::string Address::display() const {
  std::string text = to_string();
  if (is_abstract()) text[0] = '@';
  return text;
}

Listener::Listener(const Address& address, std::optional<std::string> authkey, int backlog)
    : address_(address), authkey_(std::move(authkey)) {
  detail::UniqueFd sock;
  if (address.is_unix()) {
    socklen_t len = 0;
    sockaddr_un sa = unix_sockaddr(address.path(), len);
    sock.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) detail::throw_errno("create a Unix socket");
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0)
      detail::throw_errno("bind a Unix socket to " + address.display());
    if (!address.is_abstract()) unlink_owner_ = ::getpid();
  } else {
    std::unique_ptr<addrinfo, AddrInfoDeleter> holder;
    int last_error = EADDRNOTAVAIL;
    for (const addrinfo* ai : resolve(address.tcp(), true, holder)) {
      detail::UniqueFd s(::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!s) {
        last_error = errno;
        continue;
      }
      int one = 1;
      ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (::bind(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
        // In use is final: falling back to "localhost"'s IPv6 address would hand out a second,
        // different endpoint under the same name (and Python peers only speak IPv4).
        if (errno == EADDRINUSE) detail::throw_errno("bind a TCP socket to " + address.display());
        last_error = errno;
        continue;
      }
      sock = std::move(s);
      break;
    }
    if (!sock) detail::throw_errno(last_error, "bind a TCP socket to " + address.display());
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof(bound);
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0)
      detail::throw_errno("get the bound address");
    std::uint16_t port = bound.ss_family == AF_INET
                             ? ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port)
                             : ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    address_ = TcpAddress{address.tcp().host, port};
  }
  if (::listen(sock.get(), backlog) != 0) {
    int err = errno;
    if (unlink_owner_ != 0) ::unlink(address_.path().c_str());
    detail::throw_errno(err, "listen on " + address_.display());
  }
  fd_ = sock.release();
}

Listener::Listener(Listener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      address_(other.address_),
      authkey_(std::move(other.authkey_)),
      unlink_owner_(std::exchange(other.unlink_owner_, 0)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    address_ = other.address_;
    authkey_ = std::move(other.authkey_);
    unlink_owner_ = std::exchange(other.unlink_owner_, 0);
  }
  return *this;
}

Listener::~Listener() { close(); }

void Listener::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // Only the creating process removes the file: a forked child dropping its inherited copy must
  // not pull the address from under its parent.
  if (unlink_owner_ != 0 && unlink_owner_ == ::getpid()) {
    if (::unlink(address_.path().c_str()) != 0 && errno != ENOENT)
      detail::report_error("cannot remove the socket file " + address_.path());
  }
  unlink_owner_ = 0;
}

int Listener::fileno() const {
  if (fd_ < 0) detail::throw_errno(EBADF, "use a closed listener");
  return fd_;
}

Connection Listener::accept(Deadline deadline) {
  if (fd_ < 0) detail::throw_errno(EBADF, "accept on a closed listener");
  // The listening socket is non-blocking, so that a client taken by another thread between our
  // poll and our accept sends us back to waiting instead of blocking past the deadline.
  int fd = -1;
  for (;;) {
    fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) break;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_errno("accept a connection");
    pollfd pfd{fd_, POLLIN, 0};
    if (detail::poll_until(&pfd, 1, deadline) == 0)
      throw TimeoutError("no client connected before the deadline");
  }
  if (address_.is_tcp()) set_nodelay(fd);
  Connection conn(fd);
  if (authkey_) {
    deliver_challenge(conn, *authkey_);
    answer_challenge(conn, *authkey_);
  }
  return conn;
}

Connection Client(const Address& address, std::optional<std::string> authkey) {
  detail::UniqueFd sock;
  if (address.is_unix()) {
    socklen_t len = 0;
    sockaddr_un sa = unix_sockaddr(address.path(), len);
    sock.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) detail::throw_errno("create a Unix socket");
    if (int err = connect_fd(sock.get(), reinterpret_cast<const sockaddr*>(&sa), len); err != 0)
      detail::throw_errno(err, "connect to " + address.display());
  } else {
    std::unique_ptr<addrinfo, AddrInfoDeleter> holder;
    int last_error = ECONNREFUSED;
    for (const addrinfo* ai : resolve(address.tcp(), false, holder)) {
      detail::UniqueFd s(::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!s) {
        last_error = errno;
        continue;
      }
      if (int err = connect_fd(s.get(), ai->ai_addr, ai->ai_addrlen); err != 0) {
        last_error = err;
        continue;
      }
      sock = std::move(s);
      break;
    }
    if (!sock) detail::throw_errno(last_error, "connect to " + address.display());
    set_nodelay(sock.get());
  }
  Connection conn(sock.release());
  if (authkey) {
    answer_challenge(conn, *authkey);
    deliver_challenge(conn, *authkey);
  }
  return conn;
}

}  // namespace mproc
