// Seed u: the Connection API, method by method, with a child process as the peer.
//
//   connection.close()                        closes the connection
//   connection.fileno()                       the integer file descriptor
//   connection.poll([timeout])                whether data can be read; no timeout: at once;
//                                             None: wait for ever
//   connection.send(obj)                      sends an object
//   connection.send_bytes(buffer[,offset,size])   sends a slice of a byte buffer
//   connection.recv()                         receives an object; EOFError if the other end is
//                                             closed and nothing is left
//   connection.recv_bytes([maxlength])        receives one whole byte message; longer than
//                                             maxlength: IOError, and the connection can no
//                                             longer be read
//   connection.recv_bytes_into(buffer[,offset])   receives into a writable buffer at offset and
//                                             returns the byte count; too small: BufferTooShort
//
// and the example of Python's documentation for recv_bytes_into:
//
//   >>> arr1 = array.array('i', range(5))
//   >>> arr2 = array.array('i', [0] * 10)
//   >>> a.send_bytes(arr1)
//   >>> count = b.recv_bytes_into(arr2)
//   >>> assert count == len(arr1) * arr1.itemsize
//   >>> arr2
//   array('i', [0, 1, 2, 3, 4, 0, 0, 0, 0, 0])
#include <array>
#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <system_error>

#include "mproc/connection.h"
#include "mproc/errors.h"
#include "mproc/process.h"

namespace mp = mproc;
using namespace std::chrono_literals;

void peer(mp::Connection& conn) {
  (void)conn.recv_bytes();  // wait until the parent has polled an empty connection
  const std::string text = "hello world";
  conn.send_bytes(text, 6, 5);  // "world"
  const std::array<int, 5> arr1{0, 1, 2, 3, 4};
  conn.send_bytes(std::as_bytes(std::span(arr1)));
  conn.send_bytes("a message too long for a small buffer");
  conn.send(std::string("an object"));
  conn.send_bytes("0123456789");
}

const char* yes_no(bool b) { return b ? "True" : "False"; }

int main() {
  auto [a, b] = mp::Pipe();
  mp::Process p([&] { peer(b); });
  p.start();
  b.close();

  std::printf("fileno() is a descriptor: %s\n", yes_no(a.fileno() >= 0));
  std::printf("poll(): %s\n", yes_no(a.poll()));
  auto t0 = std::chrono::steady_clock::now();
  bool ready = a.poll(300ms);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("poll(0.3): %s after at least 0.2 s: %s\n", yes_no(ready), yes_no(waited >= 0.2));
  a.send_bytes("go");
  std::printf("poll(None): %s\n", yes_no(a.poll(mp::Connection::forever)));

  std::printf("send_bytes(b'hello world', 6, 5) -> recv_bytes(): %s\n", a.recv_bytes().c_str());

  std::array<int, 10> arr2{};
  std::size_t count = a.recv_bytes_into(std::as_writable_bytes(std::span(arr2)));
  std::printf("recv_bytes_into(arr2) -> %zu bytes:", count);
  for (int v : arr2) std::printf(" %d", v);
  std::printf("\n");

  std::array<char, 8> small{};
  try {
    (void)a.recv_bytes_into(std::span<char>(small), 2);
  } catch (const mp::BufferTooShort& e) {
    std::printf("recv_bytes_into(6 free bytes): BufferTooShort holding '%s'\n",
                e.message().c_str());
  }

  std::printf("recv(): %s\n", a.recv<std::string>().c_str());

  try {
    (void)a.recv_bytes(4);
  } catch (const std::system_error& e) {
    std::printf("recv_bytes(maxlength=4) on 10 bytes: error (%s), readable now: %s\n",
                e.code() == std::errc::message_size ? "message too long" : "other",
                yes_no(a.readable()));
  }

  a.close();
  std::printf("closed after close(): %s\n", yes_no(a.closed()));
  try {
    (void)a.poll();
  } catch (const std::system_error& e) {
    std::printf("poll() after close(): error (%s)\n",
                e.code() == std::errc::bad_file_descriptor ? "handle is closed" : "other");
  }
  p.join();
  return 0;
}
