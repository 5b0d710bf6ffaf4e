// mproc and Python's multiprocessing.connection speak the same wire format and handshake: a
// Python Client talks to an mproc Listener, an mproc Client to a Python Listener, and a Python
// Connection reads an mproc Pipe end. Each test runs against every interpreter found: python3
// (3.11: HMAC-MD5 handshake) and any 3.12+ ("{sha256}"-prefixed handshake). Skipped when no
// python3 is installed.
#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/connection.h"
#include "mproc/errors.h"
#include "mproc/listener.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_child;
using test::wait_child;

// The interpreters to test against: `python3` (3.11 on the reference machine: the legacy HMAC-MD5
// handshake) and any Python 3.12+ that is installed as python3.12 / python3.13 or under pyenv
// (whose handshake is "{sha256}"-prefixed).
const std::vector<std::string>& pythons() {
  static const std::vector<std::string> found = [] {
    std::vector<std::string> out;
    auto works = [](const std::string& exe) {
      return std::system(
                 (exe + " -c 'import multiprocessing.connection' >/dev/null 2>&1").c_str()) == 0;
    };
    for (const char* exe : {"python3", "python3.12", "python3.13"})
      if (works(exe)) out.emplace_back(exe);
    const char* root = std::getenv("PYENV_ROOT");
    const char* home = std::getenv("HOME");
    std::string pattern =
        (root != nullptr ? std::string(root)
                         : std::string(home != nullptr ? home : "/root") + "/.pyenv") +
        "/versions/3.1[2-9]*/bin/python3";
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (std::size_t i = 0; i < g.gl_pathc; ++i)
        if (works(g.gl_pathv[i])) out.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    std::string names;
    for (const auto& exe : out) names += " " + exe;
    std::printf("[ interop  ] Python interpreters:%s\n", names.c_str());
    return out;
  }();
  return found;
}

bool have_python() { return !pythons().empty(); }

// Starts `python -c script args...`; its stdout goes to `stdout_fd` when that is not -1, and
// `keep_fd` (if not -1) stays open across exec under the same number.
pid_t start_python(const std::string& python, const std::string& script,
                   const std::vector<std::string>& args, int stdout_fd = -1, int keep_fd = -1) {
  return fork_child([&] {
    if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
    if (keep_fd >= 0) ::fcntl(keep_fd, F_SETFD, 0);
    std::vector<char*> argv{const_cast<char*>(python.c_str()), const_cast<char*>("-c"),
                            const_cast<char*>(script.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(python.c_str(), argv.data());
    return 127;
  });
}

// What the Python client does against our listener: exchanges messages of several sizes.
constexpr const char* kPythonClient = R"(
import sys
from multiprocessing.connection import Client
from multiprocessing import AuthenticationError
addr = sys.argv[1]
if ':' in addr and not addr.startswith('/'):
    host, port = addr.rsplit(':', 1)
    addr = (host, int(port))
key = sys.argv[2].encode() if len(sys.argv) > 2 else None
try:
    c = Client(addr, authkey=key)
except AuthenticationError:
    sys.exit(3)
c.send_bytes(b'hello from python')
assert c.recv_bytes() == b'hello from mproc'
assert c.recv_bytes() == b''
big = c.recv_bytes()
assert big == bytes(range(256)) * 4096, len(big)
c.send_bytes(big[::-1])
c.send_bytes(b'')
buf = bytearray(10)
n = c.recv_bytes_into(buf, 2)
assert n == 5 and bytes(buf[2:7]) == b'12345'
c.close()
)";

void serve_python_client(Listener& listener) {
  Connection conn = listener.accept(30s);
  EXPECT_EQ(conn.recv_bytes(10s), "hello from python");
  conn.send_bytes("hello from mproc");
  conn.send_bytes("");
  std::string big;
  for (int i = 0; i < 4096; ++i)
    for (int b = 0; b < 256; ++b) big.push_back(static_cast<char>(b));
  conn.send_bytes(big);
  EXPECT_EQ(conn.recv_bytes(10s), std::string(big.rbegin(), big.rend()));
  EXPECT_EQ(conn.recv_bytes(10s), "");
  conn.send_bytes("12345");
  EXPECT_THROW((void)conn.recv_bytes(10s), EOFError);
}

TEST(PythonInterop, APythonClientTalksToAnMprocUnixListenerWithAnAuthkey) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (const auto& python : pythons()) {
    SCOPED_TRACE(python);
    Listener listener(Address::arbitrary_unix(), "secret key");
    pid_t pid = start_python(python, kPythonClient, {listener.address().path(), "secret key"});
    serve_python_client(listener);
    EXPECT_EQ(wait_child(pid, 30s).code, 0);
  }
}

