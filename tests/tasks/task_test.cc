#include "mproc/task.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/serialize.h"

#include "support.h"

// Tasks, and the unregistered callables the tests submit.
namespace mproc::tasks_test {

int square(int x) { return x * x; }
MPROC_TASK(square);
MPROC_TASK(square);  // a header included twice registers again: harmless

int answer() { return 42; }
MPROC_TASK(answer);

std::string concat(const std::string& a, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += a;
  return out;
}
MPROC_TASK(concat);

long sum(const std::vector<int>& values) {
  return std::accumulate(values.begin(), values.end(), 0L);
}
MPROC_TASK(sum);

std::string shout(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}
MPROC_TASK(shout);

int append_and_count(std::vector<int>& values, int value) {
  values.push_back(value);
  return static_cast<int>(values.size());
}
MPROC_TASK(append_and_count);

std::size_t consume(std::string&& text) { return std::move(text).size(); }
MPROC_TASK(consume);

double half(double x) noexcept { return x / 2; }
MPROC_TASK(half);

int void_calls = 0;
void bump(int by) { void_calls += by; }
MPROC_TASK(bump);

namespace geo {
double area(double w, double h) { return w * h; }
}  // namespace geo
MPROC_TASK(geo::area);

template <class T>
T twice(T x) {
  return x + x;
}
MPROC_TASK(twice<int>);
MPROC_TASK(twice<std::string>);

// Callable types: the object travels.
struct Multiply {
  int a = 0, b = 0;
  std::string operator()() const {
    return std::to_string(a) + " * " + std::to_string(b) + " = " + std::to_string(a * b);
  }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& a& b;
  }
};
MPROC_TASK(Multiply);

struct Scale {
  int factor = 1;
  int operator()(int x) const { return factor * x; }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& factor;
  }
};
MPROC_TASK(Scale);

struct Greeting {  // an overloaded operator(): callable with no arguments only
  std::string name;
  std::string operator()() const { return "hello, " + name; }
  std::string operator()(int n) const { return std::to_string(n); }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& name;
  }
};
MPROC_TASK(Greeting);

int cube(int x) { return x * x * x; }  // never registered
template <class T>
T triple(T x) {
  return x + x + x;
}
struct Unregistered {
  int operator()() const { return 0; }
  template <class Ar>
  void serialize(Ar& ar, unsigned) {}
};

}  // namespace mproc::tasks_test

