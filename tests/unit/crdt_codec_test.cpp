// The CRDT relay dialect's codec.

#include "codec/crdt_codec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bridge::codec {
namespace {

using nlohmann::json;

TEST(CrdtCodec, UpdateBecomesAnIdempotentOpaquePatch) {
  auto r = decode_crdt_frame(
      R"({"type":"update","changes":[["todos",[1],"title","buy milk",1,1,"c0ffee",1,0]],"version":7,"siteId":"c0ffee","channel":"u1"})",
      "u1");
  const auto& p = std::get<api::Patch>(std::get<CrdtMessage>(r));
  EXPECT_EQ(p.op(), "opaque");
  EXPECT_EQ(p.id(), "crdt:c0ffee:7");
  EXPECT_EQ(p.client_id(), "c0ffee");
  EXPECT_EQ(p.peer().site_id(), "c0ffee");
  EXPECT_EQ(p.peer().version(), 7);
  google::protobuf::ListValue changes;
  append_changes(p, &changes);
  EXPECT_EQ(json::parse(encode_crdt_update(changes, 12, "srv", "u1")),
            json::parse(R"({"type":"update","changes":[["todos",[1],"title","buy milk",1,1,"c0ffee",1,0]],"version":12,"siteId":"srv","channel":"u1"})"));
}

TEST(CrdtCodec, PullAndServerFrames) {
  auto r = decode_crdt_frame(R"({"type":"pull","version":3,"siteId":"a","channel":"u1"})", "u1");
  EXPECT_EQ(std::get<CrdtPull>(std::get<CrdtMessage>(r)).version, 3);
  EXPECT_EQ(json::parse(encode_connected("srv", 5, "u1")),
            json::parse(R"({"type":"connected","siteId":"srv","version":5,"channel":"u1"})"));
  EXPECT_EQ(json::parse(encode_crdt_ack("srv", 6, "u1")),
            json::parse(R"({"type":"ack","siteId":"srv","version":6,"channel":"u1"})"));
}

TEST(CrdtCodec, BadFrames) {
  auto code = [](const std::string& frame) {
    auto r = decode_crdt_frame(frame, "u1");
    auto* e = std::get_if<Error>(&r);
    return e ? e->code : std::string("ok");
  };
  EXPECT_EQ(code("{"), "invalid_json");
  EXPECT_EQ(code(R"({"version":1})"), "invalid_message");
  EXPECT_EQ(code(R"({"type":"merge"})"), "unknown_type");
  EXPECT_EQ(code(R"({"type":"pull","version":1,"channel":"other"})"), "invalid_message");
  EXPECT_EQ(code(R"({"type":"pull","version":-1})"), "invalid_message");
  EXPECT_EQ(code(R"({"type":"update","changes":[],"version":1})"), "invalid_patch");
  EXPECT_EQ(code(R"({"type":"update","changes":{},"version":1,"siteId":"a"})"), "invalid_patch");
  EXPECT_EQ(code(R"({"type":"update","changes":[],"siteId":"a"})"), "invalid_patch");
  EXPECT_EQ(code(R"({"type":"update","changes":[],"version":1,"siteId":"a"})"), "ok");
}

}  // namespace
}  // namespace bridge::codec

namespace bridge::codec {
namespace {

TEST(CrdtCodec, AnUpdateSurelyOverTheSizeLimitIsTooLarge) {
  const std::string update = R"({"type":"update","siteId":"s","version":1,"changes":[")" +
                             std::string(70'000, 'x') + R"("]})";
  auto r = decode_crdt_frame(update, "c");
  ASSERT_TRUE(std::holds_alternative<Error>(r));
  EXPECT_EQ(std::get<Error>(r).code, "too_large");
}

}  // namespace
}  // namespace bridge::codec
