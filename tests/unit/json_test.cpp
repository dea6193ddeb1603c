// The codec between graph values and the JSON text PostgreSQL stores.

#include "graph/json.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include <cmath>

namespace syncd::graph {
namespace {

google::protobuf::Struct parse(const std::string& json) {
  auto s = struct_from_json(json);
  if (!s) throw std::runtime_error("unparsable: " + json);
  return *s;
}

TEST(Json, RoundTripsEveryKindOfValue) {
  const std::string json =
      R"({"s":"héllo \"wörld\" \n\t\\ 😀 中文","i":9007199254740991,"neg":-42,"f":0.1,"e":1.5e-300,)"
      R"("big":1e308,"t":true,"n":null,"nested":{"a":[1,[2,[3,{"b":null}]],"x"]},"empty":{},"list":[]})";
  const google::protobuf::Struct a = parse(json);
  const google::protobuf::Struct b = parse(to_json(a));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a, b)) << to_json(b);
  EXPECT_EQ(b.fields().at("i").number_value(), 9007199254740991.0);
  EXPECT_EQ(b.fields().at("f").number_value(), 0.1);
  EXPECT_EQ(b.fields().at("e").number_value(), 1.5e-300);
  EXPECT_EQ(b.fields().at("s").string_value(), "héllo \"wörld\" \n\t\\ 😀 中文");
  EXPECT_EQ(b.fields().at("n").kind_case(), google::protobuf::Value::kNullValue);
  EXPECT_EQ(b.fields().at("nested").struct_value().fields().at("a").list_value().values_size(), 3);
}

TEST(Json, LargestExactIntegerSurvivesButBeyondIsRounded) {
  // Values are JSON numbers held as doubles: 2^53-1 is exact, 2^53+1 is not.
  // This is the documented limit of google.protobuf.Value.
  const auto s = parse(to_json(parse(R"({"a":9007199254740991,"b":9007199254740993})")));
  EXPECT_EQ(s.fields().at("a").number_value(), 9007199254740991.0);
  EXPECT_EQ(s.fields().at("b").number_value(), 9007199254740992.0);
}

TEST(Json, StampsRoundTrip) {
  const std::map<std::string, Stamp> stamps{{"a", {1, "alice"}}, {"b", {123456789012, "bob \"q\""}}};
  EXPECT_EQ(stamps_from_json(stamps_to_json(stamps)), stamps);
  EXPECT_TRUE(stamps_from_json("{}").empty());
  EXPECT_TRUE(stamps_from_json("not json").empty());
}

TEST(Json, MalformedJsonIsRefused) {
  EXPECT_FALSE(struct_from_json("{"));
  EXPECT_FALSE(struct_from_json("[1,2]"));
}

}  // namespace
}  // namespace syncd::graph
