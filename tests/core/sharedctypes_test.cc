#include "mproc/sharedctypes.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <numeric>
#include <ranges>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/lock.h"

#include "support.h"

namespace mproc {
namespace {

using namespace std::chrono_literals;
using test::fork_and_wait;

bool name_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

// Python's hasattr(obj, 'get_lock') / hasattr(obj, 'get_obj').
template <class T>
concept HasGetLock = requires(T v) {
  v.get_lock();
};
template <class T>
concept HasGetObj = requires(T v) {
  v.get_obj();
};

template <class T>
T round_trip(const T& object) {
  std::stringstream bytes;
  {
    boost::archive::binary_oarchive out(bytes, boost::archive::no_header);
    out << object;
  }
  boost::archive::binary_iarchive in(bytes, boost::archive::no_header);
  T copy;
  in >> copy;
  return copy;
}

// Python's test_value: typecodes 'i', 'd', 'h', 'q', 'c' with their initial and changed values.
template <template <class> class V>
struct FiveValues {
  V<int> i{4343};
  V<double> d{3.625};
  V<short> h{-232};
  V<long long> q{1LL << 33};
  V<char> c{'x'};
};

template <template <class> class V>
void check_initial_then_changed_by_a_child() {
  FiveValues<V> values;
  EXPECT_EQ(values.i.value(), 4343);
  EXPECT_EQ(values.d.value(), 3.625);
  EXPECT_EQ(values.h.value(), -232);
  EXPECT_EQ(values.q.value(), 1LL << 33);
  EXPECT_EQ(values.c.value(), 'x');
  auto result = fork_and_wait([&] {
    values.i = 24234;
    values.d = -4.25;
    values.h = 234;
    values.q = 1LL << 34;
    values.c = 'y';
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(values.i.value(), 24234);
  EXPECT_EQ(values.d.value(), -4.25);
  EXPECT_EQ(values.h.value(), 234);
  EXPECT_EQ(values.q.value(), 1LL << 34);
  EXPECT_EQ(values.c.value(), 'y');
}

// ---- Value and RawValue ----

TEST(Value, HoldsItsInitialValueAndSeesAChildsChanges) {
  check_initial_then_changed_by_a_child<Value>();
}

TEST(RawValue, HoldsItsInitialValueAndSeesAChildsChanges) {
  check_initial_then_changed_by_a_child<RawValue>();
}

TEST(Value, DefaultIsValueInitialized) {
  Value<double> d;
  RawValue<long> l;
  EXPECT_EQ(d.value(), 0.0);
  EXPECT_EQ(l.value(), 0);
}

TEST(Value, OnlyTriviallyCopyableTypesCanBeShared) {
  // Python's "bad typecode" becomes a compile-time check.
  static_assert(detail::kShareable<int> && detail::kShareable<double>);
  static_assert(!detail::kShareable<std::string>);
  static_assert(!detail::kShareable<std::vector<int>>);
  EXPECT_FALSE(detail::kShareable<std::string>);
}

TEST(Value, DefaultLockIsAnRLockUsableWithLockGuard) {
  Value<int> v(5);
  EXPECT_TRUE(v.has_lock());
  std::lock_guard hold(v.get_lock());
  EXPECT_TRUE(v.get_lock().locked());
  v = v.value() + 1;  // re-enters the RLock
  EXPECT_EQ(v.get_obj(), 6);
  ASSERT_TRUE(v.get_lock().acquire(false));  // recursive: the holder gets it again
  v.get_lock().release();
}

TEST(Value, WithoutALockGetLockThrowsValueError) {
  Value<int> v(5, false);
  EXPECT_FALSE(v.has_lock());
  EXPECT_THROW((void)v.get_lock(), ValueError);
  v = 6;
  EXPECT_EQ(v.value(), 6);
}

TEST(Value, GivenLockIsTheOneGetLockReturns) {
  Lock lock;
  Value<int> v(5, lock);
  EXPECT_EQ(v.get_lock().name(), lock.name());
  std::lock_guard hold(lock);
  EXPECT_TRUE(v.get_lock().locked());
}

TEST(RawValue, HasNoLockAndNoGetObj) {
  EXPECT_FALSE(HasGetLock<RawValue<int>>);
  EXPECT_FALSE(HasGetObj<RawValue<int>>);
  EXPECT_TRUE(HasGetLock<Value<int>>);
  EXPECT_TRUE(HasGetObj<Value<int>>);
  RawValue<int> v(5);
  *v += 1;
  EXPECT_EQ(v.value(), 6);
}

TEST(Value, IncrementsUnderTheLockFromSeveralProcessesAreNotLost) {
  Value<int> counter(0);
  constexpr int kChildren = 4, kIncrements = 2000;
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    pids.push_back(test::fork_child([&] {
      for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard hold(counter.get_lock());
        counter = counter.value() + 1;
      }
      return 0;
    }));
  }
  for (pid_t pid : pids) EXPECT_EQ(test::wait_child(pid, 30s).code, 0);
  EXPECT_EQ(counter.value(), kChildren * kIncrements);
}

TEST(Value, ValueWaitsWhileAnotherProcessHoldsTheLock) {
  Value<int> v(1);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = test::fork_child([&] {
    std::lock_guard hold(v.get_lock());
    v.get_obj() = 2;
    char c = 'r';
    (void)::write(ready[1], &c, 1);
    std::this_thread::sleep_for(400ms);
    v.get_obj() = 3;
    return 0;
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  int seen = 0;
  double waited = test::seconds_to_run([&] { seen = v.value(); });
  EXPECT_EQ(seen, 3);  // never the half-done 2
  EXPECT_GE(waited, 0.2);
  EXPECT_EQ(test::wait_child(pid).code, 0);
}

TEST(Value, TimedAccessThrowsTimeoutErrorWhileAnotherProcessHoldsTheLock) {
  Value<int> v(1);
  Array<int> arr(2);
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t pid = test::fork_child([&] {
    std::lock_guard hold_v(v.get_lock());
    std::lock_guard hold_arr(arr.get_lock());
    char c = 'r';
    (void)::write(ready[1], &c, 1);
    (void)::read(release[0], &c, 1);  // until the parent is done (or gone)
    return 0;
  });
  ::close(ready[1]);
  ::close(release[0]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  double waited = test::seconds_to_run([&] { EXPECT_THROW((void)v.value(300ms), TimeoutError); });
  EXPECT_GE(waited, 0.2);
  EXPECT_LT(waited, 5.0);
  EXPECT_THROW(v.set(2, Deadline::now()), TimeoutError);
  EXPECT_THROW((void)arr.get(0, 50ms), TimeoutError);
  EXPECT_THROW((void)arr.to_vector(Deadline::now()), TimeoutError);
  (void)::write(release[1], &c, 1);
  ::close(release[1]);
  ::close(ready[0]);
  EXPECT_EQ(test::wait_child(pid).code, 0);
  EXPECT_EQ(v.value(1s), 1);
  arr.set(1, 4, 1s);
  EXPECT_EQ(arr.get(1, 1s), 4);
}

TEST(Value, LockOfADeadHolderIsTakenOver) {
  Value<int> v(7);
  auto result = fork_and_wait([&] {
    v.get_lock().acquire();
    ::_exit(0);  // dies holding it
    return 1;
  });
  ASSERT_EQ(result.code, 0);
  // Another process, then this one, still get at the value.
  auto child = fork_and_wait([&] { return v.value(5s) == 7 ? 0 : 1; }, 10s);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.code, 0);
  EXPECT_EQ(v.value(5s), 7);
}

TEST(Value, AttachByNameSharesTheValueAndTheLock) {
  Value<long> v(10);
  std::string name = v.name();
  auto result = fork_and_wait([&] {
    auto same = Value<long>::attach(name);
    if (same.get_lock().name() != v.get_lock().name()) return 2;
    std::lock_guard hold(same.get_lock());
    same = same.value() * 3;
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(v.value(), 30);
}

TEST(Value, AttachWithoutALockHasNone) {
  Value<int> v(1, false);
  auto same = Value<int>::attach(v.name());
  EXPECT_FALSE(same.has_lock());
}

TEST(Value, AttachAsAnotherTypeIsAValueError) {
  Value<int> v(1);
  EXPECT_THROW((void)Value<double>::attach(v.name()), ValueError);
  EXPECT_THROW((void)RawArray<char>::attach(v.name()), ValueError);
}

TEST(Value, AttachToAMissingNameThrowsSystemError) {
  EXPECT_THROW((void)Value<int>::attach("mproc-1-does-not-exist"), std::system_error);
}

TEST(Value, SerializedHandleRefersToTheSameValue) {
  Value<int> v(1);
  auto copy = round_trip(v);
  EXPECT_EQ(copy.name(), v.name());
  copy = 9;
  EXPECT_EQ(v.value(), 9);
  RawValue<int> raw(3);
  auto raw_copy = round_trip(raw);
  raw = 4;
  EXPECT_EQ(raw_copy.value(), 4);
}

struct Point {
  int x;
  double y;
  long long z;
};

TEST(Value, StructFieldsDoubledByAChildAreSeen) {
  Value<Point> point(Point{1, -2.5, 1LL << 40});
  Value<Point> unlocked(Point{2, 0.5, 3}, false);
  auto result = fork_and_wait([&] {
    for (auto* p : {&point, &unlocked}) {
      std::unique_lock<LockBase> hold;
      if (p->has_lock()) hold = std::unique_lock<LockBase>(p->get_lock());
      p->get_obj().x *= 2;
      (*p)->y *= 2;
      p->get_obj().z *= 2;
    }
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  Point p = point.value();
  EXPECT_EQ(p.x, 2);
  EXPECT_EQ(p.y, -5.0);
  EXPECT_EQ(p.z, 1LL << 41);
  Point u = unlocked.value();
  EXPECT_EQ(u.x, 4);
  EXPECT_EQ(u.y, 1.0);
  EXPECT_EQ(u.z, 6);
}

TEST(Value, CopyIsIndependent) {
  Value<Point> point(Point{1, 2.0, 3});
  RawValue<Point> copy = point.copy();
  EXPECT_NE(copy.name(), point.name());
  copy->x = 100;
  EXPECT_EQ(point.value().x, 1);
  EXPECT_EQ(copy.value().z, 3);
}

TEST(Value, SegmentGoesWithTheCreatorsLastHandle) {
  std::string name;
  {
    Value<int> v(1);
    name = v.name();
    Value<int> copy = v;  // a handle, not a new value
    copy = 2;
    EXPECT_EQ(v.value(), 2);
    EXPECT_TRUE(name_exists(name));
  }
  EXPECT_FALSE(name_exists(name));
}

// ---- Array and RawArray ----

const std::vector<int> kSeq{680, 626, 934, 821, 150, 233, 548, 982, 714, 831};

template <class A>
void check_len_index_slice_and_child_prefix_sums() {
  A arr(kSeq);
  std::vector<int> seq = kSeq;
  EXPECT_EQ(arr.size(), seq.size());
  EXPECT_EQ(arr[3], seq[3]);
  auto middle = arr.slice(2, 7);
  EXPECT_EQ(std::vector<int>(middle.begin(), middle.end()),
            std::vector<int>(seq.begin() + 2, seq.begin() + 7));
  // Python: arr[4:8] = seq[4:8] = array.array('i', [1, 2, 3, 4])
  const std::vector<int> four{1, 2, 3, 4};
  std::ranges::copy(four, arr.slice(4, 8).begin());
  std::ranges::copy(four, seq.begin() + 4);
  EXPECT_EQ(arr.to_vector(), seq);
  std::partial_sum(seq.begin(), seq.end(), seq.begin());
  auto result = fork_and_wait([&] {
    for (std::size_t i = 1; i < arr.size(); ++i) arr[i] += arr[i - 1];
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(arr.to_vector(), seq);
}

TEST(Array, SupportsLenIndexingSlicingAndAChildsInPlaceChanges) {
  check_len_index_slice_and_child_prefix_sums<Array<int>>();
}

TEST(RawArray, SupportsLenIndexingSlicingAndAChildsInPlaceChanges) {
  check_len_index_slice_and_child_prefix_sums<RawArray<int>>();
}

TEST(Array, FromSizeIsZeroInitialized) {
  for (int round = 0; round < 3; ++round) {
    Array<int> arr(10);
    EXPECT_EQ(arr.size(), 10u);
    EXPECT_EQ(arr.to_vector(), std::vector<int>(10, 0));
    std::ranges::copy(std::views::iota(0, 10), arr.begin());
    EXPECT_EQ(arr.to_vector(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
  RawArray<double> raw(5);
  EXPECT_EQ(raw.to_vector(), std::vector<double>(5, 0.0));
}

TEST(Array, SliceIsClampedAsPythonsIs) {
  Array<int> arr(std::views::iota(0, 5));
  EXPECT_EQ(arr.slice(3, 100).size(), 2u);
  EXPECT_EQ(arr.slice(7, 9).size(), 0u);
}

TEST(Array, LockSemanticsMatchValue) {
  Array<int> locked(std::views::iota(0, 10));
  EXPECT_TRUE(locked.has_lock());
  { std::lock_guard hold(locked.get_lock()); }
  EXPECT_EQ(locked.get_obj().size(), 10u);

  Lock lock;
  Array<int> shared(std::views::iota(0, 10), lock);
  EXPECT_EQ(shared.get_lock().name(), lock.name());

  Array<int> unlocked(std::views::iota(0, 10), false);
  EXPECT_FALSE(unlocked.has_lock());
  EXPECT_THROW((void)unlocked.get_lock(), ValueError);

  EXPECT_FALSE(HasGetLock<RawArray<int>>);
  EXPECT_FALSE(HasGetObj<RawArray<int>>);
  EXPECT_TRUE(HasGetLock<Array<int>>);
}

TEST(Array, GetAndSetOutOfRangeThrowIndexError) {
  Array<int> arr(3);
  RawArray<int> raw(3);
  EXPECT_THROW((void)arr.get(3), IndexError);
  EXPECT_THROW(arr.set(3, 1), IndexError);
  EXPECT_THROW((void)raw.get(3), IndexError);
  arr.set(2, 5);
  EXPECT_EQ(arr.get(2), 5);
}

TEST(Array, CharArrayHoldsAString) {
  Array<char> text(20);
  EXPECT_EQ(text.str(), "");
  text.set_str("hello world");
  EXPECT_EQ(text.str(), "hello world");
  text.set_str("bye");
  EXPECT_EQ(text.str(), "bye");
  EXPECT_THROW(text.set_str(std::string(21, 'x')), ValueError);
  RawArray<char> exact(3);
  exact.set_str("abc");  // fits exactly, without a terminator
  EXPECT_EQ(exact.str(), "abc");
}

TEST(Array, DoublesAndCharsChangedByAChildAreSeen) {
  Array<double> d{1.5, -2.0, 0.25};
  Array<char> text(20);
  text.set_str("hello world");
  auto result = fork_and_wait([&] {
    std::lock_guard hold(d.get_lock());
    for (double& x : d) x *= 2;
    std::string s = text.str();
    text.set_str(s + s.substr(0, 5));
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(d.to_vector(), (std::vector<double>{3.0, -4.0, 0.5}));
  EXPECT_EQ(text.str(), "hello worldhello");
}

TEST(Array, AttachByNameSharesTheElementsAndTheLock) {
  Array<int> arr(std::views::iota(0, 10));
  std::string name = arr.name();
  auto result = fork_and_wait([&] {
    auto same = Array<int>::attach(name);
    if (same.size() != 10 || same.get_lock().name() != arr.get_lock().name()) return 2;
    std::lock_guard hold(same.get_lock());
    for (int& x : same) x = -x;
    return 0;
  });
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(arr.to_vector(), (std::vector<int>{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}));
}

TEST(Array, AttachAsAnotherTypeIsAValueError) {
  Array<int> arr(4);
  EXPECT_THROW((void)Array<long>::attach(arr.name()), ValueError);
  EXPECT_THROW((void)RawArray<float>::attach(arr.name()), ValueError);
}

TEST(Array, SerializedHandleRefersToTheSameArray) {
  Array<int> arr(std::views::iota(0, 4));
  auto copy = round_trip(arr);
  copy[0] = 42;
  EXPECT_EQ(arr.get(0), 42);
  RawArray<int> raw(std::views::iota(0, 4));
  auto raw_copy = round_trip(raw);
  raw[3] = 7;
  EXPECT_EQ(raw_copy[3], 7);
}

TEST(Array, CopyIsIndependent) {
  Array<int> arr(std::views::iota(0, 4));
  RawArray<int> copy = arr.copy();
  copy[0] = 99;
  EXPECT_EQ(arr.get(0), 0);
  EXPECT_EQ(copy.to_vector(), (std::vector<int>{99, 1, 2, 3}));
  RawArray<int> again = copy.copy();
  again[1] = 5;
  EXPECT_EQ(copy[1], 1);
}

TEST(Array, CopiedHandleSharesTheElements) {
  Array<int> arr(3);
  Array<int> handle(arr);  // a handle copy, not a new array from a range
  handle[1] = 8;
  EXPECT_EQ(arr.get(1), 8);
  EXPECT_EQ(handle.name(), arr.name());
}

TEST(Array, SingleAccessWaitsWhileAnotherProcessHoldsTheLock) {
  Array<int> arr(2);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = test::fork_child([&] {
    std::lock_guard hold(arr.get_lock());
    arr[0] = 1;
    char c = 'r';
    (void)::write(ready[1], &c, 1);
    std::this_thread::sleep_for(400ms);
    arr[1] = 1;
    return 0;
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  std::vector<int> seen;
  double waited = test::seconds_to_run([&] { seen = arr.to_vector(); });
  EXPECT_EQ(seen, (std::vector<int>{1, 1}));
  EXPECT_GE(waited, 0.2);
  EXPECT_EQ(test::wait_child(pid).code, 0);
}

TEST(Array, EmptyArrayHasNoElements) {
  Array<int> arr(0);
  EXPECT_TRUE(arr.empty());
  EXPECT_EQ(arr.begin(), arr.end());
  EXPECT_TRUE(arr.to_vector().empty());
}

}  // namespace
}  // namespace mproc
