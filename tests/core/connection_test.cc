// Connection and Pipe: CPython's _TestConnection, _TestPoll, TestWait, TestInvalidHandle and
// TestIgnoreEINTR (parity section 6), plus the wire format shared with Python.
#include "mproc/connection.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/wait.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_and_wait;
using test::fork_child;
using test::seconds_to_run;
using test::wait_child;

// Python's timing rule: no earlier than the timeout minus 100 ms; "not much later" is generous
// here because other builds load this 2-core machine.
constexpr double kEarly = 0.1;
constexpr double kLate = 1.5;

int errno_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// A child that echoes every message back until EOF.
pid_t start_echo_child(Connection& parent_end, Connection& child_end) {
  return fork_child([&] {
    parent_end.close();
    try {
      for (;;) child_end.send_bytes(child_end.recv_bytes());
    } catch (const EOFError&) {
      return 0;
    }
  });
}

TEST(Connection, SendBytesRecvBytesRoundTripThroughAnEchoChild) {
  auto [a, b] = Pipe();
  pid_t pid = start_echo_child(a, b);
  b.close();
  for (const std::string& msg : std::vector<std::string>{"hello", "", std::string("with\0nul", 8),
                                                         std::string(100000, 'x')}) {
    a.send_bytes(msg);
    EXPECT_EQ(a.recv_bytes(), msg);
  }
  a.close();
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Connection, SendRecvRoundTripObjectsThroughAnEchoChild) {
  auto [a, b] = Pipe();
  pid_t pid = start_echo_child(a, b);
  b.close();
  a.send(std::tuple<int, std::string>{4, "five"});
  EXPECT_EQ((a.recv<std::tuple<int, std::string>>()), (std::tuple<int, std::string>{4, "five"}));
  const std::vector<std::optional<std::string>> v = {"x", std::nullopt, "z"};
  a.send(v);
  EXPECT_EQ(a.recv<std::vector<std::optional<std::string>>>(), v);
  a.send(std::map<std::string, double>{{"pi", 3.14}});
  EXPECT_EQ((a.recv<std::map<std::string, double>>(1s)),
            (std::map<std::string, double>{{"pi", 3.14}}));
  a.close();
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Connection, RecvOfTheWrongTypeThrowsSerializationError) {
  auto [a, b] = Pipe();
  a.send(std::string("not an int"));
  EXPECT_THROW((void)b.recv<std::vector<double>>(), SerializationError);
}

TEST(Connection, RecvOnAClosedPeerThrowsEOFError) {
  auto [a, b] = Pipe();
  a.send(42);
  a.close();
  EXPECT_EQ(b.recv<int>(), 42);
  EXPECT_THROW((void)b.recv<int>(), EOFError);
}

TEST(Connection, SixteenMebibyteMessageRoundTrips) {
  auto [a, b] = Pipe();
  pid_t pid = start_echo_child(a, b);
  b.close();
  std::string big(16 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 12));
  a.send_bytes(big);
  std::string back = a.recv_bytes();
  EXPECT_TRUE(back == big);
  a.close();
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Connection, RecvBytesIntoReturnsTheCountAndWritesAtTheOffset) {
  auto [a, b] = Pipe();
  a.send_bytes("abcdef");
  std::array<char, 16> buf;
  buf.fill('.');
  EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf)), 6u);
  EXPECT_EQ(std::string(buf.data(), 8), "abcdef..");
  a.send_bytes("xyz");
  EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf), 10), 3u);
  EXPECT_EQ(std::string(buf.data(), 14), "abcdef....xyz.");
  std::vector<std::byte> bytes(3);
  a.send_bytes("123");
  EXPECT_EQ(b.recv_bytes_into(std::span<std::byte>(bytes)), 3u);
  EXPECT_EQ(bytes[2], std::byte{'3'});
}