namespace mproc {
namespace {

using namespace tasks_test;

int internal_cube(int x) { return x * x * x; }  // internal linkage: no symbol to name it by

template <class R, class F, class... Args>
R call_here(const F& fn, Args&&... args) {
  CallEnvelope call = make_call(fn, std::forward<Args>(args)...);
  if constexpr (std::is_void_v<R>) {
    EXPECT_EQ(invoke_task(call.name, call.args), "");
  } else {
    return decode<R>(invoke_task(call.name, call.args));
  }
}

TEST(Task, FunctionIsRegisteredUnderItsNameAsWritten) {
  EXPECT_EQ(task_name(square), "square");
  EXPECT_TRUE(is_registered("square"));
  EXPECT_FALSE(is_registered("cube"));
}

TEST(Task, QualifiedAndTemplateNamesAreKeptVerbatim) {
  EXPECT_EQ(task_name(geo::area), "geo::area");
  EXPECT_EQ(task_name(twice<int>), "twice<int>");
  EXPECT_EQ(task_name(twice<std::string>), "twice<std::string>");
}

TEST(Task, FunctionPointerFindsTheSameName) {
  int (*fn)(int) = &square;
  EXPECT_EQ(task_name(fn), "square");
  EXPECT_EQ(make_call(fn, 3).name, "square");
}

TEST(Task, RegisteringTheSameCallableTwiceKeepsOneEntry) {
  auto names = registered_tasks();
  EXPECT_EQ(std::count(names.begin(), names.end(), "square"), 1);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(Task, InvokeDecodesTheArgumentsCallsAndEncodesTheResult) {
  EXPECT_EQ(call_here<int>(square, 7), 49);
}

TEST(Task, FunctionWithoutParametersSendsNoArgumentBytes) {
  CallEnvelope call = make_call(answer);
  EXPECT_TRUE(call.args.empty());
  EXPECT_EQ(decode<int>(invoke_task(call.name, call.args)), 42);
}

TEST(Task, ConstReferenceParametersAreFilledFromConvertedArguments) {
  EXPECT_EQ(call_here<std::string>(concat, "ab", 3), "ababab");  // const char* -> std::string
  EXPECT_EQ(call_here<long>(sum, std::vector<int>{1, 2, 3, 4}), 10);
}

TEST(Task, ByValueAndRvalueReferenceParametersWork) {
  EXPECT_EQ(call_here<std::string>(shout, std::string("quiet")), "QUIET");
  EXPECT_EQ(call_here<std::size_t>(consume, std::string("four")), 4u);
}

TEST(Task, NonConstReferenceParameterChangesOnlyTheWorkersCopy) {
  std::vector<int> values{1, 2};
  EXPECT_EQ(call_here<int>(append_and_count, values, 9), 3);
  EXPECT_EQ(values.size(), 2u);
}

TEST(Task, NoexceptFunctionIsATask) { EXPECT_DOUBLE_EQ(call_here<double>(half, 5.0), 2.5); }

TEST(Task, TemplateInstancesAreSeparateTasks) {
  EXPECT_EQ(call_here<int>(twice<int>, 21), 42);
  EXPECT_EQ(call_here<std::string>(twice<std::string>, "ab"), "abab");
}

TEST(Task, VoidFunctionRunsAndReturnsAnEmptyResult) {
  void_calls = 0;
  call_here<void>(bump, 5);
  EXPECT_EQ(void_calls, 5);
}

TEST(Task, CallableStructTravelsAsItsSerializedSelf) {
  EXPECT_EQ(task_name(Multiply{}), "Multiply");
  EXPECT_EQ(call_here<std::string>(Multiply{3, 4}), "3 * 4 = 12");
}

TEST(Task, CallableStructMayTakeArguments) { EXPECT_EQ(call_here<int>(Scale{3}, 5), 15); }

TEST(Task, CallableStructWithOverloadedCallOperatorIsCalledWithoutArguments) {
  EXPECT_EQ(call_here<std::string>(Greeting{"mproc"}), "hello, mproc");
}

TEST(Task, ResultTypeIsWhatTheTaskReturnsDecayed) {
  static_assert(std::is_same_v<task_result_t<decltype(square)>, int>);
  static_assert(std::is_same_v<task_result_t<decltype(&concat)>, std::string>);
  static_assert(std::is_same_v<task_result_t<Multiply>, std::string>);
  static_assert(std::is_same_v<task_result_t<Scale>, int>);
  static_assert(std::is_same_v<task_result_t<decltype(bump)>, void>);
  SUCCEED();
}

TEST(Task, UnregisteredFunctionThrowsNotRegisteredErrorWithTheLineToAdd) {
  try {
    (void)make_call(cube, 2);
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(
        std::string(e.what()).find("add MPROC_TASK(mproc::tasks_test::cube); at namespace scope"),
        std::string::npos)
        << e.what();
  }
}

TEST(Task, UnregisteredFunctionWithInternalLinkageIsNamedAsItCanBeWritten) {
  try {
    (void)make_call(internal_cube, 2);
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(
        std::string(e.what()).find("add MPROC_TASK(mproc::internal_cube); at namespace scope"),
        std::string::npos)
        << e.what();
  }
}

TEST(Task, UnregisteredTemplateInstanceIsNamedWithoutItsReturnType) {
  try {
    (void)make_call(triple<long>, 2L);
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "add MPROC_TASK(mproc::tasks_test::triple<long>); at namespace scope"),
              std::string::npos)
        << e.what();
  }
}

TEST(Task, UnregisteredLibraryFunctionIsNamedFromTheDynamicSymbolTable) {
  try {
    (void)make_call(::getpid);
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find("getpid); at namespace scope"), std::string::npos)
        << e.what();
  }
}

TEST(Task, FunctionWithoutAKnownNameStillGetsTheLineToAdd) {
  // No symbol starts here (a stripped binary gives the same): the message falls back to the
  // function's type and a placeholder.
  detail::TaskKey key{&typeid(int (*)(int)), reinterpret_cast<std::uintptr_t>(&cube) + 1};
  try {
    detail::throw_not_registered(key);
  } catch (const NotRegisteredError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("int (*)(int)"), std::string::npos) << what;
    EXPECT_NE(what.find("add MPROC_TASK(<its name>); at namespace scope"), std::string::npos)
        << what;
  }
}

TEST(Task, UnregisteredCallableTypeIsNamedInTheError) {
  try {
    (void)make_call(Unregistered{});
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "add MPROC_TASK(mproc::tasks_test::Unregistered); at namespace scope"),
              std::string::npos)
        << e.what();
  }
}

TEST(Task, LambdaIsRefusedWithAnExplanation) {
  auto lambda = [](int x) { return x + 1; };
  try {
    (void)make_call(lambda, 1);
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find("a lambda cannot be a task"), std::string::npos)
        << e.what();
  }
}

TEST(Task, NullFunctionPointerIsNotATask) {
  int (*fn)(int) = nullptr;
  EXPECT_THROW((void)make_call(fn, 1), NotRegisteredError);
}

TEST(Task, TaskNameOfUnregisteredCallableThrows) {
  EXPECT_THROW((void)task_name(cube), NotRegisteredError);
}

