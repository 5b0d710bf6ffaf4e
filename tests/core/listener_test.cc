// Listener, Client, addresses and the HMAC handshake: CPython's _TestListener,
// _TestListenerClient, OtherTest, ChallengeResponseTest and TestIgnoreEINTR's accept (parity
// section 6).
#include "mproc/listener.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mproc/connection.h"
#include "mproc/errors.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_child;
using test::seconds_to_run;
using test::wait_child;

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string hmac_of(const EVP_MD* md, std::string_view key, std::string_view msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  static const unsigned char kNoKey = 0;
  HMAC(md, key.empty() ? &kNoKey : static_cast<const void*>(key.data()),
       static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
       out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// The family-parametrised tests run over a Unix path, an abstract Unix name and TCP.
class ListenerFamily : public testing::TestWithParam<int> {
 protected:
  Address make_address() const {
    switch (GetParam()) {
      case 0:
        return Address::arbitrary_unix();
      case 1:
        return Address(std::string("\0mproc-test-", 12) + std::to_string(::getpid()) + "-" +
                       std::to_string(counter_++));
      default:
        return Address("localhost:0");
    }
  }
  static inline int counter_ = 0;
};

TEST_P(ListenerFamily, AClientInAChildSendsAndTheListenerReceives) {
  Listener listener(make_address());
  Address addr = listener.address();
  pid_t pid = fork_child([&] {
    listener.close();
    Connection c = Client(addr);
    c.send_bytes("hello from the client");
    return c.recv_bytes() == "welcome" ? 0 : 1;
  });
  Connection conn = listener.accept(20s);
  EXPECT_EQ(conn.recv_bytes(), "hello from the client");
  conn.send_bytes("welcome");
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST_P(ListenerFamily, ASecondListenerOnABoundAddressThrows) {
  Listener first(make_address());
  EXPECT_THROW(Listener second(first.address()), std::system_error);
  // The failed second listener must not have taken the first one's address away.
  pid_t pid = fork_child([&] {
    Connection c = Client(first.address());
    c.send_bytes("still here");
    return 0;
  });
  Connection conn = first.accept(20s);
  EXPECT_EQ(conn.recv_bytes(), "still here");
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST_P(ListenerFamily, AClientThatSentAndClosedBeforeAcceptStillDeliversItsData) {
  Listener listener(make_address());
  {
    Connection c = Client(listener.address());
    c.send_bytes("early bird");
  }
  Connection conn = listener.accept(5s);
  EXPECT_EQ(conn.recv_bytes(), "early bird");
  EXPECT_THROW((void)conn.recv_bytes(), EOFError);
}

TEST_P(ListenerFamily, ClientPollSeesDataSentByTheAcceptedConnection) {
  Listener listener(make_address());
  pid_t pid = fork_child([&] {
    Address addr = listener.address();
    listener.close();
    Connection c = Client(addr);
    if (!c.poll(10s)) return 1;
    return c.recv_bytes() == "ping" ? 0 : 2;
  });
  Connection conn = listener.accept(20s);
  ::usleep(100000);
  conn.send_bytes("ping");
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST_P(ListenerFamily, WrongAuthkeyFailsOnBothSidesAndTheListenerStaysUsable) {
  Listener listener(make_address(), "right key");
  Address addr = listener.address();
  pid_t pid = fork_child([&] {
    listener.close();
    try {
      (void)Client(addr, "wrong key");
      return 1;
    } catch (const AuthenticationError&) {
    }
    Connection c = Client(addr, "right key");
    c.send_bytes("authenticated");
    return 0;
  });
  EXPECT_THROW((void)listener.accept(20s), AuthenticationError);
  Connection conn = listener.accept(20s);
  EXPECT_EQ(conn.recv_bytes(), "authenticated");
  EXPECT_EQ(wait_child(pid).code, 0);
}

std::string family_name(const testing::TestParamInfo<int>& info) {
  static const char* const kNames[] = {"UnixPath", "UnixAbstract", "Tcp"};
  return kNames[info.param];
}

INSTANTIATE_TEST_SUITE_P(Families, ListenerFamily, testing::Values(0, 1, 2), family_name);

TEST_P(ListenerFamily, AcceptedAndClientConnectionsAreBlocking) {
  // Python's TestTimeouts: a process-wide socket timeout must not make connections non-blocking.
  // The listening socket is non-blocking (accept waits in poll), its connections are not.
  Listener listener(make_address());
  Connection client = Client(listener.address());
  Connection served = listener.accept(5s);
  EXPECT_EQ(::fcntl(client.fileno(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(::fcntl(served.fileno(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_TRUE(::fcntl(served.fileno(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(client.fileno(), F_GETFD) & FD_CLOEXEC);
}

TEST(Listener, AcceptAfterCloseThrowsEBADF) {
  Listener listener;
  listener.close();
  listener.close();  // idempotent
  EXPECT_TRUE(listener.closed());
  try {
    (void)listener.accept(1s);
    FAIL() << "accept on a closed listener did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

TEST(Listener, AUnixListenerRemovesItsSocketFileWhenClosed) {
  std::string path;
  {
    Listener listener;
    path = listener.address().path();
    EXPECT_TRUE(path_exists(path));
  }
  EXPECT_FALSE(path_exists(path));
}

TEST(Listener, AForkedChildDroppingItsCopyLeavesTheSocketFile) {
  Listener listener;
  pid_t pid = fork_child([&] {
    listener.close();
    return 0;
  });
  EXPECT_EQ(wait_child(pid).code, 0);
  EXPECT_TRUE(path_exists(listener.address().path()));
}

TEST(Listener, PortZeroPicksAFreePortThatAddressReports) {
  Listener listener(TcpAddress{"127.0.0.1", 0});
  ASSERT_TRUE(listener.address().is_tcp());
  EXPECT_NE(listener.address().tcp().port, 0);
  EXPECT_EQ(listener.address().tcp().host, "127.0.0.1");
}

TEST(Listener, AcceptWithATimeoutThrowsTimeoutError) {
  Listener listener;
  double t = seconds_to_run([&] { EXPECT_THROW((void)listener.accept(400ms), TimeoutError); });
  EXPECT_GE(t, 0.4 - 0.1);
  EXPECT_LT(t, 0.4 + 1.5);
}

TEST(Listener, EmptyAuthkeyIsAllowedAndTheHandshakeSucceeds) {
  Listener listener(Address::arbitrary_unix(), "");
  pid_t pid = fork_child([&] {
    Connection c = Client(listener.address(), "");
    c.send_bytes("empty key ok");
    return 0;
  });
  Connection conn = listener.accept(20s);
  EXPECT_EQ(conn.recv_bytes(), "empty key ok");
  EXPECT_EQ(wait_child(pid).code, 0);
}

TEST(Listener, ClientToAnAddressWithoutListenerThrows) {
  Address nowhere = Address::arbitrary_unix();
  EXPECT_THROW((void)Client(nowhere), std::system_error);
  Listener tmp("127.0.0.1:0");
  Address closed_port = tmp.address();
  tmp.close();
  EXPECT_THROW((void)Client(closed_port), std::system_error);
}

TEST(Listener, AFailedConnectToAnAbstractNameNamesItPrintably) {
  const std::string name = std::string("\0mproc-test-nobody-", 19) + std::to_string(::getpid());
  try {
    (void)Client(Address(name));
    ADD_FAILURE() << "connected to an abstract name nobody listens on";
  } catch (const std::system_error& e) {
    // The whole name, '@' for its leading NUL: printed as a C string, a raw NUL ended the
    // message right after "connect to ".
    EXPECT_NE(std::string(e.what()).find("connect to @" + name.substr(1)), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(Address(name).display(), "@" + name.substr(1));
  EXPECT_EQ(Address("/tmp/sock").display(), "/tmp/sock");
  EXPECT_EQ(Address(TcpAddress{"10.0.0.1", 5}).display(), "10.0.0.1:5");
}

extern "C" void on_sigusr1(int) {}

TEST(Listener, AcceptRetriesWhenASignalInterruptsIt) {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);  // no SA_RESTART: the wait sees EINTR
  Listener listener;
  pid_t parent = ::getpid();
  pid_t pid = fork_child([&] {
    for (int i = 0; i < 5; ++i) {
      ::usleep(40000);
      ::kill(parent, SIGUSR1);
    }
    Connection c = Client(listener.address());
    c.send_bytes("after signals");
    return 0;
  });
  Connection conn = listener.accept();
  EXPECT_EQ(conn.recv_bytes(), "after signals");
  EXPECT_EQ(wait_child(pid).code, 0);
  ::signal(SIGUSR1, SIG_DFL);
}

TEST(Address, ParsesUnixPathsAndTcpEndpoints) {
  EXPECT_TRUE(Address("/tmp/sock").is_unix());
  EXPECT_TRUE(Address("./relative").is_unix());
  EXPECT_TRUE(Address("plainname").is_unix());
  EXPECT_TRUE(Address(std::string("\0abstract", 9)).is_abstract());
  Address tcp("localhost:8080");
  ASSERT_TRUE(tcp.is_tcp());
  EXPECT_EQ(tcp.tcp(), (TcpAddress{"localhost", 8080}));
  EXPECT_EQ(tcp.to_string(), "localhost:8080");
  Address v6("[::1]:99");
  ASSERT_TRUE(v6.is_tcp());
  EXPECT_EQ(v6.tcp().host, "::1");
  EXPECT_EQ(v6.to_string(), "[::1]:99");
  EXPECT_EQ(Address(TcpAddress{"10.0.0.1", 5}).to_string(), "10.0.0.1:5");
  EXPECT_THROW(Address("host:70000"), ValueError);
}

// --- the handshake, driven by hand over a socket pair (the socket buffer holds the messages) ---

TEST(Handshake, DeliverChallengeRejectsABogusResponse) {
  auto [ours, peer] = Pipe();
  peer.send_bytes("something bogus");
  EXPECT_THROW(deliver_challenge(ours, "abc"), AuthenticationError);
  EXPECT_EQ(peer.recv_bytes().substr(0, 11), "#CHALLENGE#");
  EXPECT_EQ(peer.recv_bytes(), "#FAILURE#");
}

TEST(Handshake, AnswerChallengeRejectsABogusWelcome) {
  auto [ours, peer] = Pipe();
  peer.send_bytes("#CHALLENGE#" + std::string(20, 'c'));
  peer.send_bytes("something bogus");
  EXPECT_THROW(answer_challenge(ours, "abc"), AuthenticationError);
}

TEST(Handshake, AnswerChallengeRejectsSomethingThatIsNotAChallenge) {
  auto [ours, peer] = Pipe();
  peer.send_bytes("hello there, not a challenge");
  EXPECT_THROW(answer_challenge(ours, "abc"), AuthenticationError);
}

TEST(Handshake, TheLegacyChallengeIsTwentyBytesAnsweredWithRawHmacMd5) {
  auto [ours, peer] = Pipe();
  const std::string challenge(20, '\x5a');
  peer.send_bytes("#CHALLENGE#" + challenge);
  peer.send_bytes("#WELCOME#");
  answer_challenge(ours, "key");
  EXPECT_EQ(peer.recv_bytes(), hmac_of(EVP_md5(), "key", challenge));
}

TEST(Handshake, APrefixedChallengeIsAnsweredWithAPrefixedDigest) {
  auto [ours, peer] = Pipe();
  const std::string challenge = "{sha256}" + std::string(40, '\x11');
  peer.send_bytes("#CHALLENGE#" + challenge);
  peer.send_bytes("#WELCOME#");
  answer_challenge(ours, "key");
  EXPECT_EQ(peer.recv_bytes(), "{sha256}" + hmac_of(EVP_sha256(), "key", challenge));
}

TEST(Handshake, DeliverChallengeAcceptsRawMd5AndPrefixedDigests) {
  for (std::string prefix : {"", "{md5}", "{sha256}"}) {
    auto [ours, peer] = Pipe();
    // Answer first (the socket buffer holds it) with a digest of a challenge we cannot know yet:
    // so run the deliver side in a child and answer from here.
    pid_t pid = fork_child([&] {
      peer.close();
      try {
        deliver_challenge(ours, "key");
        return 0;
      } catch (const AuthenticationError&) {
        return 1;
      }
    });
    ours.close();
    std::string challenge = peer.recv_bytes().substr(11);
    const EVP_MD* md = prefix == "{sha256}" ? EVP_sha256() : EVP_md5();
    peer.send_bytes(prefix + hmac_of(md, "key", challenge));
    EXPECT_EQ(peer.recv_bytes(), "#WELCOME#") << prefix;
    EXPECT_EQ(wait_child(pid).code, 0) << prefix;
  }
}

TEST(Handshake, TooLongAResponseIsAnAuthenticationError) {
  auto [ours, peer] = Pipe();
  peer.send_bytes(std::string(300, 'x'));
  EXPECT_THROW(deliver_challenge(ours, "abc"), AuthenticationError);
}

}  // namespace
}  // namespace mproc

namespace mproc {
namespace {

// "localhost" is loopback even where /etc/hosts is missing (a minimal container): in a child with
// a mount namespace of its own, /etc/hosts is hidden behind an empty file.
TEST(ListenerAddress, LocalhostWorksWithoutEtcHosts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private mount namespace";
  auto run = test::fork_and_wait([] {
    if (::unshare(CLONE_NEWNS) != 0) return 10;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 11;
    if (::mount("/dev/null", "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) return 12;
    Listener listener(TcpAddress{"localhost", 0});
    Connection client = Client(listener.address());
    Connection server = listener.accept();
    client.send_bytes(std::string_view("ping"));
    return server.recv_bytes() == "ping" ? 0 : 1;
  });
  if (run.code >= 10 && run.code <= 12) GTEST_SKIP() << "no private mount namespace here";
  EXPECT_EQ(run.code, 0);
}

}  // namespace
}  // namespace mproc