TEST(Connection, RecvBytesIntoATooSmallBufferThrowsBufferTooShortWithTheWholeMessage) {
  auto [a, b] = Pipe();
  a.send_bytes("0123456789");
  a.send_bytes("next");
  std::array<char, 8> buf{};
  try {
    (void)b.recv_bytes_into(std::span<char>(buf), 2);
    FAIL() << "no BufferTooShort";
  } catch (const BufferTooShort& e) {
    EXPECT_EQ(e.message(), "0123456789");
  }
  EXPECT_EQ(b.recv_bytes(), "next");  // the long message was consumed, framing intact
}

TEST(Connection, RecvBytesIntoWithABadOffsetThrowsValueError) {
  auto [a, b] = Pipe();
  std::array<char, 4> buf{};
  EXPECT_THROW((void)b.recv_bytes_into(std::span<char>(buf), -1), ValueError);
  EXPECT_THROW((void)b.recv_bytes_into(std::span<char>(buf), 5), ValueError);
}

TEST(Connection, PollWithoutTimeoutOrWithANegativeOneReturnsFalseAtOnce) {
  auto [a, b] = Pipe();
  bool r1 = true, r2 = true;
  double t = seconds_to_run([&] {
    r1 = b.poll();
    r2 = b.poll(-1s);
  });
  EXPECT_FALSE(r1);
  EXPECT_FALSE(r2);
  EXPECT_LT(t, 0.25);  // "at once", with room for a loaded machine
}

TEST(Connection, PollWithATimeoutWaitsAboutTheTimeout) {
  auto [a, b] = Pipe();
  bool r = true;
  double t = seconds_to_run([&] { r = b.poll(500ms); });
  EXPECT_FALSE(r);
  EXPECT_GE(t, 0.5 - kEarly);
  EXPECT_LT(t, 0.5 + kLate);
}

TEST(Connection, PollReturnsTrueAtOnceWhenAMessageIsWaiting) {
  auto [a, b] = Pipe();
  a.send_bytes("x");
  bool r = false;
  double t = seconds_to_run([&] { r = b.poll(10s); });
  EXPECT_TRUE(r);
  EXPECT_LT(t, 0.5);
}

TEST(Connection, PollForeverIsWokenByAMessageFromAnotherProcess) {
  auto [a, b] = Pipe();
  pid_t pid = fork_child([&] {
    ::usleep(200000);
    a.send_bytes("late");
    return 0;
  });
  EXPECT_TRUE(b.poll(Connection::forever));
  EXPECT_EQ(b.recv_bytes(), "late");
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Connection, RecvAfterThePeerClosedThrowsEOFError) {
  auto [a, b] = Pipe();
  a.send_bytes("last");
  a.close();
  EXPECT_TRUE(b.poll());  // EOF is "ready"
  EXPECT_EQ(b.recv_bytes(), "last");
  EXPECT_THROW((void)b.recv_bytes(), EOFError);
  std::array<char, 4> buf{};
  EXPECT_THROW((void)b.recv_bytes_into(std::span<char>(buf)), EOFError);
}

TEST(Connection, RecvSeesEOFWhenTheLastWriterInAnotherProcessCloses) {
  auto [r, w] = Pipe(false);
  pid_t pid = fork_child([&] {
    r.close();
    w.send_bytes("from child");
    return 0;  // _exit closes w
  });
  w.close();
  EXPECT_EQ(r.recv_bytes(), "from child");
  EXPECT_THROW((void)r.recv_bytes(), EOFError);
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Connection, DuplexEndsAreReadableAndWritableAndHaveADescriptor) {
  auto [a, b] = Pipe();
  EXPECT_TRUE(a.readable());
  EXPECT_TRUE(a.writable());
  EXPECT_TRUE(b.readable());
  EXPECT_TRUE(b.writable());
  EXPECT_GE(a.fileno(), 0);
  EXPECT_NE(a.fileno(), b.fileno());
  b.send_bytes("back");
  EXPECT_EQ(a.recv_bytes(), "back");
}

