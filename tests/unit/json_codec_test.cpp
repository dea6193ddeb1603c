// The bridge's JSON codec, both ways, for every message type and its
// error paths.

#include "codec/json_codec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bridge::codec {
namespace {

using nlohmann::json;

api::Patch decode_patch(const std::string& payload) {
  auto r = decode_client_frame(R"({"type":"patch","payload":)" + payload + "}");
  auto* msg = std::get_if<ClientMessage>(&r);
  if (msg == nullptr) throw std::runtime_error("decode failed: " + std::get<Error>(r).message);
  return std::get<api::Patch>(*msg);
}

Error decode_error(const std::string& frame) {
  auto r = decode_client_frame(frame);
  if (auto* e = std::get_if<Error>(&r)) return *e;
  return {"none", ""};
}

TEST(JsonCodec, PatchFromTheOriginalClientRoundTrips) {
  const std::string payload =
      R"({"id":"p_1","timestamp":1234567890,"clientId":"client_123","op":"create_node","nodeId":"n_1",)"
      R"("data":{"label":"Person","properties":{"name":"John","age":30,"tags":["a",null,true],"score":0.1}}})";
  const api::Patch p = decode_patch(payload);
  EXPECT_EQ(p.id(), "p_1");
  EXPECT_EQ(p.timestamp(), 1234567890);
  EXPECT_EQ(p.client_id(), "client_123");
  EXPECT_EQ(p.op(), "create_node");
  EXPECT_EQ(p.node_id(), "n_1");
  EXPECT_FALSE(p.has_base_version());
  // Back out: the same JSON value.
  EXPECT_EQ(json::parse(patch_to_json(p)), json::parse(payload));
}

TEST(JsonCodec, ValuesRoundTripExactly) {
  const std::string payload =
      R"({"id":"p","op":"set_property","targetType":"node","targetId":"n","propertyKey":"v",)"
      R"("propertyValue":{"max":9007199254740991,"min":-9007199254740991,"f":0.1,"tiny":5e-324,"big":1.7976931348623157e308,)"
      R"("neg":-2.5,"u":"h\u00e9llo \"q\" \\ \n \u0001 \ud83d\ude00 中文","n":null,"nested":[[[]],{"a":{"b":[1,{}]}}],"t":false}})";
  const api::Patch p = decode_patch(payload);
  const json out = json::parse(patch_to_json(p));
  EXPECT_EQ(out, json::parse(payload));
  EXPECT_EQ(out["propertyValue"]["max"].get<std::int64_t>(), 9007199254740991);
  EXPECT_TRUE(out["propertyValue"]["max"].is_number_integer());
  EXPECT_EQ(out["propertyValue"]["f"].dump(), "0.1");
  EXPECT_EQ(out["propertyValue"]["u"].get<std::string>(), "h\xC3\xA9llo \"q\" \\ \n \x01 \xF0\x9F\x98\x80 中文");
}

TEST(JsonCodec, CamelCaseOpsAndUnknownFieldsAreKept) {
  const std::string payload = R"({"id":"p","op":"createNode","nodeId":"n","data":{"label":"L"},"vectorClock":{"a":3},"trace":"x"})";
  const api::Patch p = decode_patch(payload);
  EXPECT_EQ(p.op(), "createNode");
  EXPECT_EQ(p.extra().fields().at("trace").string_value(), "x");
  EXPECT_EQ(json::parse(patch_to_json(p)), json::parse(payload));
}

TEST(JsonCodec, BaseVersionAndServerVersion) {
  api::Patch p = decode_patch(R"({"id":"p","op":"opaque","baseVersion":7,"serverVersion":99})");
  EXPECT_TRUE(p.has_base_version());
  EXPECT_EQ(p.base_version(), 7);
  EXPECT_EQ(p.server_version(), 0);  // the client does not choose it
  p.set_server_version(12);
  const json b = json::parse(encode_broadcast(p));
  EXPECT_EQ(b["type"], "patch_broadcast");
  EXPECT_EQ(b["payload"]["serverVersion"], 12);
  EXPECT_EQ(b["payload"]["baseVersion"], 7);
}

TEST(JsonCodec, SyncRequestAndHeartbeat) {
  auto r = decode_client_frame(R"({"type":"sync_request","payload":{"fromVersion":10,"limit":50}})");
  const auto& req = std::get<api::SyncRequest>(std::get<ClientMessage>(r));
  EXPECT_EQ(req.from_version(), 10);
  EXPECT_EQ(req.limit(), 50);
  auto h = decode_client_frame(R"({"type":"heartbeat","payload":null})");
  EXPECT_TRUE(std::holds_alternative<Heartbeat>(std::get<ClientMessage>(h)));
  auto bare = decode_client_frame(R"({"type":"sync_request"})");
  EXPECT_EQ(std::get<api::SyncRequest>(std::get<ClientMessage>(bare)).from_version(), 0);
}

