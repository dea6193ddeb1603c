// The bridge's frame parser: bounded depth with no recursion, a cap on
// values, correctly rounded numbers, and the same answers as before for
// ordinary JSON.

#include "codec/json_parse.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>

#include "codec/crdt_codec.h"
#include "codec/json_codec.h"

namespace bridge::codec {
namespace {

namespace bj = boost::json;

bj::value parse_ok(const std::string& text, ParseLimits limits = {}) {
  auto r = parse_json(text, limits);
  if (auto* e = std::get_if<ParseError>(&r)) {
    ADD_FAILURE() << text.substr(0, 80) << ": " << e->message;
    return nullptr;
  }
  return std::get<bj::value>(std::move(r));
}

ParseError parse_error(const std::string& text, ParseLimits limits = {}) {
  auto r = parse_json(text, limits);
  if (auto* e = std::get_if<ParseError>(&r)) return *e;
  return {"none", ""};
}

// Runs `fn` on a thread with a 512 KiB stack: anything recursing with the
// input's depth would overflow it.
void on_small_stack(std::function<void()> fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 512 << 10);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, body, &fn), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

TEST(JsonParse, DeepNestingIsRefusedWhileParsingOnASmallStack) {
  const std::string arrays = std::string(100'000, '[') + std::string(100'000, ']');
  const std::string frame = R"({"type":"patch","payload":)" + arrays + "}";
  const std::string objects = [] {
    std::string s;
    for (int i = 0; i < 50'000; ++i) s += R"({"a":)";
    s += "1";
    return s + std::string(50'000, '}');
  }();
  on_small_stack([&] {
    EXPECT_EQ(parse_error(arrays).code, "invalid_json");
    EXPECT_NE(parse_error(arrays).message.find("deeper than 64"), std::string::npos);
    EXPECT_EQ(parse_error(objects).code, "invalid_json");
    auto r = decode_client_frame(frame);
    ASSERT_TRUE(std::holds_alternative<Error>(r));
    EXPECT_EQ(std::get<Error>(r).code, "invalid_json");
    auto c = decode_crdt_frame(R"({"type":"update","siteId":"s","version":1,"changes":)" + arrays + "}", "c");
    ASSERT_TRUE(std::holds_alternative<Error>(c));
    EXPECT_EQ(std::get<Error>(c).code, "invalid_json");
  });
  // At the limit it parses.
  const std::string at_limit = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(parse_ok(at_limit).is_array());
  EXPECT_EQ(parse_error("[" + at_limit + "]").code, "invalid_json");
}

TEST(JsonParse, MoreValuesThanTheLimitAreTooLarge) {
  std::string many = "{";
  for (int i = 0; i < 20'001; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  many += "}";
  const ParseError e = parse_error(many);
  EXPECT_EQ(e.code, "too_large");
  EXPECT_NE(e.message.find("20000"), std::string::npos);
  // Under a larger limit, every key is there (a hash table: no quadratic lookups).
  const bj::value v = parse_ok(many, {.max_depth = 64, .max_values = 30'000});
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.get_object().size(), 20'001u);
  EXPECT_EQ(v.get_object().at("k20000").as_int64(), 20000);
  auto r = decode_client_frame(R"({"type":"heartbeat","payload":)" + many + "}");
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  EXPECT_EQ(std::get<Error>(r).code, "too_large");
}

TEST(JsonParse, NumbersAreExactIntegersOrCorrectlyRoundedDoubles) {
  const bj::value v = parse_ok(
      "[0, -7, 9007199254740993, 18446744073709551615, 100000000000000000000, 0.1, "
      "2.2250738585072011e-308, 1.00000000000000011102230246251565404236316680908203125, 1e308]");
  const auto& a = v.get_array();
  EXPECT_EQ(a[0].as_int64(), 0);
  EXPECT_EQ(a[1].as_int64(), -7);
  EXPECT_EQ(a[2].as_int64(), 9007199254740993);
  EXPECT_EQ(a[3].as_uint64(), 18446744073709551615ULL);
  EXPECT_EQ(a[4].as_double(), 1e20);  // as JavaScript writes 1e20
  EXPECT_EQ(a[5].as_double(), 0.1);
  EXPECT_EQ(a[6].as_double(), 2.2250738585072011e-308);
  EXPECT_EQ(a[7].as_double(), 1.0);  // exactly halfway: to even
  EXPECT_EQ(a[8].as_double(), 1e308);
  EXPECT_EQ(parse_error("[1e400]").code, "invalid_json");
}

TEST(JsonParse, RefusesWhatIsNotJson) {
  for (const std::string bad : {"", "{", "[1,]", "{\"a\":1}x", "\"\\ud800\"", "\"\xff\"", "nul", "[1] [2]",
                                "// comment\n1"}) {
    EXPECT_EQ(parse_error(bad).code, "invalid_json") << bad;
  }
}

TEST(JsonParse, DuplicateKeysKeepTheLastValue) {
  const bj::value v = parse_ok(R"({"a":1,"b":2,"a":3})");
  EXPECT_EQ(v.get_object().size(), 2u);
  EXPECT_EQ(v.get_object().at("a").as_int64(), 3);
  auto r = decode_client_frame(R"({"type":"patch","payload":{"id":"first","op":"opaque","id":"second"}})");
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(r));
  EXPECT_EQ(std::get<api::Patch>(std::get<ClientMessage>(r)).id(), "second");
}

}  // namespace
}  // namespace bridge::codec
