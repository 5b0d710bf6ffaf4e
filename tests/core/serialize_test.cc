// mproc/serialize.h: round trips of every supported type, the raw and Boost paths, and that a
// truncated, corrupt or wrongly typed message only ever yields SerializationError.
#include "mproc/serialize.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include <boost/serialization/version.hpp>
#include <gtest/gtest.h>

#include "mproc/condition.h"
#include "mproc/errors.h"
#include "mproc/event.h"
#include "mproc/lock.h"
#include "mproc/queue.h"
#include "mproc/semaphore.h"
#include "mproc/sharedctypes.h"

#include "support.h"

namespace {

using mproc::decode;
using mproc::encode;
using mproc::SerializationError;

struct Point {
  std::string name;
  std::vector<double> xs;
  std::optional<int> tag;
  bool operator==(const Point&) const = default;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& name& xs& tag;
  }
};

class Private {
 public:
  Private() = default;
  explicit Private(int v) : v_(v) {}
  [[nodiscard]] int v() const { return v_; }

 private:
  friend class boost::serialization::access;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& v_;
  }
  int v_ = 0;
};

struct Pod {
  int a;
  double b;
  char c[3];
  bool operator==(const Pod& o) const {
    return a == o.a && b == o.b && c[0] == o.c[0] && c[1] == o.c[1] && c[2] == o.c[2];
  }
};

enum class Color : std::uint8_t { kRed = 1, kGreen = 2 };

struct ThrowsOnSave {
  template <class Ar>
  void serialize(Ar&, unsigned) {
    throw std::runtime_error("no");
  }
};

struct Versioned {
  int a = 0;
  int b = 0;  // added in version 1
  template <class Ar>
  void serialize(Ar& ar, unsigned version) {
    ar& a;
    if (version >= 1) ar& b;
  }
};

struct Outer {
  Point p;
  std::vector<Versioned> vs;
  std::variant<int, Point> v;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar& p& vs& v;
  }
};

}  // namespace

BOOST_CLASS_VERSION(Versioned, 1)

namespace {

template <class T>
T round_trip(const T& v) {
  return decode<T>(encode(v));
}

// Decoding `bytes` either succeeds or throws SerializationError; nothing else.
template <class T>
::testing::AssertionResult only_serialization_error(std::string_view bytes) {
  try {
    (void)decode<T>(bytes);
  } catch (const SerializationError&) {
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure()
           << "decode threw " << mproc::detail::demangle(typeid(e)) << ": " << e.what();
  }
  return ::testing::AssertionSuccess();
}

template <class T>
::testing::AssertionResult throws_serialization_error(std::string_view bytes) {
  try {
    (void)decode<T>(bytes);
  } catch (const SerializationError&) {
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw " << e.what();
  }
  return ::testing::AssertionFailure() << "decoded without an error";
}

TEST(Serialize, ArithmeticRoundTrips) {
  EXPECT_EQ(round_trip(42), 42);
  EXPECT_EQ(round_trip(std::int64_t{-1} << 62), std::int64_t{-1} << 62);
  EXPECT_EQ(round_trip(3.1415927), 3.1415927);
  EXPECT_EQ(round_trip(2.5f), 2.5f);
  EXPECT_EQ(round_trip('x'), 'x');
  EXPECT_EQ(round_trip(true), true);
  EXPECT_EQ(round_trip(false), false);
  EXPECT_EQ(round_trip(Color::kGreen), Color::kGreen);
}

TEST(Serialize, StringsRoundTripAndStringLikeValuesTravelAsString) {
  EXPECT_EQ(round_trip(std::string("hello")), "hello");
  EXPECT_EQ(round_trip(std::string()), "");
  EXPECT_EQ(round_trip(std::string("a\0b", 3)), std::string("a\0b", 3));
  EXPECT_EQ(decode<std::string>(encode("Mark大帅哥")), "Mark大帅哥");
  EXPECT_EQ(decode<std::string>(encode(std::string_view("view"))), "view");
  const char* p = "ptr";
  EXPECT_EQ(decode<std::string>(encode(p)), "ptr");
}

TEST(Serialize, NullCharPointerThrowsSerializationError) {
  const char* p = nullptr;
  EXPECT_THROW((void)encode(p), SerializationError);
}

TEST(Serialize, VectorsOfTrivialTypesTakeTheRawPath) {
  const std::vector<int> v{1, 2, 3};
  const std::string bytes = encode(v);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), mproc::detail::kTagRaw);
  EXPECT_EQ(bytes.size(), mproc::detail::kHeaderSize + 3 * sizeof(int));
  EXPECT_EQ(decode<std::vector<int>>(bytes), v);
  EXPECT_EQ(round_trip(std::vector<double>{}), std::vector<double>{});
  EXPECT_EQ(round_trip(std::vector<Pod>{{1, 2.0, {'a', 'b', 'c'}}}),
            (std::vector<Pod>{{1, 2.0, {'a', 'b', 'c'}}}));
}