TEST(Pipe, NonDuplexGivesAReaderAndAWriter) {
  auto [r, w] = Pipe(false);
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  EXPECT_FALSE(w.readable());
  EXPECT_TRUE(w.writable());
  w.send_bytes("one way");
  EXPECT_EQ(r.recv_bytes(), "one way");
}

TEST(Pipe, NonDuplexEndsRefuseTheWrongDirection) {
  auto [r, w] = Pipe(false);
  EXPECT_EQ(errno_of([&] { r.send_bytes("x"); }), EBADF);
  EXPECT_EQ(errno_of([&] { (void)w.recv_bytes(); }), EBADF);
  EXPECT_EQ(errno_of([&] { (void)w.poll(); }), EBADF);
}

TEST(Pipe, DescriptorsAreCloseOnExec) {
  for (bool duplex : {true, false}) {
    auto [a, b] = Pipe(duplex);
    EXPECT_TRUE(::fcntl(a.fileno(), F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(::fcntl(b.fileno(), F_GETFD) & FD_CLOEXEC);
  }
}

TEST(Connection, ParentMayCloseTheChildsEndRightAfterForking) {
  auto [a, b] = Pipe();
  pid_t pid = fork_child([&] {
    a.close();
    b.send_bytes(b.recv_bytes() + " back");
    return 0;
  });
  b.close();
  a.send_bytes("there and");
  EXPECT_EQ(a.recv_bytes(), "there and back");
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Connection, SendBytesSendsTheSliceGivenByOffsetAndSize) {
  auto [a, b] = Pipe();
  const std::string msg = "abcdefghijklmnopqrstuvwxyz";
  a.send_bytes(msg, 26);
  EXPECT_EQ(b.recv_bytes(), "");
  a.send_bytes(msg, 0, 0);
  EXPECT_EQ(b.recv_bytes(), "");
  a.send_bytes(msg, 3);
  EXPECT_EQ(b.recv_bytes(), msg.substr(3));
  a.send_bytes(msg, 21, 5);
  EXPECT_EQ(b.recv_bytes(), "vwxyz");
  a.send_bytes(std::as_bytes(std::span<const char>(msg.data(), msg.size())), 1, 2);
  EXPECT_EQ(b.recv_bytes(), "bc");
}

TEST(Connection, SendBytesWithABadOffsetOrSizeThrowsValueError) {
  auto [a, b] = Pipe();
  const std::string msg = "abcdefghijklmnopqrstuvwxyz";
  EXPECT_THROW(a.send_bytes(msg, 27), ValueError);
  EXPECT_THROW(a.send_bytes(msg, 22, 5), ValueError);
  EXPECT_THROW(a.send_bytes(msg, 26, 1), ValueError);
  EXPECT_THROW(a.send_bytes(msg, -1), ValueError);
  EXPECT_THROW(a.send_bytes(msg, 4, -1), ValueError);
  EXPECT_FALSE(b.poll());  // nothing was sent
}

TEST(Connection, CloseMakesItClosedAndEveryOperationThrowsEBADF) {
  auto [a, b] = Pipe();
  a.close();
  b.close();
  a.close();  // idempotent
  EXPECT_TRUE(a.closed());
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(errno_of([&] { (void)a.recv_bytes(); }), EBADF);
  EXPECT_EQ(errno_of([&] { a.send_bytes("x"); }), EBADF);
  EXPECT_EQ(errno_of([&] { (void)a.poll(); }), EBADF);
  EXPECT_EQ(errno_of([&] { (void)a.fileno(); }), EBADF);
}

TEST(Connection, ClosesItsDescriptorWhenDestroyed) {
  int fd = -1;
  {
    auto [a, b] = Pipe();
    fd = a.fileno();
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST(Connection, MovedFromConnectionIsClosed) {
  auto [a, b] = Pipe();
  Connection c = std::move(a);
  EXPECT_TRUE(a.closed());  // NOLINT(bugprone-use-after-move): the state is specified
  c.send_bytes("moved");
  EXPECT_EQ(b.recv_bytes(), "moved");
}

TEST(Connection, MessageLongerThanMaxlengthThrowsEMSGSIZEAndStopsReading) {
  auto [a, b] = Pipe();
  a.send_bytes("0123456789");
  EXPECT_EQ(errno_of([&] { (void)b.recv_bytes(5); }), EMSGSIZE);
  EXPECT_FALSE(b.readable());
  EXPECT_TRUE(b.writable());
  EXPECT_EQ(errno_of([&] { (void)b.recv_bytes(); }), EBADF);
  EXPECT_THROW((void)b.recv_bytes(-1), std::system_error);  // not readable any more

  auto [r, w] = Pipe(false);
  w.send_bytes("0123456789");
  EXPECT_EQ(r.recv_bytes(10), "0123456789");  // exactly maxlength is fine
  w.send_bytes("0123456789");
  EXPECT_EQ(errno_of([&] { (void)r.recv_bytes(9); }), EMSGSIZE);
  EXPECT_TRUE(r.closed());  // read-only: closed, as in Python
}

TEST(Connection, NegativeMaxlengthThrowsValueError) {
  auto [a, b] = Pipe();
  EXPECT_THROW((void)b.recv_bytes(-1), ValueError);
}

TEST(Connection, RecvBytesWithADeadlineThrowsTimeoutErrorAndConsumesNothing) {
  auto [a, b] = Pipe();
  double t = seconds_to_run([&] { EXPECT_THROW((void)b.recv_bytes(300ms), TimeoutError); });
  EXPECT_GE(t, 0.3 - kEarly);
  a.send_bytes("then");
  EXPECT_EQ(b.recv_bytes(1s), "then");
}

TEST(Connection, NegativeDescriptorOrNoDirectionIsAValueError) {
  EXPECT_THROW(Connection(-1), ValueError);
  auto [a, b] = Pipe();
  EXPECT_THROW(Connection(a.fileno(), false, false), ValueError);
}

TEST(Connection, PollOnABogusDescriptorThrowsInsteadOfCrashing) {
  Connection bogus(44977608);
  EXPECT_EQ(errno_of([&] { (void)bogus.poll(); }), EBADF);
  (void)bogus.release();
}

// --- the wire format (Python's multiprocessing.connection) ---

TEST(Wire, ASmallMessageIsAFourByteBigEndianLengthThenThePayload) {
  auto [a, b] = Pipe();
  a.send_bytes("hi!");
  std::array<unsigned char, 16> raw{};
  ASSERT_EQ(::read(b.fileno(), raw.data(), raw.size()), 7);
  EXPECT_EQ(std::vector<unsigned char>(raw.begin(), raw.begin() + 7),
            (std::vector<unsigned char>{0, 0, 0, 3, 'h', 'i', '!'}));
  a.send_bytes(std::string(0x10203, 'z'));
  ASSERT_EQ(::read(b.fileno(), raw.data(), 4), 4);
  EXPECT_EQ(std::vector<unsigned char>(raw.begin(), raw.begin() + 4),
            (std::vector<unsigned char>{0, 1, 2, 3}));
}

// The header a writer puts before a message of `size` bytes (the payload is untouched anonymous
// memory, so no real memory backs it); the writer child dies of EPIPE once we stop reading.
std::vector<unsigned char> header_sent_for(std::size_t size, std::size_t header_bytes) {
  void* mem = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return {};
  auto [r, w] = Pipe(false);
  pid_t pid = fork_child([&] {
    r.close();
    try {
      w.send_bytes(std::span<const std::byte>(static_cast<const std::byte*>(mem), size));
    } catch (const std::system_error& e) {
      return e.code().value() == EPIPE ? 0 : 1;
    }
    return 2;
  });
  w.close();
  std::vector<unsigned char> header(header_bytes);
  std::size_t got = 0;
  while (got < header_bytes) {
    ssize_t n = ::read(r.fileno(), header.data() + got, header_bytes - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  r.close();
  EXPECT_EQ(wait_child(pid).code, 0);
  ::munmap(mem, size);
  return header;
}

TEST(Wire, AMessageOverTwoGibibytesGetsMinusOneAndAnEightByteLength) {
  EXPECT_EQ(header_sent_for(0x80000001u, 12),
            (std::vector<unsigned char>{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 1}));
}

TEST(Wire, AMessageOfExactlyIntMaxBytesKeepsTheFourByteLength) {
  EXPECT_EQ(header_sent_for(0x7fffffffu, 4), (std::vector<unsigned char>{0x7f, 0xff, 0xff, 0xff}));
}

TEST(Wire, TheSixtyFourBitLengthFormIsAccepted) {
  // Python sends -1 and an 8-byte length for messages over 2 GiB; any size may use it.
  auto [a, b] = Pipe();
  const unsigned char frame[] = {0xff, 0xff, 0xff, 0xff, 0,   0,   0,   0,  0,
                                 0,    0,    5,    'h',  'e', 'l', 'l', 'o'};
  ASSERT_EQ(::write(a.fileno(), frame, sizeof(frame)), static_cast<ssize_t>(sizeof(frame)));
  EXPECT_EQ(b.recv_bytes(), "hello");
}

TEST(Wire, ANegativeLengthIsAProtocolError) {
  auto [a, b] = Pipe();
  const unsigned char frame[] = {0xff, 0xff, 0xff, 0xfe};
  ASSERT_EQ(::write(a.fileno(), frame, sizeof(frame)), 4);
  EXPECT_EQ(errno_of([&] { (void)b.recv_bytes(); }), EPROTO);
}

TEST(Wire, EndOfFileInsideAMessageIsAProtocolErrorNotEOF) {
  auto [a, b] = Pipe();
  const unsigned char frame[] = {0, 0, 0, 10, 'a', 'b'};
  ASSERT_EQ(::write(a.fileno(), frame, sizeof(frame)), 6);
  a.close();
  EXPECT_EQ(errno_of([&] { (void)b.recv_bytes(); }), EPROTO);
}

// --- SIGPIPE ---

TEST(Connection, SendingToAPipeWithoutReaderThrowsEPIPEAndRaisesNoSignal) {
  auto r = fork_and_wait([] {
    // Default SIGPIPE disposition: a raised SIGPIPE would kill this child.
    ::signal(SIGPIPE, SIG_DFL);
    for (bool duplex : {false, true}) {
      auto [a, b] = Pipe(duplex);
      Connection& reader = a;
      Connection& writer = duplex ? a : b;
      if (duplex)
        b.close();
      else
        reader.close();
      try {
        writer.send_bytes("nobody listens");
        return 1;
      } catch (const std::system_error& e) {
        if (e.code().value() != EPIPE) return 2;
      }
    }
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE) == 1 ? 3 : 0;
  });
  EXPECT_EQ(r.code, 0);
}

TEST(Connection, AnAlreadyPendingSigpipeIsLeftPending) {
  auto r = fork_and_wait([] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::raise(SIGPIPE);
    auto [rd, wr] = Pipe(false);
    rd.close();
    try {
      wr.send_bytes("x");
    } catch (const std::system_error&) {
    }
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE) == 1 ? 0 : 1;
  });
  EXPECT_EQ(r.code, 0);
}

// --- _TestPoll ---

TEST(Poll, IsTrueAfterAnEmptyMessageAndDoesNotConsumeIt) {
  auto [a, b] = Pipe();
  a.send_bytes("");
  EXPECT_TRUE(b.poll(1s));
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(b.recv_bytes(), "");
  EXPECT_FALSE(b.poll());
}

TEST(Poll, ASequenceWithEmptyMessagesArrivesIntactAndInOrder) {
  auto [a, b] = Pipe();
  const std::vector<std::string> msgs = {"hello", "", "a", "b", "", "c", "", ""};
  pid_t pid = fork_child([&] {
    b.close();
    for (const auto& m : msgs) a.send_bytes(m);
    return 0;
  });
  a.close();
  std::vector<std::string> got;
  for (;;) {
    ASSERT_TRUE(b.poll(10s));
    try {
      got.push_back(b.recv_bytes());
    } catch (const EOFError&) {
      break;
    }
  }
  EXPECT_EQ(got, msgs);
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Poll, PollingInAnotherProcessNeverPullsInPartOfAMessage) {
  auto [r, w] = Pipe(false);
  pid_t pid = fork_child([&] {
    w.close();
    (void)r.poll(3s);
    return 0;
  });
  ::usleep(300000);
  const std::set<std::string> sent = {"first", "second"};
  for (const auto& m : sent) w.send_bytes(m);
  w.close();
  EXPECT_EQ(wait_child(pid).code, 0);
  EXPECT_TRUE(sent.count(r.recv_bytes()));
}

TEST(Poll, MessagesAreNeverMergedAndRepeatedPollsDoNotConsume) {
  auto [a, b] = Pipe();
  a.send_bytes("AAAAA");
  a.send_bytes("BBBBBBBBB");
  EXPECT_TRUE(b.poll());
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(b.recv_bytes(), "AAAAA");
  EXPECT_TRUE(b.poll());
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(b.recv_bytes(), "BBBBBBBBB");
  EXPECT_FALSE(b.poll());
}

// --- TestWait ---

TEST(Wait, MultiplexesFourPipesUntilEachReportsEOF) {
  std::vector<Connection> readers;
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i) {
    auto [r, w] = Pipe(false);
    pids.push_back(fork_child([&, i] {
      r.close();
      readers.clear();  // the other readers inherited by this child
      for (int j = 0; j < 10; ++j) {
        w.send_bytes(std::to_string(i) + ":" + std::to_string(j));
        ::usleep(static_cast<useconds_t>((i * 7 + j * 3) % 10) * 1000);
      }
      return 0;
    }));
    readers.push_back(std::move(r));
  }
  std::vector<Connection*> live;
  for (auto& r : readers) live.push_back(&r);
  std::multiset<std::string> got;
  while (!live.empty()) {
    auto ready = wait(live, 20s);
    ASSERT_FALSE(ready.empty());
    for (Connection* c : ready) {
      try {
        got.insert(c->recv_bytes());
      } catch (const EOFError&) {
        std::erase(live, c);
      }
    }
  }
  EXPECT_EQ(got.size(), 40u);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 10; ++j)
      EXPECT_EQ(got.count(std::to_string(i) + ":" + std::to_string(j)), 1u);
  for (pid_t p : pids) EXPECT_EQ(wait_child(p).code, 0);
}

TEST(Wait, ReturnsNothingAfterTheTimeoutThenTheConnectionThatReceived) {
  auto [a1, b1] = Pipe();
  auto [a2, b2] = Pipe();
  std::vector<Connection*> got;
  double t = seconds_to_run([&] { got = wait({&b1, &b2}, 700ms); });
  EXPECT_TRUE(got.empty());
  EXPECT_GE(t, 0.7 - kEarly);
  EXPECT_LT(t, 0.7 + kLate);
  a2.send_bytes("x");
  got = wait({&b1, &b2}, 5s);
  EXPECT_EQ(got, std::vector<Connection*>{&b2});
}

TEST(Wait, ANegativeTimeoutReturnsNothingAtOnce) {
  auto [a, b] = Pipe();
  std::vector<Connection*> got{&a};
  double t = seconds_to_run([&] { got = wait({&b}, -1s); });
  EXPECT_TRUE(got.empty());
  EXPECT_LT(t, 0.25);  // "at once", with room for a loaded machine
}

TEST(Wait, DescriptorWaitMixesConnectionsWithAProcessSentinel) {
  // Python's wait() takes sentinels (ints) beside connections; in mproc the fd-based wait of
  // wait.h takes both, a connection through its fileno(). The sentinel here is what Python's is
  // on Linux: a pipe whose only writer is the child, so it reads EOF once the child has exited.
  int sentinel[2];
  ASSERT_EQ(::pipe2(sentinel, O_CLOEXEC), 0);
  auto [a, b] = Pipe();
  auto [c, d] = Pipe();
  pid_t pid = fork_child([&] {
    ::close(sentinel[0]);
    ::usleep(1000000);
    return 0;
  });
  ::close(sentinel[1]);
  a.send_bytes("ready at once");
  std::vector<int> ready;
  double t = seconds_to_run([&] { ready = wait({b.fileno(), d.fileno(), sentinel[0]}, 10s); });
  EXPECT_EQ(ready, std::vector<int>{b.fileno()});
  EXPECT_LT(t, 0.4);
  (void)b.recv_bytes();
  t = seconds_to_run([&] { ready = wait({b.fileno(), d.fileno(), sentinel[0]}, 10s); });
  EXPECT_EQ(ready, std::vector<int>{sentinel[0]});
  EXPECT_GE(t, 0.5);
  EXPECT_LT(t, 1.0 + 1.5);
  ::close(sentinel[0]);
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Wait, WorksOnPlainSocketsWrappedAsConnections) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Connection a(sv[0]), b(sv[1]);
  pid_t pid = fork_child([&] {
    ::usleep(100000);
    const char raw[] = {0, 0, 0, 2, 'o', 'k'};
    return ::write(sv[0], raw, sizeof(raw)) == 6 ? 0 : 1;
  });
  auto ready = wait({&b}, 10s);
  EXPECT_EQ(ready, std::vector<Connection*>{&b});
  EXPECT_EQ(b.recv_bytes(), "ok");
  EXPECT_EQ(wait_child(pid).code, 0);
}

