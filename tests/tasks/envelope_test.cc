#include "mproc/envelope.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <typeinfo>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/serialize.h"
#include "mproc/task.h"

#include "support.h"

namespace mproc::envelope_test {

int square(int x) { return x * x; }
MPROC_TASK(square);

void nothing() {}
MPROC_TASK(nothing);

template <class E>
void raise_as(std::string message) {
  throw E(message);
}
MPROC_TASK(raise_as<std::runtime_error>);
MPROC_TASK(raise_as<std::logic_error>);
MPROC_TASK(raise_as<std::invalid_argument>);
MPROC_TASK(raise_as<std::out_of_range>);
MPROC_TASK(raise_as<std::length_error>);
MPROC_TASK(raise_as<std::domain_error>);
MPROC_TASK(raise_as<std::range_error>);
MPROC_TASK(raise_as<std::overflow_error>);
MPROC_TASK(raise_as<std::underflow_error>);
MPROC_TASK(raise_as<mproc::Error>);
MPROC_TASK(raise_as<mproc::ValueError>);
MPROC_TASK(raise_as<mproc::ProcessError>);
MPROC_TASK(raise_as<mproc::TimeoutError>);
MPROC_TASK(raise_as<mproc::Empty>);
MPROC_TASK(raise_as<mproc::Full>);
MPROC_TASK(raise_as<mproc::EOFError>);
MPROC_TASK(raise_as<mproc::AuthenticationError>);
MPROC_TASK(raise_as<mproc::BrokenBarrierError>);
MPROC_TASK(raise_as<mproc::SerializationError>);
MPROC_TASK(raise_as<mproc::NotRegisteredError>);
MPROC_TASK(raise_as<mproc::WorkerLostError>);
MPROC_TASK(raise_as<mproc::ShutDown>);
MPROC_TASK(raise_as<mproc::FileExistsError>);
MPROC_TASK(raise_as<mproc::FileNotFoundError>);
MPROC_TASK(raise_as<mproc::IndexError>);

struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
MPROC_EXCEPTION(QuotaExceeded);
MPROC_TASK(raise_as<QuotaExceeded>);

struct Unregistered : std::logic_error {  // an exception type nobody registered
  using std::logic_error::logic_error;
};
MPROC_TASK(raise_as<Unregistered>);

void raise_bad_alloc() { throw std::bad_alloc(); }
MPROC_TASK(raise_bad_alloc);

void raise_system_error() {
  throw std::system_error(ENOENT, std::system_category(), "cannot open x");
}
MPROC_TASK(raise_system_error);

void raise_buffer_too_short() { throw BufferTooShort("the whole message", "buffer too short"); }
MPROC_TASK(raise_buffer_too_short);

void raise_int() { throw 42; }
MPROC_TASK(raise_int);

void raise_text() { throw "plain text"; }
MPROC_TASK(raise_text);

void raise_remote() { throw RemoteError("Origin", "far away", 1234); }
MPROC_TASK(raise_remote);

// A result that cannot be encoded (Python: an unpicklable result).
struct Unencodable {
  template <class Ar>
  void serialize(Ar&, unsigned) {
    if constexpr (Ar::is_saving::value) throw SerializationError("this value cannot be encoded");
  }
};
Unencodable make_unencodable() { return {}; }
MPROC_TASK(make_unencodable);

// A task that passes on the outcome of another call (as a task that uses a pool would): what it
// rethrows is an exception that already came back once.
void relay(std::string result_wire) { take_result<void>(decode_result(result_wire)); }
MPROC_TASK(relay);

}  // namespace mproc::envelope_test