TEST(Serialize, ContiguousRangesDecodeAsVector) {
  const int raw[] = {5, 6, 7};
  EXPECT_EQ(decode<std::vector<int>>(encode(std::span<const int>(raw))),
            (std::vector<int>{5, 6, 7}));
}

TEST(Serialize, TriviallyCopyableTypesTakeTheRawPath) {
  const Pod p{7, -1.5, {'x', 'y', 'z'}};
  const std::string bytes = encode(p);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), mproc::detail::kTagRaw);
  EXPECT_EQ(decode<Pod>(bytes), p);
  EXPECT_EQ(round_trip(std::array<int, 3>{1, 2, 3}), (std::array<int, 3>{1, 2, 3}));
}

TEST(Serialize, StdContainersRoundTrip) {
  EXPECT_EQ(round_trip(std::vector<bool>{true, false, true}),
            (std::vector<bool>{true, false, true}));
  EXPECT_EQ(round_trip(std::vector<std::string>{"a", "", "ccc"}),
            (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(round_trip(std::vector<std::vector<int>>{{1}, {}, {2, 3}}),
            (std::vector<std::vector<int>>{{1}, {}, {2, 3}}));
  EXPECT_EQ(round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}}),
            (std::map<std::string, int>{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(round_trip(std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}}),
            (std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}}));
  EXPECT_EQ(round_trip(std::set<int>{3, 1, 2}), (std::set<int>{1, 2, 3}));
  EXPECT_EQ(round_trip(std::unordered_set<std::string>{"p", "q"}),
            (std::unordered_set<std::string>{"p", "q"}));
  EXPECT_EQ(round_trip(std::list<std::string>{"l1", "l2"}), (std::list<std::string>{"l1", "l2"}));
  EXPECT_EQ(round_trip(std::deque<int>{4, 5}), (std::deque<int>{4, 5}));
  EXPECT_EQ(round_trip(std::array<std::string, 2>{"s", "t"}),
            (std::array<std::string, 2>{"s", "t"}));
}

TEST(Serialize, PairTupleOptionalVariantRoundTrip) {
  EXPECT_EQ(round_trip(std::pair<int, std::string>{4, "5"}), (std::pair<int, std::string>{4, "5"}));
  using Tup = std::tuple<int, double, std::string>;
  EXPECT_EQ(round_trip(Tup{4, 5.5, "Mark"}), (Tup{4, 5.5, "Mark"}));
  EXPECT_EQ(round_trip(std::tuple<>{}), std::tuple<>{});
  EXPECT_EQ(round_trip(std::optional<int>{}), std::nullopt);
  EXPECT_EQ(round_trip(std::optional<int>{3}), std::optional<int>{3});
  EXPECT_EQ(round_trip(std::optional<std::string>{"s"}), std::optional<std::string>{"s"});
  using Var = std::variant<std::monostate, int, std::string, std::vector<int>>;
  EXPECT_EQ(round_trip(Var{}), Var{});
  EXPECT_EQ(round_trip(Var{7}), Var{7});
  EXPECT_EQ(round_trip(Var{std::string("v")}), Var{std::string("v")});
  EXPECT_EQ(round_trip(Var{std::vector<int>{1, 2}}), (Var{std::vector<int>{1, 2}}));
}