// --- descriptor transfer (reduction.send_handle / recv_handle) ---

// The parent sends an open file's descriptor (at number `at`, or where open() put it) to a
// child, which writes through it; the parent then reads what the child wrote.
void check_fd_transfer(int at) {
  char path[] = "/tmp/mproc-fd-transfer-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  if (at >= 0) {
    ASSERT_EQ(::dup2(fd, at), at);
    ::close(fd);
    fd = at;
  }
  auto [a, b] = Pipe();
  pid_t pid = fork_child([&] {
    a.close();
    int got = recv_handle(b);
    const char text[] = "written by the child";
    bool ok = ::write(got, text, sizeof(text) - 1) == static_cast<ssize_t>(sizeof(text) - 1);
    ::close(got);
    return ok ? 0 : 1;
  });
  b.close();
  send_handle(a, fd);
  EXPECT_EQ(wait_child(pid).code, 0);
  std::array<char, 64> buf{};
  ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  ::close(fd);
  EXPECT_EQ(std::string(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0),
            "written by the child");
}

TEST(FdTransfer, AChildWritesThroughADescriptorItReceived) { check_fd_transfer(-1); }

TEST(FdTransfer, ADescriptorNumberAbove256Transfers) { check_fd_transfer(300); }

TEST(FdTransfer, DataWithoutADescriptorIsAnError) {
  auto [a, b] = Pipe();
  const char zero = 0;
  ASSERT_EQ(::write(b.fileno(), &zero, 1), 1);
  EXPECT_THROW((void)recv_handle(a), Error);
}

