// mproc/listener.h
//
// `Listener` and `Client` connect processes that are not parent and child, through a Unix socket
// or TCP, like Python's `multiprocessing.connection.Listener` / `Client`; both give a
// `Connection` (connection.h), with Python's framing, so either side may be a Python program.
//
//   mproc::Listener listener("/tmp/my.sock", "secret");     // or "localhost:0", TcpAddress{...}
//   // another process:  mproc::Connection c = mproc::Client("/tmp/my.sock", "secret");
//   mproc::Connection conn = listener.accept();
//
// Addresses (`Address`): a Unix socket path (starting with '/', or '\0' for Linux's abstract
// namespace, or any string that is not `host:port`), or TCP: "host:port" ("[::1]:port" for IPv6)
// or `TcpAddress{host, port}`. Port 0 picks a free port, which `Listener::address()` reports.
//
// Authentication: with an `authkey`, `accept()` and `Client` run Python's HMAC challenge-response
// in both directions (`deliver_challenge` / `answer_challenge`). We challenge in Python 3.11's
// form (20 random bytes, answered with a raw HMAC-MD5), which every Python version answers, and
// accept `{digest}`-prefixed answers; we answer both the legacy challenge and the
// `{sha256}`-prefixed one of Python 3.12+ (tested against 3.11, 3.12 and 3.13). A wrong key
// throws AuthenticationError on both sides; the Listener stays usable. Unlike Python 3.11 and
// like 3.12+, an empty key still authenticates: only `std::nullopt` means "no authentication".
//
// Errors: OS failures (address in use, connection refused, no such host) are std::system_error;
// `accept()` on a closed listener is std::system_error(EBADF), as Python's OSError.
//
// Thread safety: a Listener may be closed from one thread while no other thread uses it; accept()
// from several threads at once works (the kernel hands each connection to one of them), but the
// handshake then runs in the accepting thread. Fork safety: the listening socket is O_CLOEXEC and
// is inherited by fork; only the process that created a Unix listener unlinks its socket file.
// Lifetime: the destructor closes the socket and removes the socket file of a Unix listener.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mproc/connection.h"
#include "mproc/deadline.h"

namespace mproc {

// A TCP endpoint; `host` is a name or a numeric IPv4/IPv6 address.
struct TcpAddress {
  std::string host = "localhost";
  std::uint16_t port = 0;
  bool operator==(const TcpAddress&) const = default;
};

// Where a Listener listens: a Unix socket path or a TCP endpoint.
class Address {
 public:
  // A string is TCP when it reads "host:port" (port all digits, "[v6]:port" for IPv6) and does
  // not start with '/', '.' or '\0'; anything else is a Unix socket path. An abstract name must
  // come as a std::string or string_view with its length: a C string ends at its leading '\0'.
  Address(std::string_view text);  // NOLINT(google-explicit-constructor): addresses are strings
  Address(const char* text) : Address(std::string_view(text)) {}         // NOLINT
  Address(const std::string& text) : Address(std::string_view(text)) {}  // NOLINT
  Address(TcpAddress tcp) : value_(std::move(tcp)) {}                    // NOLINT

  // A fresh Unix socket path in the temporary directory, like Python's `arbitrary_address`.
  [[nodiscard]] static Address arbitrary_unix();

  [[nodiscard]] bool is_unix() const noexcept { return value_.index() == 0; }
  [[nodiscard]] bool is_tcp() const noexcept { return value_.index() == 1; }
  [[nodiscard]] bool is_abstract() const noexcept {
    return is_unix() && !path().empty() && path()[0] == '\0';
  }
  // The Unix path (only when is_unix()).
  [[nodiscard]] const std::string& path() const { return std::get<0>(value_); }
  // The TCP endpoint (only when is_tcp()).
  [[nodiscard]] const TcpAddress& tcp() const { return std::get<1>(value_); }
  // The form the constructor parses: the path, or "host:port".
  [[nodiscard]] std::string to_string() const;
  // For messages: to_string(), but an abstract name's leading '\0' (which would end the message
  // wherever it is printed as a C string) shows as '@', as ss(8) prints it.
  [[nodiscard]] std::string display() const;
  bool operator==(const Address&) const = default;

 private:
  std::variant<std::string, TcpAddress> value_;
};

class Listener {
 public:
  // Binds and listens on `address` (a fresh Unix path when omitted). `authkey`: see the file
  // comment. `backlog` as listen(2) (Python's default is 1). Throws std::system_error when the
  // address is in use or cannot be bound.
  explicit Listener(const Address& address = Address::arbitrary_unix(),
                    std::optional<std::string> authkey = std::nullopt, int backlog = 1);
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // Waits for a client and returns the connection to it, after the handshake if there is an
  // authkey. Woken by a client connecting (one that connected, sent and closed before accept is
  // still delivered with its data). Throws AuthenticationError when the client's key is wrong
  // (that connection is closed, the listener stays usable), TimeoutError when `deadline` passes
  // with no client, std::system_error(EBADF) when the listener is closed. The deadline bounds the
  // wait for a client, not the handshake.
  [[nodiscard]] Connection accept() { return accept(Deadline::never()); }
  [[nodiscard]] Connection accept(Deadline deadline);
  template <class Rep, class Period>
  [[nodiscard]] Connection accept(std::chrono::duration<Rep, Period> timeout) {
    return accept(Deadline::after(timeout));
  }

  // Closes the socket and removes a Unix socket file; idempotent.
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return fd_ < 0; }
  // The bound address, with the real port when port 0 was asked for.
  [[nodiscard]] const Address& address() const noexcept { return address_; }
  [[nodiscard]] int fileno() const;

 private:
  int fd_ = -1;
  Address address_;
  std::optional<std::string> authkey_;
  pid_t unlink_owner_ = 0;  // the pid that removes the socket file (0: nothing to remove)
};

// Connects to a Listener at `address` and returns the connection, after the handshake if there is
// an authkey. Throws std::system_error (ECONNREFUSED, ENOENT, ...) when nothing listens there,
// AuthenticationError when the keys differ.
[[nodiscard]] Connection Client(const Address& address,
                                std::optional<std::string> authkey = std::nullopt);

// The two halves of Python's handshake, usable on any Connection. `deliver_challenge` sends a
// random challenge and checks the HMAC that comes back (accepting a raw HMAC-MD5 or a
// `{digest}`-prefixed one); `answer_challenge` answers a challenge (legacy or prefixed). Both
// throw AuthenticationError on a wrong or malformed response.
void deliver_challenge(Connection& connection, std::string_view authkey);
void answer_challenge(Connection& connection, std::string_view authkey);

}  // namespace mproc