TEST(Serialize, NestedCombinationsRoundTrip) {
  using Nested = std::map<std::string, std::vector<std::optional<std::tuple<int, std::string>>>>;
  const Nested n{{"a", {std::nullopt, std::tuple{1, std::string("one")}}}, {"b", {}}};
  EXPECT_EQ(round_trip(n), n);
  const std::optional<Pod> op = Pod{1, 2, {'a', 'b', 'c'}};
  EXPECT_EQ(round_trip(op), op);
  const std::map<int, Pod> mp{{1, Pod{3, 4, {'d', 'e', 'f'}}}};
  EXPECT_EQ(round_trip(mp), mp);
}

TEST(Serialize, UserTypesWithSerializeMemberRoundTrip) {
  const Point p{"p", {1.5, -2}, 7};
  EXPECT_EQ(round_trip(p), p);
  const std::vector<Point> ps{p, Point{"q", {}, std::nullopt}};
  EXPECT_EQ(round_trip(ps), ps);
  EXPECT_EQ(round_trip(Private(9)).v(), 9);
  const std::map<std::string, Point> m{{"k", p}};
  EXPECT_EQ(round_trip(m), m);
}

TEST(Serialize, NestedUserTypesWithClassVersionsRoundTrip) {
  Outer o{Point{"p", {1}, 2}, {Versioned{1, 2}, Versioned{3, 4}}, Point{"v", {}, {}}};
  const Outer back = round_trip(o);
  EXPECT_EQ(back.p, o.p);
  ASSERT_EQ(back.vs.size(), 2u);
  EXPECT_EQ(back.vs[1].a, 3);
  EXPECT_EQ(back.vs[1].b, 4);
  EXPECT_EQ(std::get<Point>(back.v).name, "v");
}

TEST(Serialize, StdContainersCarryNoPerTypeBoostClassInfo) {
  // header, count, then (length, bytes) per string: nothing else.
  EXPECT_EQ(encode(std::vector<std::string>{"ab", "c"}).size(), 5u + 8 + (8 + 2) + (8 + 1));
  // header, count, then key and value per item.
  EXPECT_EQ(encode(std::map<int, std::optional<int>>{{1, 2}}).size(), 5u + 8 + 4 + 1 + 4);
  EXPECT_EQ(encode(std::tuple<int, std::string>{1, "x"}).size(), 5u + 4 + 8 + 1);
}

TEST(Serialize, TypesWithTheSameLayoutAreStillToldApart) {
  EXPECT_TRUE(throws_serialization_error<std::vector<unsigned>>(encode(std::vector<int>{1})));
  EXPECT_TRUE(throws_serialization_error<float>(encode(std::int32_t{1})));
  EXPECT_TRUE(
      (throws_serialization_error<std::map<int, int>>(encode(std::unordered_map<int, int>{}))));
}

TEST(Serialize, ConcurrentEncodeAndDecodeFromThreadsAgree) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 2000; ++i) {
        const std::vector<Point> v{Point{std::to_string(t), {double(i)}, i}};
        if (decode<std::vector<Point>>(encode(v)) != v) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(Serialize, EncodeIntoAppendsAfterExistingBytes) {
  std::string out = "prefix";
  mproc::encode_into(std::vector<int>{1, 2}, out);
  const std::size_t first_end = out.size();
  mproc::encode_into(std::string("s"), out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  const std::string_view all(out);
  EXPECT_EQ(decode<std::vector<int>>(all.substr(6, first_end - 6)), (std::vector<int>{1, 2}));
  EXPECT_EQ(decode<std::string>(all.substr(first_end)), "s");
}

TEST(Serialize, EncodeIntoReusesCapacity) {
  std::string out;
  out.reserve(4096);
  const char* data = out.data();
  mproc::encode_into(std::map<int, int>{{1, 2}}, out);
  EXPECT_EQ(out.data(), data);
}

TEST(Serialize, EncodeIntoLeavesOutUnchangedWhenSaveThrows) {
  std::string out = "keep";
  EXPECT_THROW(mproc::encode_into(std::vector<ThrowsOnSave>(1), out), std::runtime_error);
  EXPECT_EQ(out, "keep");
}

TEST(Serialize, DecodeIntoReusesTheTarget) {
  std::vector<int> v;
  mproc::decode_into(encode(std::vector<int>{1, 2, 3}), v);
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3}));
}