namespace mproc {
namespace {

using namespace envelope_test;

// Runs `call` in a forked child (a real worker process) and returns its result and pid.
struct ChildResult {
  ResultEnvelope result;
  pid_t pid = 0;
};

ChildResult run_in_child(const CallEnvelope& call) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = test::fork_child([&] {
    ::close(fds[0]);
    std::string wire = encode_result(run_call(decode_call_view(encode_call(call))));
    const char* p = wire.data();
    std::size_t left = wire.size();
    while (left > 0) {
      ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) return 1;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    return 0;
  });
  ::close(fds[1]);
  std::string wire;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    wire.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  auto exit = test::wait_child(pid);
  EXPECT_EQ(exit.code, 0);
  return {decode_result(wire), pid};
}

// The exception a result carries: rethrows it and hands it to `check` inside the handler.
template <class E, class Check>
void expect_rethrown_as(const ResultEnvelope& result, Check check) {
  ASSERT_EQ(result.status, ResultStatus::kException);
  try {
    take_result<void>(result);
    FAIL() << "nothing thrown";
  } catch (const E& e) {
    EXPECT_EQ(dynamic_cast<const RemoteError*>(&e) == nullptr, (!std::is_same_v<E, RemoteError>));
    check(e);
  } catch (const std::exception& e) {
    FAIL() << "rethrown as another type: " << typeid(e).name() << ": " << e.what();
  }
}

// ---- envelopes
// ------------------------------------------------------------------------------------

TEST(Envelope, CallRoundTripsThroughEncodeAndDecode) {
  CallEnvelope call{0xfedcba9876543210ULL, "ns::task<int>", std::string("a\0b\xff", 4)};
  CallEnvelope back = decode_call(encode_call(call));
  EXPECT_EQ(back.task_id, call.task_id);
  EXPECT_EQ(back.name, call.name);
  EXPECT_EQ(back.args, call.args);
}

TEST(Envelope, CallViewPointsIntoTheBytesItCameFrom) {
  std::string wire = encode_call(CallEnvelope{7, "square", "args"});
  CallView view = decode_call_view(wire);
  EXPECT_EQ(view.task_id, 7u);
  EXPECT_EQ(view.name, "square");
  EXPECT_EQ(view.args, "args");
  EXPECT_GE(view.args.data(), wire.data());
  EXPECT_LE(view.args.data() + view.args.size(), wire.data() + wire.size());
}

TEST(Envelope, EncodeIntoAppendsAfterWhatIsThere) {
  std::string out = "prefix";
  encode_call_into(CallView{1, "square", "x"}, out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(decode_call(std::string_view(out).substr(6)).name, "square");
}

TEST(Envelope, ResultRoundTripsBothStatuses) {
  for (ResultStatus status : {ResultStatus::kOk, ResultStatus::kException}) {
    ResultEnvelope result{42, status, std::string("\0payload", 8)};
    ResultEnvelope back = decode_result(encode_result(result));
    EXPECT_EQ(back.task_id, 42u);
    EXPECT_EQ(back.status, status);
    EXPECT_EQ(back.payload, result.payload);
  }
}

TEST(Envelope, EnvelopesAlsoGoThroughTheGenericSerializer) {
  CallEnvelope call{3, "square", "abc"};
  CallEnvelope call_back = decode<CallEnvelope>(encode(call));
  EXPECT_EQ(call_back.task_id, 3u);
  EXPECT_EQ(call_back.name, "square");
  EXPECT_EQ(call_back.args, "abc");
  ResultEnvelope result{4, ResultStatus::kException, "p"};
  ResultEnvelope result_back = decode<ResultEnvelope>(encode(result));
  EXPECT_EQ(result_back.task_id, 4u);
  EXPECT_EQ(result_back.status, ResultStatus::kException);
  EXPECT_EQ(result_back.payload, "p");
}

TEST(Envelope, TruncatedCallHeaderThrowsSerializationError) {
  std::string wire = encode_call(CallEnvelope{9, "square", ""});
  for (std::size_t n = 0; n < wire.size(); ++n) {
    EXPECT_THROW((void)decode_call_view(std::string_view(wire).substr(0, n)), SerializationError)
        << "prefix of " << n;
  }
}

TEST(Envelope, TruncatedResultHeaderThrowsSerializationError) {
  std::string wire = encode_result(ResultEnvelope{9, ResultStatus::kOk, ""});
  for (std::size_t n = 0; n < wire.size(); ++n) {
    EXPECT_THROW((void)decode_result_view(std::string_view(wire).substr(0, n)), SerializationError)
        << "prefix of " << n;
  }
}

TEST(Envelope, ResultBytesAreNotACallAndViceVersa) {
  EXPECT_THROW((void)decode_call(encode_result(ResultEnvelope{1, ResultStatus::kOk, "x"})),
               SerializationError);
  EXPECT_THROW((void)decode_result(encode_call(CallEnvelope{1, "square", "x"})),
               SerializationError);
}

TEST(Envelope, UnknownStatusThrowsSerializationError) {
  std::string wire = encode_result(ResultEnvelope{1, ResultStatus::kOk, "x"});
  wire[9] = 7;
  EXPECT_THROW((void)decode_result(wire), SerializationError);
}

TEST(Envelope, NameLongerThanTheMessageThrowsSerializationError) {
  std::string wire = encode_call(CallEnvelope{1, "square", ""});
  wire[9] = '\x7f';  // the name's size: far more bytes than there are
  EXPECT_THROW((void)decode_call(wire), SerializationError);
}

TEST(Envelope, RandomBytesGiveSerializationErrorOrAValueNeverACrash) {
  std::mt19937 random(20261125);
  for (int round = 0; round < 5000; ++round) {
    std::string bytes(random() % 40, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    if (round % 2 == 0 && !bytes.empty()) bytes[0] = (round % 4 == 0) ? 'C' : 'R';
    try {
      (void)decode_call(bytes);
    } catch (const SerializationError&) {
    }
    try {
      (void)decode_result(bytes);
    } catch (const SerializationError&) {
    }
    try {
      (void)decode_exception(bytes);
    } catch (const SerializationError&) {
    }
    std::exception_ptr error = remote_exception(bytes);
    ASSERT_TRUE(error != nullptr);
  }
}

// ---- running calls
// --------------------------------------------------------------------------------

TEST(RunCall, ReturnsTheEncodedResultUnderTheSameTaskId) {
  CallEnvelope call = make_call(square, 7);
  call.task_id = 77;
  ResultEnvelope result = run_call(call);
  EXPECT_EQ(result.task_id, 77u);
  EXPECT_EQ(result.status, ResultStatus::kOk);
  EXPECT_EQ(take_result<int>(result), 49);
}

TEST(RunCall, VoidTaskGivesAnEmptyOkResult) {
  ResultEnvelope result = run_call(make_call(nothing));
  EXPECT_EQ(result.status, ResultStatus::kOk);
  EXPECT_TRUE(result.payload.empty());
  take_result<void>(result);
}

TEST(RunCall, RunsInAnotherProcess) {
  ChildResult child = run_in_child(make_call(square, 12));
  EXPECT_EQ(take_result<int>(child.result), 144);
}

TEST(RunCall, UnknownNameGivesANotRegisteredErrorResultSayingHowToRegister) {
  ResultEnvelope result = run_call(CallEnvelope{5, "no_such_task", ""});
  EXPECT_EQ(result.task_id, 5u);
  expect_rethrown_as<NotRegisteredError>(result, [](const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find("no task named \"no_such_task\""), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("add MPROC_TASK(no_such_task);"), std::string::npos);
  });
}

TEST(RunCall, UndecodableArgumentsGiveASerializationErrorResult) {
  ResultEnvelope result = run_call(CallEnvelope{1, "raise_as<std::runtime_error>", "\x03"});
  expect_rethrown_as<SerializationError>(result, [](const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot decode the task's arguments"), std::string::npos)
        << e.what();
  });
}

TEST(RunCall, ResultThatCannotBeEncodedGivesASerializationErrorResult) {
  ResultEnvelope result = run_call(make_call(make_unencodable));
  expect_rethrown_as<SerializationError>(result, [](const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot encode the task's result"), std::string::npos)
        << e.what();
  });
}

TEST(RunCall, ResultThatIsNotTheRequestedTypeThrowsSerializationError) {
  ResultEnvelope result = run_call(make_call(nothing));
  EXPECT_THROW((void)take_result<std::string>(result), SerializationError);
}

// ---- exceptions --------------------------------------------------------------------------------

template <class E>
class RethrownAsItself : public testing::Test {};

using MessageExceptions =
    testing::Types<std::runtime_error, std::logic_error, std::invalid_argument, std::out_of_range,
                   std::length_error, std::domain_error, std::range_error, std::overflow_error,
                   std::underflow_error, Error, ValueError, ProcessError, TimeoutError, Empty, Full,
                   EOFError, AuthenticationError, BrokenBarrierError, SerializationError,
                   NotRegisteredError, WorkerLostError, ShutDown, FileExistsError,
                   FileNotFoundError, IndexError, QuotaExceeded>;
TYPED_TEST_SUITE(RethrownAsItself, MessageExceptions);

TYPED_TEST(RethrownAsItself, ExceptionFromAWorkerIsRethrownAsItsOwnTypeWithItsMessage) {
  ChildResult child = run_in_child(make_call(raise_as<TypeParam>, "boom 42"));
  expect_rethrown_as<TypeParam>(child.result, [&](const TypeParam& e) {
    EXPECT_EQ(std::string(e.what()), "boom 42");
    const std::type_info& exact = typeid(e);
    EXPECT_TRUE(exact == typeid(TypeParam) ||
                exact == detail::nested_type_of(TypeParam(std::string())))
        << "a subclass came back: " << exact.name();
  });
}

TEST(RemoteException, RethrownExceptionNestsARemoteErrorWithTheWorkersPid) {
  ChildResult child = run_in_child(make_call(raise_as<std::out_of_range>, "index 9"));
  expect_rethrown_as<std::out_of_range>(child.result, [&](const std::out_of_range& e) {
    try {
      std::rethrow_if_nested(e);
      FAIL() << "no nested cause";
    } catch (const RemoteError& cause) {
      EXPECT_EQ(cause.pid(), child.pid);
      EXPECT_EQ(cause.type_name(), "std::out_of_range");
      EXPECT_EQ(cause.message(), "index 9");
    }
  });
}

TEST(RemoteException, BadAllocIsRethrownAsItself) {
  expect_rethrown_as<std::bad_alloc>(run_in_child(make_call(raise_bad_alloc)).result,
                                     [](const std::bad_alloc&) {});
}

TEST(RemoteException, SystemErrorKeepsItsCodeAndMessage) {
  expect_rethrown_as<std::system_error>(
      run_in_child(make_call(raise_system_error)).result, [](const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(e.code().category(), std::system_category());
        EXPECT_EQ(std::string(e.what()),
                  std::system_error(ENOENT, std::system_category(), "cannot open x").what());
      });
}

TEST(RemoteException, BufferTooShortKeepsTheWholeMessage) {
  expect_rethrown_as<BufferTooShort>(run_in_child(make_call(raise_buffer_too_short)).result,
                                     [](const BufferTooShort& e) {
                                       EXPECT_EQ(e.message(), "the whole message");
                                       EXPECT_EQ(std::string(e.what()), "buffer too short");
                                     });
}

TEST(RemoteException, UnregisteredTypeBecomesRemoteErrorWithTypeNameMessageAndPid) {
  ChildResult child = run_in_child(make_call(raise_as<Unregistered>, "no such thing"));
  expect_rethrown_as<RemoteError>(child.result, [&](const RemoteError& e) {
    EXPECT_EQ(e.type_name(), "mproc::envelope_test::Unregistered");
    EXPECT_EQ(e.message(), "no such thing");
    EXPECT_EQ(e.pid(), child.pid);
    EXPECT_NE(std::string(e.what()).find(std::to_string(child.pid)), std::string::npos);
  });
}

TEST(RemoteException, ThrownIntBecomesRemoteErrorNamingTheType) {
  expect_rethrown_as<RemoteError>(run_in_child(make_call(raise_int)).result,
                                  [](const RemoteError& e) { EXPECT_EQ(e.type_name(), "int"); });
}

TEST(RemoteException, ThrownTextBecomesRemoteErrorWithThatMessage) {
  expect_rethrown_as<RemoteError>(
      run_in_child(make_call(raise_text)).result,
      [](const RemoteError& e) { EXPECT_EQ(e.message(), "plain text"); });
}

TEST(RemoteException, RemoteErrorPassedOnKeepsItsOrigin) {
  expect_rethrown_as<RemoteError>(run_in_child(make_call(raise_remote)).result,
                                  [](const RemoteError& e) {
                                    EXPECT_EQ(e.type_name(), "Origin");
                                    EXPECT_EQ(e.message(), "far away");
                                    EXPECT_EQ(e.pid(), 1234);
                                  });
}

TEST(RemoteException, ExceptionThatCameBackOnceKeepsItsTypeAndOriginWhenPassedOn) {
  // The inner call fails here, in this process; the child rethrows that outcome, and the
  // exception that reaches us names this process, not the child, as its origin.
  std::string inner = encode_result(run_call(make_call(raise_as<std::invalid_argument>, "bad")));
  ChildResult child = run_in_child(make_call(relay, inner));
  expect_rethrown_as<std::invalid_argument>(child.result, [&](const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "bad");
    try {
      std::rethrow_if_nested(e);
      FAIL() << "no nested cause";
    } catch (const RemoteError& cause) {
      EXPECT_EQ(cause.pid(), ::getpid());
      EXPECT_NE(cause.pid(), child.pid);
    }
  });
}

TEST(RemoteException, CaptureOutsideAHandlerDescribesNoException) {
  RemoteExceptionInfo info = decode_exception(capture_current_exception());
  EXPECT_EQ(info.kind, ExceptionKind::kUnregistered);
  EXPECT_EQ(info.type_name, "no exception");
  EXPECT_EQ(info.pid, ::getpid());
}

TEST(RemoteException, DecodedInfoHasKindTypeMessageAndPid) {
  std::string payload;
  try {
    throw std::domain_error("out of the domain");
  } catch (...) {
    payload = capture_current_exception();
  }
  RemoteExceptionInfo info = decode_exception(payload);
  EXPECT_EQ(info.kind, ExceptionKind::kRegistered);
  EXPECT_EQ(info.type_name, "std::domain_error");
  EXPECT_EQ(info.message, "out of the domain");
  EXPECT_EQ(info.pid, ::getpid());
}

TEST(RemoteException, CorruptPayloadGivesSerializationError) {
  std::string payload = capture_exception(std::make_exception_ptr(std::runtime_error("x")));
  for (std::size_t n = 1; n < payload.size(); ++n) {
    EXPECT_THROW(rethrow_remote(std::string_view(payload).substr(0, n)), SerializationError)
        << "prefix of " << n;
  }
  EXPECT_THROW(rethrow_remote(payload + "trailing"), SerializationError);
  std::string bad_kind = payload;
  bad_kind[1] = 9;
  EXPECT_THROW(rethrow_remote(bad_kind), SerializationError);
}

TEST(RemoteException, EmptyPayloadStandsForBadAlloc) {
  EXPECT_THROW(rethrow_remote(""), std::bad_alloc);
}

TEST(RemoteException, RegisteredNameUnknownToTheCallerBecomesRemoteError) {
  RemoteExceptionInfo info;
  std::string payload;
  try {
    throw QuotaExceeded("over");
  } catch (...) {
    payload = capture_current_exception();
  }
  // The same payload as a worker with a registration the caller lacks would send.
  std::string renamed = payload;
  std::size_t at = renamed.find("QuotaExceeded");
  ASSERT_NE(at, std::string::npos);
  renamed.replace(at, 13, "QuotaExceedeX");
  ResultEnvelope result{1, ResultStatus::kException, renamed};
  expect_rethrown_as<RemoteError>(result, [](const RemoteError& e) {
    EXPECT_EQ(e.type_name(), "QuotaExceedeX");
    EXPECT_EQ(e.message(), "over");
  });
}

TEST(RemoteException, ExceptionTypeUnderATakenNameIsRejected) {
  EXPECT_THROW(
      detail::register_exception("QuotaExceeded", typeid(Unregistered), typeid(Unregistered),
                                 &detail::throw_nested_from_message<Unregistered>, nullptr),
      ValueError);
  EXPECT_THROW(
      detail::register_exception("AnotherName", typeid(QuotaExceeded), typeid(QuotaExceeded),
                                 &detail::throw_nested_from_message<QuotaExceeded>, nullptr),
      ValueError);
}

}  // namespace
}  // namespace mproc