TEST(Task, AnotherCallableUnderATakenNameIsRejected) {
  try {
    detail::register_task("square", {&typeid(&cube), reinterpret_cast<std::uintptr_t>(&cube)},
                          &detail::invoke_function<&cube>, nullptr);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("already registered for another callable"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(is_registered("cube"));
  EXPECT_EQ(call_here<int>(square, 3), 9);  // the first registration stands
}

TEST(Task, OneCallableUnderTwoNamesIsRejected) {
  try {
    detail::register_task("other_square",
                          {&typeid(&square), reinterpret_cast<std::uintptr_t>(&square)},
                          &detail::invoke_function<&square>, nullptr);
    FAIL() << "no ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("already registered as \"square\""), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(is_registered("other_square"));
}

TEST(Task, DuplicateRegistrationAtStartUpAbortsWithAClearMessage) {
  char path[] = "/tmp/mproc_task_test_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  auto exit = test::fork_and_wait([fd] {
    ::dup2(fd, STDERR_FILENO);
    // What MPROC_TASK(square) expands to, for another function named square elsewhere.
    detail::register_task_or_abort<&cube>("square");
    return 0;
  });
  std::string err(4096, '\0');
  ssize_t n = ::pread(fd, err.data(), err.size(), 0);
  ::close(fd);
  ::unlink(path);
  err.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  EXPECT_EQ(exit.code, -SIGABRT);
  EXPECT_NE(err.find("cannot register a task at start-up: MPROC_TASK(square)"), std::string::npos)
      << err;
}

TEST(Task, InvokeOfAnUnknownNameThrowsNotRegisteredErrorWithTheLineToAdd) {
  try {
    (void)invoke_task("no_such_task", "");
    FAIL() << "no NotRegisteredError";
  } catch (const NotRegisteredError& e) {
    EXPECT_NE(std::string(e.what()).find("add MPROC_TASK(no_such_task);"), std::string::npos)
        << e.what();
  }
}

TEST(Task, InvokeWithUndecodableArgumentsThrowsSerializationError) {
  EXPECT_THROW((void)invoke_task("concat", "\x01"), SerializationError);
  EXPECT_THROW((void)invoke_task("answer", "unexpected"), SerializationError);
  EXPECT_THROW((void)invoke_task("Scale", "\x01\x02"), SerializationError);
  std::string huge_prefix(8, '\xff');  // an object length far beyond the message
  EXPECT_THROW((void)invoke_task("Scale", huge_prefix), SerializationError);
}

TEST(Task, ForkedChildRunsACallMadeByTheParent) {
  CallEnvelope call = make_call(concat, "xy", 2);
  auto exit = test::fork_and_wait(
      [&] { return decode<std::string>(invoke_task(call.name, call.args)) == "xyxy" ? 0 : 1; });
  EXPECT_EQ(exit.code, 0);
}

// The name is all that travels: a freshly exec'ed copy of this program (which knows nothing of
// the parent's addresses) runs a call handed over in an environment variable.
TEST(Task, ExecedProgramRunsACallByName) {
  if (const char* hex = std::getenv("MPROC_TASK_TEST_CALL")) {
    std::string wire;
    for (std::size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
      wire.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
    }
    ResultEnvelope result = run_call(decode_call_view(wire));
    std::printf("result: %s\n", take_result<std::string>(result).c_str());
    return;
  }
  std::string wire = encode_call(make_call(Multiply{6, 7}));
  std::string hex;
  for (unsigned char c : wire) {
    char byte[3];
    std::snprintf(byte, sizeof byte, "%02x", c);
    hex += byte;
  }
  ::setenv("MPROC_TASK_TEST_CALL", hex.c_str(), 1);
  auto out =
      test::run_program("/proc/self/exe", {"--gtest_filter=Task.ExecedProgramRunsACallByName"});
  ::unsetenv("MPROC_TASK_TEST_CALL");
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("result: 6 * 7 = 42"), std::string::npos) << out.out;
}

}  // namespace
}  // namespace mproc

namespace mproc {
namespace {

using namespace tasks_test;

// mproc::task_call: a registered call bound to its arguments, run later (a Pool initializer
// under spawn and forkserver).
TEST(TaskCall, BindsNowRunsLaterAndTravels) {
  void_calls = 0;
  TaskCall call = task_call(bump, 5);
  EXPECT_EQ(call.name(), "bump");
  EXPECT_EQ(void_calls, 0);
  call();
  EXPECT_EQ(void_calls, 5);
  auto copy = decode<TaskCall>(encode(call));
  copy();
  EXPECT_EQ(void_calls, 10);
  std::function<void()> held = call;  // what PoolOptions::initializer stores
  ASSERT_NE(held.target<TaskCall>(), nullptr);
  EXPECT_EQ(held.target<TaskCall>()->name(), "bump");
}

TEST(TaskCall, UnregisteredCallableIsRefused) {
  EXPECT_THROW((void)task_call(
                   +[](int) {}, 1),
               NotRegisteredError);
}

}  // namespace
}  // namespace mproc