TEST(Serialize, WrongTypeThrowsNamingTheExpectedType) {
  try {
    (void)decode<std::vector<int>>(encode(std::string("x")));
    FAIL() << "no exception";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("std::vector<int"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(throws_serialization_error<int>(encode(std::int64_t{1})));
  EXPECT_TRUE(throws_serialization_error<Point>(encode(std::map<int, int>{})));
  EXPECT_TRUE(throws_serialization_error<std::string>(encode(1.0)));
}

TEST(Serialize, EmptyOrForeignMessageThrows) {
  EXPECT_TRUE(throws_serialization_error<int>(""));
  EXPECT_TRUE(throws_serialization_error<int>("abc"));
  std::string m = encode(5);
  m[0] = 0x7f;
  EXPECT_TRUE(throws_serialization_error<int>(m));
}

TEST(Serialize, RawScalarOfWrongSizeThrows) {
  std::string m = encode(5);
  EXPECT_TRUE(throws_serialization_error<int>(m + "x"));
  EXPECT_TRUE(throws_serialization_error<int>(m.substr(0, m.size() - 1)));
  EXPECT_TRUE(throws_serialization_error<std::vector<int>>(encode(std::vector<int>{1}) + "x"));
}

TEST(Serialize, TrailingBytesAfterAnArchiveThrow) {
  EXPECT_TRUE(throws_serialization_error<Point>(encode(Point{}) + "x"));
}

// A header for a T message followed by `payload`.
template <class T>
std::string with_payload(const T& sample, std::string_view payload) {
  return encode(sample).substr(0, mproc::detail::kHeaderSize) + std::string(payload);
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

TEST(Serialize, HugeCountIsRefusedBeforeAllocating) {
  const std::string counts[] = {le64(std::uint64_t{1} << 60), le64(~std::uint64_t{0}),
                                le64(std::uint64_t{1} << 40)};
  for (const std::string& c : counts) {
    EXPECT_TRUE(throws_serialization_error<std::vector<std::string>>(
        with_payload(std::vector<std::string>{}, c + "abcd")));
    EXPECT_TRUE(throws_serialization_error<std::vector<std::vector<int>>>(
        with_payload(std::vector<std::vector<int>>{}, c)));
    using IntMap = std::map<int, int>;
    EXPECT_TRUE(throws_serialization_error<IntMap>(with_payload(IntMap{}, c + "abcd")));
    EXPECT_TRUE(
        throws_serialization_error<std::vector<Point>>(with_payload(std::vector<Point>{}, c)));
    EXPECT_TRUE(throws_serialization_error<std::optional<std::string>>(
        with_payload(std::optional<std::string>{}, "\x01" + c)));
    EXPECT_TRUE(throws_serialization_error<std::unordered_set<int>>(
        with_payload(std::unordered_set<int>{}, c)));
  }
}

TEST(Serialize, InvalidBoolOptionalAndVariantStatesThrow) {
  EXPECT_TRUE(throws_serialization_error<bool>(with_payload(true, "\x02")));
  EXPECT_TRUE(throws_serialization_error<std::optional<int>>(
      with_payload(std::optional<int>{}, std::string("\x07") + "abcd")));
  using Var = std::variant<int, std::string>;
  std::string bad_index = "\x02";
  bad_index += std::string(3, '\0') + "abcd";
  EXPECT_TRUE(throws_serialization_error<Var>(with_payload(Var{}, bad_index)));
  EXPECT_TRUE(throws_serialization_error<std::vector<bool>>(
      with_payload(std::vector<bool>{}, le64(1) + "\x05")));
}

// Valid messages of many types, with the decoder that must accept each.
struct Sample {
  std::string bytes;
  std::function<void(std::string_view)> check;  // decodes; asserts only SerializationError
};

template <class T>
Sample sample_of(const T& v) {
  return Sample{encode(v), [](std::string_view b) { EXPECT_TRUE(only_serialization_error<T>(b)); }};
}

std::vector<Sample> samples() {
  using Var = std::variant<std::monostate, int, std::string, std::vector<double>>;
  return {
      sample_of(42),
      sample_of(true),
      sample_of(std::string("hello world")),
      sample_of(std::vector<int>{1, 2, 3, 4}),
      sample_of(std::vector<std::string>{"a", "bb", "", "dddd"}),
      sample_of(std::vector<std::vector<int>>{{1, 2}, {}, {3}}),
      sample_of(std::vector<bool>{true, false}),
      sample_of(std::map<std::string, std::vector<int>>{{"x", {1}}, {"y", {}}}),
      sample_of(std::unordered_map<int, std::string>{{1, "a"}, {2, "b"}}),
      sample_of(std::set<std::string>{"s", "t"}),
      sample_of(std::tuple<int, std::string, double>{1, "two", 3.0}),
      sample_of(std::optional<std::string>{"opt"}),
      sample_of(Var{std::vector<double>{1.5, 2.5}}),
      sample_of(Point{"pt", {1, 2, 3}, 4}),
      sample_of(std::vector<Point>{Point{"a", {}, {}}, Point{"b", {1}, 2}}),
      sample_of(std::map<int, Pod>{{1, Pod{2, 3, {'a', 'b', 'c'}}}}),
      sample_of(std::list<std::optional<int>>{1, std::nullopt}),
  };
}

TEST(Serialize, EveryTruncationOfAValidMessageYieldsOnlySerializationError) {
  for (const Sample& s : samples()) {
    for (std::size_t n = 0; n < s.bytes.size(); ++n) {
      s.check(std::string_view(s.bytes).substr(0, n));
    }
  }
}

TEST(Serialize, EveryStrictTruncationOfAnArchiveMessageThrows) {
  const std::string m = encode(std::map<std::string, std::vector<int>>{{"x", {1}}, {"y", {2}}});
  for (std::size_t n = 0; n < m.size(); ++n) {
    EXPECT_TRUE((throws_serialization_error<std::map<std::string, std::vector<int>>>(
        std::string_view(m).substr(0, n))))
        << "prefix " << n;
  }
}

TEST(Serialize, RandomBytesYieldOnlySerializationError) {
  const std::vector<Sample> all = samples();
  std::mt19937_64 rng(12345);
  for (int seed = 0; seed < 3000; ++seed) {
    rng.seed(seed);
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    for (const Sample& s : all) s.check(junk);
  }
}

TEST(Serialize, RandomPayloadsBehindAValidHeaderYieldOnlySerializationError) {
  const std::vector<Sample> all = samples();
  std::mt19937_64 rng;
  for (int seed = 0; seed < 3000; ++seed) {
    rng.seed(seed);
    for (const Sample& s : all) {
      std::string m = s.bytes.substr(0, mproc::detail::kHeaderSize);
      m.resize(m.size() + rng() % 48);
      for (std::size_t i = mproc::detail::kHeaderSize; i < m.size(); ++i) {
        // Mostly small bytes, so that counts and flags are often plausible.
        m[i] = static_cast<char>(rng() % 4 == 0 ? rng() : rng() % 3);
      }
      s.check(m);
    }
  }
}

TEST(Serialize, RandomByteFlipsOfValidMessagesYieldOnlySerializationError) {
  const std::vector<Sample> all = samples();
  std::mt19937_64 rng;
  for (int seed = 0; seed < 3000; ++seed) {
    rng.seed(seed);
    for (const Sample& s : all) {
      std::string m = s.bytes;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) {
        const std::size_t i = mproc::detail::kHeaderSize +
                              rng() % (m.size() - mproc::detail::kHeaderSize + (m.size() == 5));
        if (i < m.size()) m[i] = static_cast<char>(rng());
      }
      s.check(m);
    }
  }
}

TEST(Serialize, MessageEncodedInOneProcessDecodesInAnother) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const auto child = mproc::test::fork_and_wait([&] {
    ::close(fds[0]);
    const std::string m = encode(std::vector<Point>{Point{"from child", {1, 2}, 3}});
    const bool ok = ::write(fds[1], m.data(), m.size()) == static_cast<ssize_t>(m.size());
    ::close(fds[1]);
    return ok ? 0 : 1;
  });
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ASSERT_EQ(child.code, 0);
  EXPECT_EQ(decode<std::vector<Point>>(got), (std::vector<Point>{Point{"from child", {1, 2}, 3}}));
}

}  // namespace

