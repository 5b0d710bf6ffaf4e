// mproc/object.h: Python's repr, equality, ordering and hashing for the dynamic value, and its
// wire form (round trips; corrupt messages yield only SerializationError). Expected strings and
// hashes were produced once by python3 (3.11) for the same values.
#include "mproc/object.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "mproc/errors.h"
#include "mproc/serialize.h"

#include "support.h"

namespace {

using mproc::Dict;
using mproc::None;
using mproc::Object;

double from_bits(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

TEST(Object, SeedValuesPrintAsPythonPrintsThem) {
  std::ostringstream b;
  b << Object::list({42, None, "hello"});
  EXPECT_EQ(b.str(), "[42, None, 'hello']");
  std::ostringstream j;
  j << Object::dict({{1, "1"}, {"2", 2}, {0.25, None}});
  EXPECT_EQ(j.str(), "{1: '1', '2': 2, 0.25: None}");
}

// A pointer used to convert to bool and arrive as True; only C strings convert now.
void a_function() {}
static_assert(!std::is_constructible_v<Object, int*>);
static_assert(!std::is_constructible_v<Object, const void*>);
static_assert(!std::is_constructible_v<Object, decltype(&a_function)>);
static_assert(std::is_constructible_v<Object, char*>);

TEST(Object, CStringsOfEitherConstnessAreStrings) {
  char text[] = "abc";
  const char* constant = "abc";
  EXPECT_EQ(Object(text), Object("abc"));
  EXPECT_EQ(Object(constant).kind(), Object::Kind::kStr);
  EXPECT_EQ(Object(text).kind(), Object::Kind::kStr);
  EXPECT_EQ(Object(true).kind(), Object::Kind::kBool);
}

TEST(Object, ReprMatchesPythonForATableOfValues) {
  const std::vector<std::pair<Object, std::string>> table = {
      {Object(None), "None"},
      {Object(true), "True"},
      {Object(false), "False"},
      {Object(0), "0"},
      {Object(-7), "-7"},
      {Object(INT64_MAX), "9223372036854775807"},
      {Object(INT64_MIN), "-9223372036854775808"},
      {Object(""), "''"},
      {Object("it's"), "\"it's\""},
      {Object("say \"hi\""), "'say \"hi\"'"},
      {Object("both ' and \""), "'both \\' and \"'"},
      {Object("back\\slash"), "'back\\\\slash'"},
      {Object("t\tn\nr\r"), "'t\\tn\\nr\\r'"},
      {Object("\x01\x1f\x7f"), "'\\x01\\x1f\\x7f'"},
      {Object("Mark大帅哥"), "'Mark大帅哥'"},
      {Object("caf\u00e9"), "'café'"},
      {Object("nb\u00a0sp\u00ad"), "'nb\\xa0sp\\xad'"},
      {Object("\u2028\u200b\ufeff"), "'\\u2028\\u200b\\ufeff'"},
      {Object("emoji \U0001F600"), "'emoji 😀'"},
      {Object("\u0085"), "'\\x85'"},
      {Object::bytes(""), "b''"},
      {Object::bytes("abc"), "b'abc'"},
      {Object::bytes(std::string("\0\xff\x7f'", 4)), "b\"\\x00\\xff\\x7f'\""},
      {Object::bytes("'\""), "b'\\'\"'"},
      {Object::bytes("\t\n\\"), "b'\\t\\n\\\\'"},
      {Object::list(), "[]"},
      {Object::tuple(), "()"},
      {Object::tuple({1}), "(1,)"},
      {Object::tuple({1, "a"}), "(1, 'a')"},
      {Object::dict(), "{}"},
      {Object::list(
           {Object::list({1, 2.5}), Object::tuple({None}), Object::dict({{"k", Object::list()}})}),
       "[[1, 2.5], (None,), {'k': []}]"},
      {Object::dict({{Object::tuple({1, 2}), Object::bytes("b")}, {false, 1e100}}),
       "{(1, 2): b'b', False: 1e+100}"},
      {Object::dict({{1, "a"}, {1.0, "b"}, {true, "c"}}), "{1: 'c'}"},
      {Object(std::numeric_limits<double>::infinity()), "inf"},
      {Object(-std::numeric_limits<double>::infinity()), "-inf"},
      {Object(std::numeric_limits<double>::quiet_NaN()), "nan"},
  };
  for (const auto& [value, expected] : table) EXPECT_EQ(value.repr(), expected);
}

TEST(Object, FloatReprIsPythonsShortestRoundTrip) {
  const std::pair<std::uint64_t, const char*> table[] = {
      {0x0000000000000000ull, "0.0"},
      {0x8000000000000000ull, "-0.0"},
      {0x3ff0000000000000ull, "1.0"},
      {0xbff8000000000000ull, "-1.5"},
      {0x3fb999999999999aull, "0.1"},
      {0x3fd3333333333334ull, "0.30000000000000004"},
      {0x3fd5555555555555ull, "0.3333333333333333"},
      {0x3fe5555555555555ull, "0.6666666666666666"},
      {0x400921fb5a7ed197ull, "3.1415927"},
      {0x4341c37937e08000ull, "1e+16"},
      {0x430c6bf526340000ull, "1000000000000000.0"},
      {0x4341c37937e07fffull, "9999999999999998.0"},
      {0x3f1a36e2eb1c432dull, "0.0001"},
      {0x3ee4f8b588e368f1ull, "1e-05"},
      {0x3eef75104d551d69ull, "1.5e-05"},
      {0x405edd2f1a9fbe77ull, "123.456"},
      {0x4480f0cf064dd592ull, "1e+22"},
      {0x44b52d02c7e14af6ull, "1e+23"},
      {0x0000000000000001ull, "5e-324"},
      {0x7fefffffffffffffull, "1.7976931348623157e+308"},
      {0x3df12e0be826d695ull, "2.5e-10"},
      {0x4059000000000000ull, "100.0"},
      {0x41678c29dccccccdull, "12345678.9"},
      {0x3f201f31f46ed246ull, "0.000123"},
      {0x4340000000000000ull, "9007199254740992.0"},
      {0x43e0000000000000ull, "9.223372036854776e+18"},
      {0xbe7ad7f29abcaf48ull, "-1e-07"},
      {0xf2a74de452e6b438ull, "-1.989032661366619e+244"},
      {0x6513270e269e0d37ull, "7.761117632285041e+178"},
      {0x0c5c7fd0a6a3a450ull, "3.980498358697587e-249"},
      {0xd23f0824128b2f33ull, "-1.5432835417340557e+88"},
      {0x1818e811892f902bull, "1.3647584518757569e-192"},
      {0x9531985d5d9dc9f8ull, "-1.3701135617873088e-206"},
      {0xe8e25d940ed90475ull, "-1.7160537630466207e+197"},
      {0x36f675cc81e74ef5ull, "6.294675241195386e-44"},
      {0x1600a35a099950d8ull, "1.0613447212142254e-202"},
      {0x6b0d549b6f03675aull, "4.708325160387546e+207"},
      {0x3d9c172411e20b8full, "6.387016158513563e-12"},
      {0x8d116ece1738f7d9ull, "-9.973130378568733e-246"},
      {0x0f21ddb66cad4a26ull, "8.779753225680271e-236"},
      {0x90c192cfd3ac94afull, "-5.795503248498993e-228"},
      {0xf28c105d1fb17c23ull, "-5.988180159386011e+243"},
      {0xa170b33839263059ull, "-1.306052388527796e-147"},
      {0x953f48f1a09f76b5ull, "-2.436117699484841e-206"},
      {0x0fd630f1f29d0da9ull, "2.233386999150174e-232"},
      {0x95e60af593bd04cfull, "-3.51527970626667e-203"},
      {0x0cb1e29c658cda14ull, "1.5987381841032883e-247"},
      {0x3898d190f9ebdaccull, "4.6678633181812096e-36"},
      {0x8e81973e0becd7b0ull, "-8.441872792105456e-239"},
      {0x2217beaddbc496cbull, "1.9015657400796622e-144"},
      {0x6b4cb2424a23d596ull, "7.370437700706684e+208"},
      {0x8a6a63ec24ede6a4ull, "-1.7163996725272777e-258"},
      {0xc12753ff0c352f28ull, "-764415.5238432633"},
      {0xc11760f1683d3ebaull, "-383036.35179613123"},
      {0x41234b796fbd2958ull, "632252.7182400627"},
      {0xc1237ca67af53826ull, "-638547.240152125"},
      {0x4103ec029e5c88c0ull, "163200.32732493244"},
      {0x4110f50bc05c5f08ull, "277826.9378523682"},
      {0xc10f272750fed2dcull, "-255204.91454853758"},
      {0x40f7500ee717bb10ull, "95488.93141911575"},
      {0xc12aaf6c19a097daull, "-874422.0500533537"},
      {0xc12ae13b51f45f35ull, "-880797.6600675347"},
      {0xc121f2652612b0c2ull, "-588082.5743613469"},
      {0x4116057fc913883cull, "360799.9463635718"},
      {0xc101ad7b1bfa6674ull, "-144815.38866119424"},
      {0xc116afe6a3117e24ull, "-371705.659246417"},
      {0x4104e39dd0ed62c0ull, "171123.72701527737"},
  };
  for (const auto& [bits, expected] : table) {
    EXPECT_EQ(Object(from_bits(bits)).repr(), expected) << std::hex << bits;
  }
}

TEST(Object, StrOfAStrIsUnquoted) {
  EXPECT_EQ(Object("Hello, World!").str(), "Hello, World!");
  EXPECT_EQ(Object(9).str(), "9");
}

TEST(Object, NumbersCompareEqualAcrossBoolIntAndFloat) {
  EXPECT_EQ(Object(1), Object(1.0));
  EXPECT_EQ(Object(1), Object(true));
  EXPECT_EQ(Object(0.0), Object(false));
  EXPECT_NE(Object(1), Object(1.5));
  const Object nan(std::numeric_limits<double>::quiet_NaN());
  EXPECT_NE(nan, nan);
  // Exact, not through a conversion to double: 2**53 + 1 != float(2**53).
  EXPECT_NE(Object(std::int64_t{9007199254740993}), Object(9007199254740992.0));
  EXPECT_LT(Object(9007199254740992.0), Object(std::int64_t{9007199254740993}));
}

TEST(Object, ValuesOfDifferentTypesAreUnequal) {
  EXPECT_NE(Object("1"), Object(1));
  EXPECT_NE(Object("a"), Object::bytes("a"));
  EXPECT_NE(Object::list({1}), Object::tuple({1}));
  EXPECT_NE(Object(None), Object(0));
  EXPECT_EQ(Object(None), Object::none());
}

TEST(Object, DictsCompareEqualRegardlessOfOrder) {
  EXPECT_EQ(Object::dict({{1, "a"}, {"b", 2}}), Object::dict({{"b", 2}, {1.0, "a"}}));
  EXPECT_NE(Object::dict({{1, "a"}}), Object::dict({{1, "b"}}));
  EXPECT_NE(Object::dict({{1, "a"}}), Object::dict({{1, "a"}, {2, "a"}}));
}

TEST(Object, OrderingFollowsPython) {
  EXPECT_LT(Object(1), Object(1.5));
  EXPECT_LT(Object(false), Object(1));
  EXPECT_LT(Object("abc"), Object("abd"));
  EXPECT_LT(Object("Z"), Object("a"));
  EXPECT_LT(Object("ab"), Object("大"));
  EXPECT_LT(Object::bytes("a"), Object::bytes("b"));
  EXPECT_LT(Object::list({1, 2}), Object::list({1, 3}));
  EXPECT_LT(Object::list({1, 2}), Object::list({1, 2, 0}));
  EXPECT_LE(Object::tuple({1, 2}), Object::tuple({1, 2}));
  EXPECT_GE(Object::tuple({2}), Object::tuple({1, 9}));
  EXPECT_GT(Object(2), Object(1.5));
  const Object nan(std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(nan < Object(1));
  EXPECT_FALSE(nan >= Object(1));
}

TEST(Object, OrderingUnorderableTypesThrowsTypeErrorLikePython) {
  try {
    (void)(Object("a") < Object(1));
    FAIL() << "no exception";
  } catch (const mproc::TypeError& e) {
    EXPECT_STREQ(e.what(), "'<' not supported between instances of 'str' and 'int'");
  }
  EXPECT_THROW((void)(Object(None) < Object(None)), mproc::TypeError);
  EXPECT_THROW((void)(Object::dict() <= Object::dict()), mproc::TypeError);
  EXPECT_THROW((void)(Object::list({1}) < Object::list({"a"})), mproc::TypeError);
  EXPECT_THROW((void)(Object::list() < Object::tuple()), mproc::TypeError);
}

TEST(Object, HashMatchesPythonForNumbersAndTuples) {
  EXPECT_EQ(Object(1).hash(), 1);
  EXPECT_EQ(Object(1.0).hash(), 1);
  EXPECT_EQ(Object(true).hash(), 1);
  EXPECT_EQ(Object(-1).hash(), -2);
  EXPECT_EQ(Object(0.5).hash(), 1152921504606846976);
  EXPECT_EQ(Object(1e300).hash(), 1224995262755759164);
  EXPECT_EQ(Object(-0.0).hash(), 0);
  EXPECT_EQ(Object(std::numeric_limits<double>::infinity()).hash(), 314159);
  EXPECT_EQ(Object(std::int64_t{(std::int64_t{1} << 61) - 1}).hash(), 0);
  EXPECT_EQ(Object(INT64_MIN).hash(), -4);
  EXPECT_EQ(Object::tuple({1, 2}).hash(), -3550055125485641917);
  EXPECT_EQ(Object::tuple().hash(), 5740354900026072187);
}

TEST(Object, EqualValuesHashEqual) {
  const std::hash<Object> h;
  EXPECT_EQ(h(Object(3)), h(Object(3.0)));
  EXPECT_EQ(h(Object("s")), h(Object(std::string("s"))));
  EXPECT_EQ(h(Object::tuple({1, "a"})), h(Object::tuple({1.0, "a"})));
  std::unordered_set<Object> set{Object(1), Object(1.0), Object(true), Object("1")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(Object, HashingAListOrDictThrowsTypeError) {
  try {
    (void)Object::list().hash();
    FAIL() << "no exception";
  } catch (const mproc::TypeError& e) {
    EXPECT_STREQ(e.what(), "unhashable type: 'list'");
  }
  EXPECT_THROW((void)std::hash<Object>{}(Object::dict()), mproc::TypeError);
  EXPECT_THROW((void)Object::tuple({Object::list()}).hash(), mproc::TypeError);
  EXPECT_THROW((void)Object::dict({{Object::list(), 1}}), mproc::TypeError);
}

TEST(Object, TypedAccessReturnsTheValue) {
  EXPECT_EQ(Object(42).as_int(), 42);
  EXPECT_EQ(Object(true).as_int(), 1);
  EXPECT_TRUE(Object(true).as_bool());
  EXPECT_EQ(Object(2.5).as_float(), 2.5);
  EXPECT_EQ(Object(2).as_float(), 2.0);
  EXPECT_EQ(Object("s").as_str(), "s");
  EXPECT_EQ(Object::bytes("b").as_bytes(), "b");
  EXPECT_EQ(Object::list({1}).as_list().size(), 1u);
  EXPECT_EQ(Object::tuple({1, 2}).as_tuple().size(), 2u);
  EXPECT_EQ(Object::dict({{1, 2}}).as_dict().size(), 1u);
  EXPECT_EQ(Object(std::uint8_t{7}).as_int(), 7);
  EXPECT_EQ(Object(7.5f).as_float(), 7.5);
}

TEST(Object, WrongTypedAccessThrowsTypeErrorNamingBothTypes) {
  try {
    (void)Object("s").as_int();
    FAIL() << "no exception";
  } catch (const mproc::TypeError& e) {
    EXPECT_STREQ(e.what(), "expected int, got str");
  }
  EXPECT_THROW((void)Object(1).as_str(), mproc::TypeError);
  EXPECT_THROW((void)Object(1.5).as_int(), mproc::TypeError);
  EXPECT_THROW((void)Object::tuple().as_list(), mproc::TypeError);
  EXPECT_THROW((void)Object(None).as_dict(), mproc::TypeError);
  EXPECT_THROW((void)Object("s").as_bytes(), mproc::TypeError);
}

TEST(Object, UnsignedTooLargeForInt64ThrowsValueError) {
  EXPECT_THROW((void)Object(std::numeric_limits<std::uint64_t>::max()), mproc::ValueError);
}

TEST(Object, ListIndexingSupportsNegativeIndicesAndChecksBounds) {
  Object l = Object::list({10, 20, 30});
  EXPECT_EQ(l[0], Object(10));
  EXPECT_EQ(l[-1], Object(30));
  EXPECT_EQ(l[std::size_t{1}], Object(20));
  EXPECT_EQ(l[Object(1)], Object(20));
  l[1] = "x";
  EXPECT_EQ(l.repr(), "[10, 'x', 30]");
  EXPECT_THROW((void)l[3], mproc::IndexError);
  EXPECT_THROW((void)l[-4], mproc::IndexError);
  EXPECT_THROW((void)Object(1)[0], mproc::TypeError);
}

TEST(Object, DictIndexingInsertsOnWriteAndThrowsKeyErrorOnConstRead) {
  Object d = Object::dict();
  d["k"] = 1;
  d[Object(2)] = Object::list({None});
  EXPECT_EQ(d.repr(), "{'k': 1, 2: [None]}");
  const Object& cd = d;
  EXPECT_EQ(cd[Object(2.0)].repr(), "[None]");
  EXPECT_THROW((void)cd["missing"], mproc::KeyError);
  EXPECT_THROW((void)Object::list()["k"], mproc::TypeError);
}

TEST(Object, DictKeepsInsertionOrderAcrossUpdatesAndDeletes) {
  Dict d;
  d.set("b", 1);
  d.set("a", 2);
  d.set(3, 3);
  d.set("b", 4);  // an update keeps the position
  EXPECT_EQ(Object(d).repr(), "{'b': 4, 'a': 2, 3: 3}");
  EXPECT_TRUE(d.erase("a"));
  EXPECT_FALSE(d.erase("a"));
  d.set("a", 5);  // re-inserted at the end
  EXPECT_EQ(Object(d).repr(), "{'b': 4, 3: 3, 'a': 5}");
  EXPECT_TRUE(d.contains(Object(3.0)));
  EXPECT_EQ(d.at(Object(3)), Object(3));
  ASSERT_NE(d.get("b"), nullptr);
  EXPECT_EQ(*d.get("b"), Object(4));
  EXPECT_EQ(d.get("zz"), nullptr);
  EXPECT_THROW((void)d.at("zz"), mproc::KeyError);
}

TEST(Object, TruthSizeContainsAndAppendFollowPython) {
  EXPECT_FALSE(Object(None).truthy());
  EXPECT_FALSE(Object(0.0).truthy());
  EXPECT_FALSE(Object("").truthy());
  EXPECT_FALSE(Object::list().truthy());
  EXPECT_TRUE(Object::tuple({0}).truthy());
  EXPECT_TRUE(Object(-1).truthy());
  EXPECT_EQ(Object("abc").size(), 3u);
  EXPECT_EQ(Object::dict({{1, 1}, {2, 2}}).size(), 2u);
  EXPECT_THROW((void)Object(1).size(), mproc::TypeError);
  EXPECT_TRUE(Object::list({1, "a"}).contains(Object(1.0)));
  EXPECT_FALSE(Object::list({1, "a"}).contains(Object("b")));
  EXPECT_TRUE(Object::dict({{"k", 1}}).contains(Object("k")));
  EXPECT_TRUE(Object("hello").contains(Object("ell")));
  Object l = Object::list();
  l.append(1);
  l.append("two");
  EXPECT_EQ(l.repr(), "[1, 'two']");
  EXPECT_THROW(Object::tuple().append(1), mproc::TypeError);
}

TEST(Object, CopiesAreIndependentValues) {
  Object a = Object::list({1, Object::dict({{"k", 1}})});
  Object b = a;
  b[1]["k"] = 2;
  EXPECT_EQ(a.repr(), "[1, {'k': 1}]");
  EXPECT_EQ(b.repr(), "[1, {'k': 2}]");
}

TEST(Object, MovedFromDictReadsAsEmpty) {
  Object a = Object::dict({{1, 2}});
  Object b = std::move(a);
  EXPECT_EQ(b.repr(), "{1: 2}");
  EXPECT_TRUE(a.is_dict());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.size(), 0u);   // NOLINT(bugprone-use-after-move)
}

TEST(Object, FromConvertsCppValuesToTheirPythonCounterparts) {
  EXPECT_EQ(Object::from(std::vector<int>{9, 8}).repr(), "[9, 8]");
  EXPECT_EQ(Object::from(std::map<std::string, double>{{"a", 0.5}}).repr(), "{'a': 0.5}");
  EXPECT_EQ(Object::from(std::tuple<int, std::string, bool>{4, "x", true}).repr(),
            "(4, 'x', True)");
  EXPECT_EQ(Object::from(std::pair<int, int>{1, 2}).repr(), "(1, 2)");
  EXPECT_EQ(Object::from(std::optional<int>{}).repr(), "None");
  EXPECT_EQ(Object::from(std::vector<std::optional<std::string>>{"s", std::nullopt}).repr(),
            "['s', None]");
  EXPECT_EQ(Object::from("lit").repr(), "'lit'");
  EXPECT_EQ(Object::from(std::string_view("sv")).repr(), "'sv'");
  EXPECT_EQ(Object::from(mproc::Bytes{"b"}).repr(), "b'b'");
  EXPECT_EQ(Object::from(None).repr(), "None");
  EXPECT_EQ(Object::from(Object::list({1})).repr(), "[1]");
}

TEST(Object, ToConvertsBackToCppValues) {
  EXPECT_EQ(Object::from(std::vector<int>{9, 8}).to<std::vector<int>>(), (std::vector<int>{9, 8}));
  using M = std::map<std::string, std::vector<double>>;
  const M m{{"a", {1.5}}, {"b", {}}};
  EXPECT_EQ(Object::from(m).to<M>(), m);
  using Tup = std::tuple<int, std::string, bool>;
  EXPECT_EQ(Object::from(Tup{4, "x", true}).to<Tup>(), (Tup{4, "x", true}));
  EXPECT_EQ(Object(None).to<std::optional<int>>(), std::nullopt);
  EXPECT_EQ(Object(3).to<std::optional<int>>(), 3);
  EXPECT_EQ(Object(3).to<double>(), 3.0);
  EXPECT_EQ(Object::list({1, 2}).to<std::set<int>>(), (std::set<int>{1, 2}));
}

TEST(Object, ToTheWrongTypeThrows) {
  EXPECT_THROW((void)Object("s").to<int>(), mproc::TypeError);
  EXPECT_THROW((void)Object(300).to<std::uint8_t>(), mproc::ValueError);
  EXPECT_THROW((void)Object(-1).to<unsigned>(), mproc::ValueError);
  EXPECT_THROW((void)(Object::tuple({1}).to<std::pair<int, int>>()), mproc::TypeError);
  EXPECT_THROW((void)Object::list({"a"}).to<std::vector<int>>(), mproc::TypeError);
}

Object sample() {
  return Object::list(
      {42, None, "hello", true, -2.5, Object::bytes(std::string("\0b", 2)),
       Object::tuple({1, Object::tuple()}),
       Object::dict({{1, "1"}, {"2", 2}, {0.25, None}, {Object::tuple({1}), Object::list()}}),
       std::numeric_limits<double>::infinity()});
}

TEST(Object, RoundTripsThroughEncodeAndDecode) {
  const Object o = sample();
  const Object back = mproc::decode<Object>(mproc::encode(o));
  EXPECT_EQ(back, o);
  EXPECT_EQ(back.repr(), o.repr());
  EXPECT_EQ(mproc::decode<Object>(mproc::encode(Object())), Object());
  EXPECT_EQ(mproc::decode<Object>(mproc::encode(Object(7))).kind(), Object::Kind::kInt);
  EXPECT_TRUE(mproc::decode<Object>(mproc::encode(Object::tuple({1}))).is_tuple());
}

TEST(Object, RoundTripsInsideStdContainers) {
  const std::vector<Object> v{Object(1), Object::list({"x"})};
  EXPECT_EQ(mproc::decode<std::vector<Object>>(mproc::encode(v)), v);
  const std::map<std::string, Object> m{{"a", Object::dict({{1, 2}})}};
  EXPECT_EQ((mproc::decode<std::map<std::string, Object>>(mproc::encode(m))), m);
}

TEST(Object, DeepButLegalNestingRoundTrips) {
  Object o = Object::list();
  for (int i = 0; i < 500; ++i) o = Object::list({std::move(o)});
  EXPECT_EQ(mproc::decode<Object>(mproc::encode(o)), o);
}

TEST(Object, AbsurdNestingInAMessageThrowsInsteadOfOverflowingTheStack) {
  std::string m = mproc::encode(Object::list()).substr(0, mproc::detail::kHeaderSize);
  for (int i = 0; i < 200000; ++i) {
    m += '\x06';  // list
    m += std::string("\x01\0\0\0\0\0\0\0", 8);
  }
  m += '\0';
  EXPECT_THROW((void)mproc::decode<Object>(m), mproc::SerializationError);
}

::testing::AssertionResult only_serialization_error(std::string_view bytes) {
  try {
    (void)mproc::decode<Object>(bytes);
  } catch (const mproc::SerializationError&) {
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "decode threw " << e.what();
  }
  return ::testing::AssertionSuccess();
}

TEST(Object, EveryTruncationOfAMessageThrowsSerializationError) {
  const std::string m = mproc::encode(sample());
  for (std::size_t n = 0; n < m.size(); ++n) {
    EXPECT_THROW((void)mproc::decode<Object>(std::string_view(m).substr(0, n)),
                 mproc::SerializationError)
        << "prefix " << n;
  }
}

TEST(Object, CorruptMessagesYieldOnlySerializationError) {
  const std::string m = mproc::encode(sample());
  const std::string header = m.substr(0, mproc::detail::kHeaderSize);
  std::mt19937_64 rng;
  for (int seed = 0; seed < 5000; ++seed) {
    rng.seed(seed);
    std::string flipped = m;
    for (int f = 0; f < 1 + seed % 4; ++f) {
      flipped[mproc::detail::kHeaderSize + rng() % (m.size() - mproc::detail::kHeaderSize)] =
          static_cast<char>(rng());
    }
    EXPECT_TRUE(only_serialization_error(flipped));
    std::string junk = header;
    junk.resize(junk.size() + rng() % 64);
    for (std::size_t i = mproc::detail::kHeaderSize; i < junk.size(); ++i) {
      junk[i] = static_cast<char>(rng() % 3 == 0 ? rng() : rng() % 10);
    }
    EXPECT_TRUE(only_serialization_error(junk));
  }
}

TEST(Object, DictWithUnhashableKeyInAMessageThrowsSerializationError) {
  std::string m = mproc::encode(Object::dict()).substr(0, mproc::detail::kHeaderSize);
  m += '\x08';                                // dict
  m += std::string("\x01\0\0\0\0\0\0\0", 8);  // one item
  m += '\x06';                                // key: a list
  m += std::string(8, '\0');                  // ... empty
  m += '\0';                                  // value: None
  EXPECT_THROW((void)mproc::decode<Object>(m), mproc::SerializationError);
}

TEST(Object, SentFromAChildArrivesIntact) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const auto child = mproc::test::fork_and_wait([&] {
    ::close(fds[0]);
    const std::string m = mproc::encode(Object::list({42, None, "hello"}));
    const bool ok = ::write(fds[1], m.data(), m.size()) == static_cast<ssize_t>(m.size());
    ::close(fds[1]);
    return ok ? 0 : 1;
  });
  ::close(fds[1]);
  std::string got;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ASSERT_EQ(child.code, 0);
  EXPECT_EQ(mproc::decode<Object>(got).repr(), "[42, None, 'hello']");
}

}  // namespace