TEST(JsonCodec, ServerFrames) {
  api::Ack ack;
  ack.set_patch_id("p_2");
  ack.set_status(api::Ack::REJECTED);
  ack.set_server_version(42);
  ack.set_code("not_found");
  ack.set_reason("node n_9 does not exist");
  EXPECT_EQ(json::parse(encode_ack(ack)),
            json::parse(R"({"type":"patch_response","payload":{"patchId":"p_2","status":"rejected","serverVersion":42,)"
                        R"("code":"not_found","reason":"node n_9 does not exist"}})"));
  ack.set_status(api::Ack::ACCEPTED);
  ack.clear_code();
  ack.clear_reason();
  EXPECT_EQ(encode_ack(ack), R"({"type":"patch_response","payload":{"patchId":"p_2","status":"accepted","serverVersion":42}})");
  ack.set_status(api::Ack::IGNORED);
  EXPECT_EQ(json::parse(encode_ack(ack))["payload"]["status"], "ignored");

  api::SyncState st;
  st.set_version(43);
  st.set_has_more(true);
  api::Patch* p = st.add_patches();
  p->set_id("a");
  p->set_op("opaque");
  p->set_server_version(43);
  EXPECT_EQ(json::parse(encode_sync_state(st)),
            json::parse(R"({"type":"sync_state","payload":{"version":43,"patches":[{"id":"a","op":"opaque","serverVersion":43}],"hasMore":true}})"));
  EXPECT_EQ(json::parse(encode_error("invalid_json", "bad \"x\"")),
            json::parse(R"({"type":"error","payload":{"code":"invalid_json","message":"bad \"x\""}})"));
}

TEST(JsonCodec, BadFramesGetTheRightCodes) {
  EXPECT_EQ(decode_error("{not json").code, "invalid_json");
  EXPECT_EQ(decode_error("").code, "invalid_json");
  EXPECT_EQ(decode_error("[1E400]").code, "invalid_json");
  EXPECT_EQ(decode_error("\"\xff\xfe\"").code, "invalid_json");
  EXPECT_EQ(decode_error("[1,2]").code, "invalid_message");
  EXPECT_EQ(decode_error(R"({"payload":{}})").code, "invalid_message");
  EXPECT_EQ(decode_error(R"({"type":7})").code, "invalid_message");
  EXPECT_EQ(decode_error(R"({"type":"subscribe"})").code, "unknown_type");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":"x"})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"op":"opaque"}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"","op":"opaque"}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":5,"op":"opaque"}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p"}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p","op":"x","nodeId":["n"]}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p","op":"x","timestamp":"now"}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p","op":"x","timestamp":1.5}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p","op":"x","baseVersion":18446744073709551615}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p","op":"x","data":[1]}})").code, "invalid_patch");
  EXPECT_EQ(decode_error(R"({"type":"sync_request","payload":{"fromVersion":-1}})").code, "invalid_message");
  EXPECT_EQ(decode_error(R"({"type":"sync_request","payload":{"fromVersion":"1"}})").code, "invalid_message");
  std::string deep = "1";
  for (int i = 0; i < 100; ++i) deep = "[" + deep + "]";
  // Nesting beyond --max-frame-depth (64) is refused while parsing.
  EXPECT_EQ(decode_error(R"({"type":"patch","payload":{"id":"p","op":"opaque","data":{"x":)" + deep + "}}}").code,
            "invalid_json");
  std::string very_deep(100000, '[');
  EXPECT_EQ(decode_error(very_deep).code, "invalid_json");  // no stack overflow
}

}  // namespace
}  // namespace bridge::codec

namespace bridge::codec {
namespace {

TEST(JsonCodec, ManyUnknownKeysRoundTripAndAFieldRepeatedInExtraReplacesIt) {
  std::string payload = R"({"id":"many","op":"opaque")";
  for (int i = 0; i < 15'000; ++i) payload += ",\"u" + std::to_string(i) + "\":" + std::to_string(i);
  payload += "}";
  // Larger than syncd's default patch limit: decoded without one here.
  ParseLimits unlimited;
  unlimited.max_patch_bytes = 0;
  auto r = decode_client_frame(R"({"type":"patch","payload":)" + payload + "}", unlimited);
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(r));
  const api::Patch p = std::get<api::Patch>(std::get<ClientMessage>(r));
  EXPECT_EQ(p.extra().fields().size(), 15'000u);
  const json back = json::parse(patch_to_json(p));
  EXPECT_EQ(back, json::parse(payload));

  // Only a gRPC client can put a known field in extra: it wins, in place.
  api::Patch q;
  q.set_id("q");
  q.set_op("opaque");
  (*q.mutable_extra()->mutable_fields())["op"].set_string_value("from-extra");
  (*q.mutable_extra()->mutable_fields())["zz"].set_bool_value(true);
  EXPECT_EQ(patch_to_json(q), R"({"id":"q","op":"from-extra","zz":true})");
}

}  // namespace
}  // namespace bridge::codec

namespace bridge::codec {
namespace {

TEST(JsonCodec, APatchSurelyOverTheSizeLimitIsRefusedBeforeConversion) {
  const std::string big = R"({"type":"patch","payload":{"id":"big","op":"opaque","data":{"s":")" +
                          std::string(100'000, 'x') + R"("}}})";
  auto r = decode_client_frame(big);
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(r));
  const auto* over = std::get_if<OversizePatch>(&std::get<ClientMessage>(r));
  ASSERT_NE(over, nullptr);
  EXPECT_EQ(over->id, "big");
  EXPECT_GE(over->bytes, 100'000u);
  // Without a limit it is an ordinary patch, as large as its string.
  ParseLimits unlimited;
  unlimited.max_patch_bytes = 0;
  auto whole = decode_client_frame(big, unlimited);
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(whole));
  const auto& p = std::get<api::Patch>(std::get<ClientMessage>(whole));
  EXPECT_GT(p.ByteSizeLong(), over->bytes);  // the floor is a floor
  // No id: still a malformed patch, not an oversize one.
  auto no_id = decode_client_frame(R"({"type":"patch","payload":{"op":"opaque","data":{"s":")" +
                                   std::string(100'000, 'x') + R"("}}})");
  ASSERT_TRUE(std::holds_alternative<Error>(no_id));
  EXPECT_EQ(std::get<Error>(no_id).code, "invalid_patch");
}

}  // namespace
}  // namespace bridge::codec