// An enum member inside a serialize member: Boost saves it through its nvp wrapper, which must
// not be taken for a trivially copyable value of its own.
enum class Hue : unsigned char { kRed, kGreen, kBlue };
struct Paint {
  Hue hue = Hue::kRed;
  std::string name;
  template <class Ar>
  void serialize(Ar& ar, unsigned /*version*/) {
    ar& hue& name;
  }
};

TEST(Serialize, EnumMembersOfASerializeMemberRoundTrip) {
  const Paint back = decode<Paint>(encode(Paint{Hue::kBlue, "sky"}));
  EXPECT_EQ(back.hue, Hue::kBlue);
  EXPECT_EQ(back.name, "sky");
}

// ---- handles to shared objects load by attaching, and make nothing of their own on the way

namespace {

// The number in a segment name "mproc-<pid>-<n>": this process's count of segments made.
std::uint64_t segment_number(const std::string& name) {
  return std::stoull(name.substr(name.rfind('-') + 1));
}

TEST(SerializeHandles, LoadingQueuesAndLocksAttachesWithoutCreatingASegment) {
  mproc::Queue<int> queue;
  mproc::JoinableQueue<int> joinable;
  mproc::Lock lock;
  mproc::RLock rlock;
  mproc::Semaphore semaphore(3);
  mproc::Event event;
  mproc::Value<int> value(5);
  using Arguments =
      std::tuple<mproc::Queue<int>, mproc::JoinableQueue<int>, mproc::Lock, mproc::RLock,
                 mproc::Semaphore, mproc::Event, mproc::Value<int>, int>;
  const std::string bytes =
      encode(Arguments(queue, joinable, lock, rlock, semaphore, event, value, 7));

  const mproc::Lock before;
  auto loaded = decode<Arguments>(bytes);
  const auto one_queue = decode<mproc::Queue<int>>(encode(queue));
  const auto one_condition = decode<mproc::Condition>(encode(mproc::Condition(lock)));
  const mproc::Lock after;
  // One segment between `before` and `after`: the Condition's own (the handles made none).
  EXPECT_EQ(segment_number(after.name()) - segment_number(before.name()), 2u);

  EXPECT_EQ(std::get<0>(loaded).name(), queue.name());
  EXPECT_EQ(std::get<1>(loaded).name(), joinable.name());
  EXPECT_EQ(std::get<2>(loaded).name(), lock.name());
  EXPECT_EQ(std::get<3>(loaded).name(), rlock.name());
  EXPECT_EQ(std::get<4>(loaded).name(), semaphore.name());
  EXPECT_EQ(std::get<5>(loaded).name(), event.name());
  EXPECT_EQ(std::get<6>(loaded).name(), value.name());
  EXPECT_EQ(std::get<7>(loaded), 7);
  EXPECT_EQ(one_queue.name(), queue.name());
  // And they are the same objects.
  std::get<0>(loaded).put(11);
  EXPECT_EQ(queue.get(std::chrono::seconds(5)), 11);
  std::get<5>(loaded).set();
  EXPECT_TRUE(event.is_set());
  EXPECT_EQ(std::get<6>(loaded).value(), 5);
}

TEST(SerializeHandles, ATruncatedHandleMessageThrowsAndLeavesNothingBehind) {
  mproc::Queue<int> queue;
  std::string bytes = encode(std::tuple<mproc::Queue<int>, mproc::Lock>(queue, mproc::Lock()));
  bytes.resize(bytes.size() - 3);
  using Arguments = std::tuple<mproc::Queue<int>, mproc::Lock>;
  EXPECT_THROW((void)decode<Arguments>(bytes), SerializationError);
}

}  // namespace