TEST(PythonInterop, APythonClientTalksToAnMprocTcpListenerWithoutAuthkey) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (const auto& python : pythons()) {
    SCOPED_TRACE(python);
    Listener listener(TcpAddress{"127.0.0.1", 0});
    pid_t pid = start_python(python, kPythonClient, {listener.address().to_string()});
    serve_python_client(listener);
    EXPECT_EQ(wait_child(pid, 30s).code, 0);
  }
}

TEST(PythonInterop, APythonClientWithTheWrongKeyIsRejectedOnBothSides) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (const auto& python : pythons()) {
    SCOPED_TRACE(python);
    Listener listener(Address::arbitrary_unix(), "right");
    pid_t pid = start_python(python, kPythonClient, {listener.address().path(), "wrong"});
    EXPECT_THROW((void)listener.accept(30s), AuthenticationError);
    EXPECT_EQ(wait_child(pid, 30s).code, 3);
  }
}

// The Python listener prints its address once it listens, then serves one client.
constexpr const char* kPythonListener = R"(
import sys
from multiprocessing.connection import Listener
family = sys.argv[1]
key = sys.argv[2].encode() if len(sys.argv) > 2 else None
addr = ('127.0.0.1', 0) if family == 'tcp' else None
with Listener(addr, family='AF_INET' if family == 'tcp' else 'AF_UNIX', authkey=key) as l:
    a = l.address
    print('%s:%d' % a if isinstance(a, tuple) else a, flush=True)
    with l.accept() as c:
        m = c.recv_bytes()
        c.send_bytes(m.upper())
        c.send_bytes(b'x' * 70000)
        assert c.recv_bytes() == b''
)";

std::string read_line(int fd) {
  std::string line;
  char ch = 0;
  while (::read(fd, &ch, 1) == 1 && ch != '\n') line.push_back(ch);
  return line;
}

void talk_to_python_listener(const std::string& python, const std::string& family,
                             std::optional<std::string> key) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  std::vector<std::string> args{family};
  if (key) args.push_back(*key);
  pid_t pid = start_python(python, kPythonListener, args, out[1]);
  ::close(out[1]);
  std::string address = read_line(out[0]);
  ::close(out[0]);
  ASSERT_FALSE(address.empty());
  Connection c = Client(address, key);
  c.send_bytes("shout");
  EXPECT_EQ(c.recv_bytes(10s), "SHOUT");
  EXPECT_EQ(c.recv_bytes(10s), std::string(70000, 'x'));
  c.send_bytes("");
  EXPECT_EQ(wait_child(pid, 30s).code, 0);
}

TEST(PythonInterop, AnMprocClientTalksToAPythonUnixListenerWithAnAuthkey) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (const auto& python : pythons()) {
    SCOPED_TRACE(python);
    talk_to_python_listener(python, "unix", "shared secret");
  }
}

TEST(PythonInterop, AnMprocClientTalksToAPythonTcpListenerWithAnAuthkey) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (const auto& python : pythons()) {
    SCOPED_TRACE(python);
    talk_to_python_listener(python, "tcp", "k");
  }
}

TEST(PythonInterop, AnMprocClientTalksToAPythonTcpListenerWithoutAuthkey) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (const auto& python : pythons()) {
    SCOPED_TRACE(python);
    talk_to_python_listener(python, "tcp", std::nullopt);
  }
}

TEST(PythonInterop, APythonConnectionReadsAndWritesAnMprocPipeEnd) {
  if (!have_python()) GTEST_SKIP() << "python3 is not installed";
  for (bool duplex : {true, false}) {
    auto [a, b] = Pipe(duplex);
    Connection& py_end = duplex ? b : a;  // non-duplex: Python reads, we write on b
    const char* script = R"(
import sys
from multiprocessing.connection import Connection
duplex = sys.argv[2] == '1'
c = Connection(int(sys.argv[1]), readable=True, writable=duplex)
msgs = [c.recv_bytes() for _ in range(3)]
assert msgs == [b'one', b'', b'z' * 100000], [len(m) for m in msgs]
if duplex:
    c.send_bytes(b'got them')
)";
    pid_t pid =
        start_python(pythons().front(), script,
                     {std::to_string(py_end.fileno()), duplex ? "1" : "0"}, -1, py_end.fileno());
    py_end.close();
    Connection& ours = duplex ? a : b;
    ours.send_bytes("one");
    ours.send_bytes("");
    ours.send_bytes(std::string(100000, 'z'));
    if (duplex) {
      EXPECT_EQ(ours.recv_bytes(10s), "got them");
    }
    EXPECT_EQ(wait_child(pid, 30s).code, 0) << "duplex=" << duplex;
  }
}

}  // namespace
}  // namespace mproc