TEST(FdTransfer, RecvHandleOnAClosedPeerThrowsEOFError) {
  auto [a, b] = Pipe();
  b.close();
  EXPECT_THROW((void)recv_handle(a), EOFError);
}

TEST(FdTransfer, MessagesBeforeAndAfterADescriptorKeepTheirFraming) {
  auto [a, b] = Pipe();
  auto [r, w] = Pipe(false);
  a.send_bytes("before");
  send_handle(a, w.fileno());
  a.send_bytes("after");
  EXPECT_EQ(b.recv_bytes(), "before");
  Connection w2(recv_handle(b), false, true);
  EXPECT_EQ(b.recv_bytes(), "after");
  EXPECT_TRUE(::fcntl(w2.fileno(), F_GETFD) & FD_CLOEXEC);
  w2.send_bytes("through the duplicate");
  EXPECT_EQ(r.recv_bytes(), "through the duplicate");
}

TEST(FdTransfer, AConnectionSentToAnotherProcessWorksThereAndKeepsItsAccess) {
  auto [a, b] = Pipe();
  pid_t pid = fork_child([&] {
    a.close();
    Connection writer = recv_connection(b);
    Connection duplex = recv_connection(b);
    if (writer.readable() || !writer.writable()) return 1;
    if (!duplex.readable() || !duplex.writable()) return 2;
    writer.send_bytes("via the sent writer");
    duplex.send_bytes(duplex.recv_bytes() + " and back");
    return 0;
  });
  b.close();
  // Made after the fork: the child can only have them by transfer.
  auto [r, w] = Pipe(false);
  auto [x, y] = Pipe();
  send_connection(a, w);
  send_connection(a, y);
  w.close();
  y.close();
  EXPECT_EQ(r.recv_bytes(10s), "via the sent writer");
  x.send_bytes("there");
  EXPECT_EQ(x.recv_bytes(10s), "there and back");
  EXPECT_EQ(wait_child(pid).code, 0);
}

// --- TestIgnoreEINTR ---

extern "C" void on_sigusr1(int) {}

// Installs a SIGUSR1 handler without SA_RESTART, so that blocking calls see EINTR.
void install_interrupting_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGUSR1, &sa, nullptr);
}

TEST(IgnoreEINTR, RecvAndLargeSendBytesRetryWhenASignalInterruptsThem) {
  auto [a, b] = Pipe();
  const std::string big(4 << 20, 'q');  // far bigger than the socket buffer
  pid_t parent = ::getpid();
  install_interrupting_handler();
  pid_t pid = fork_child([&] {
    a.close();
    // Interrupt the parent while it blocks in recv, then while it blocks in a big send.
    for (int i = 0; i < 5; ++i) {
      ::usleep(50000);
      ::kill(parent, SIGUSR1);
    }
    b.send_bytes("after signals");
    for (int i = 0; i < 5; ++i) {
      ::usleep(50000);
      ::kill(parent, SIGUSR1);
    }
    return b.recv_bytes() == big ? 0 : 1;
  });
  b.close();
  EXPECT_EQ(a.recv_bytes(), "after signals");
  a.send_bytes(big);
  EXPECT_EQ(wait_child(pid).code, 0);
  ::signal(SIGUSR1, SIG_DFL);
}

TEST(IgnoreEINTR, PollWithATimeoutStillEndsOnTimeWhenInterrupted) {
  auto [a, b] = Pipe();
  pid_t parent = ::getpid();
  install_interrupting_handler();
  pid_t pid = fork_child([&] {
    for (int i = 0; i < 5; ++i) {
      ::usleep(60000);
      ::kill(parent, SIGUSR1);
    }
    return 0;
  });
  bool r = true;
  double t = seconds_to_run([&] { r = b.poll(800ms); });
  EXPECT_FALSE(r);
  EXPECT_GE(t, 0.8 - kEarly);
  EXPECT_LT(t, 0.8 + kLate);
  EXPECT_EQ(wait_child(pid).code, 0);
  ::signal(SIGUSR1, SIG_DFL);
}

}  // namespace
}  // namespace mproc
