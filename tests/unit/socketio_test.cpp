// The Socket.IO dialect's pure parts: Engine.IO / Socket.IO packets,
// changes to patches and back, offsets, and the acknowledgements of
// batched changes.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "codec/engineio.h"
#include "codec/json_parse.h"
#include "codec/socketio_codec.h"
#include "dialect/socketio_encoder.h"
#include "socketio/ack_collector.h"

namespace bridge {
namespace {

using nlohmann::json;

codec::SioPacket sio(std::string_view text) {
  auto decoded = codec::decode_sio(text, {});
  EXPECT_TRUE(std::holds_alternative<codec::SioPacket>(decoded)) << text;
  return std::get<codec::SioPacket>(std::move(decoded));
}

std::string sio_error(std::string_view text) {
  auto decoded = codec::decode_sio(text, {});
  auto* e = std::get_if<codec::Error>(&decoded);
  return e == nullptr ? "" : e->code;
}

TEST(EngineIo, PacketsAndPayloads) {
  EXPECT_EQ(codec::decode_eio("4hello")->type, codec::EioType::kMessage);
  EXPECT_EQ(codec::decode_eio("4hello")->data, "hello");
  EXPECT_FALSE(codec::decode_eio("bAQID"));  // binary, base64
  EXPECT_FALSE(codec::decode_eio(""));
  EXPECT_FALSE(codec::decode_eio("9"));
  auto parts = codec::split_eio_payload("2\x1e" "40\x1e" "42[\"a\"]", 10);
  ASSERT_TRUE(parts);
  EXPECT_EQ(*parts, (std::vector<std::string_view>{"2", "40", "42[\"a\"]"}));
  EXPECT_FALSE(codec::split_eio_payload("1\x1e" "2\x1e" "3", 2));
}

TEST(SocketIo, PacketsWithNamespaceAckIdAndData) {
  auto p = sio("2/admin,17[\"sync:join\",{\"channel\":\"c\"}]");
  EXPECT_EQ(p.type, codec::SioType::kEvent);
  EXPECT_EQ(p.nsp, "/admin");
  EXPECT_EQ(p.ack_id, 17);
  EXPECT_EQ(p.data.get_array().front().get_string(), "sync:join");
  auto c = sio("0{\"token\":\"x\"}");
  EXPECT_EQ(c.type, codec::SioType::kConnect);
  EXPECT_EQ(c.nsp, "/");
  EXPECT_FALSE(c.ack_id);
  EXPECT_EQ(sio("0").data.kind(), boost::json::kind::null);
}

TEST(SocketIo, RefusesWhatItDoesNotSpeak) {
  EXPECT_EQ(sio_error("51-[\"sync:change\",{\"_placeholder\":true,\"num\":0}]"), "invalid_message");  // binary
  EXPECT_EQ(sio_error("2{\"not\":\"an array\"}"), "invalid_message");
  EXPECT_EQ(sio_error("2[1,2]"), "invalid_message");
  EXPECT_EQ(sio_error("2"), "invalid_message");
  EXPECT_EQ(sio_error("21234567890123456[\"a\"]"), "invalid_message");  // a 16-digit ack id
  EXPECT_EQ(sio_error("2[\"a\""), "invalid_json");
  EXPECT_EQ(sio_error("7"), "invalid_message");
  EXPECT_EQ(sio_error("0[]"), "invalid_message");  // a CONNECT payload is an object
}

TEST(SocketIo, DeeplyNestedDataIsRefusedNotRecursedInto) {
  std::string deep = "2[\"sync:change\",";
  for (int i = 0; i < 100000; ++i) deep += '[';
  EXPECT_EQ(sio_error(deep), "invalid_json");
}

boost::json::value parse(const std::string& text) {
  return std::get<boost::json::value>(codec::parse_json(text, {}));
}

codec::Change change(const std::string& text, std::string* id) {
  auto parsed = parse(text);
  auto decoded = codec::decode_change(parsed, {}, id);
  EXPECT_TRUE(std::holds_alternative<codec::Change>(decoded)) << text;
  return std::get<codec::Change>(std::move(decoded));
}

TEST(SocketIoChanges, InsertUpdateDeleteBecomeNodePatchesAndComeBack) {
  std::string id;
  auto c = change(R"({"id":"c1","collection":"tasks","documentId":"t1","operation":"insert",
                      "data":{"title":"milk","done":false},"timestamp":1700000000000,"userId":"u1","channel":"ch"})",
                  &id);
  EXPECT_EQ(id, "c1");
  EXPECT_EQ(c.channel, "ch");
  auto p = std::get<api::Patch>(c.patch);
  EXPECT_EQ(p.op(), "create_node");
  EXPECT_EQ(p.node_id(), "t1");
  EXPECT_EQ(p.client_id(), "u1");
  EXPECT_EQ(p.data().fields().at("label").string_value(), "tasks");
  p.set_server_version(42);
  const json out = json::parse(codec::change_json(p, "ch"));
  EXPECT_EQ(out, json::parse(R"({"id":"c1","collection":"tasks","documentId":"t1","operation":"insert",
      "data":{"title":"milk","done":false},"timestamp":42,"userId":"u1","channel":"ch"})"));

  auto u = std::get<api::Patch>(change(R"({"id":"c2","documentId":"t1","operation":"update","data":{"done":true}})", &id).patch);
  EXPECT_EQ(u.op(), "update_node");
  auto d = std::get<api::Patch>(
      change(R"({"id":"c3","collection":"tasks","documentId":"t1","operation":"delete"})", &id).patch);
  EXPECT_EQ(d.op(), "delete_node");
  EXPECT_EQ(json::parse(codec::change_json(d, "ch"))["collection"], "tasks");  // the state no longer knows it
}

TEST(SocketIoChanges, OtherOperationsRideAsOpaqueAndComeBackWhole) {
  std::string id;
  auto p = std::get<api::Patch>(change(R"({"id":"m1","operation":"move","from":"a","to":"b"})", &id).patch);
  EXPECT_EQ(p.op(), "opaque");
  p.set_server_version(7);
  const json out = json::parse(codec::change_json(p, "ch"));
  EXPECT_EQ(out["operation"], "move");
  EXPECT_EQ(out["from"], "a");
  EXPECT_EQ(out["timestamp"], 7);
}

TEST(SocketIoChanges, AnEdgeFromAnotherProtocolGoesOutAsItsPatch) {
  api::Patch p;
  p.set_id("e1");
  p.set_op("create_edge");
  p.set_edge_id("e1");
  p.set_server_version(3);
  const json out = json::parse(codec::change_json(p, "ch"));
  EXPECT_EQ(out["operation"], "create_edge");
  EXPECT_EQ(out["patch"]["edgeId"], "e1");
}

TEST(SocketIoChanges, BadShapesAreRefusedWithTheIdWhenThereIsOne) {
  for (const char* bad : {R"([])", R"({"operation":"insert"})", R"({"id":"","operation":"insert"})",
                          R"({"id":"x","documentId":"d"})", R"({"id":"x","operation":"insert","documentId":"d"})",
                          R"({"id":"x","operation":"update"})",
                          R"({"id":"x","operation":"update","documentId":"d","data":[1]})",
                          R"({"id":"x","operation":"update","documentId":"d","channel":5})"}) {
    std::string id;
    auto decoded = codec::decode_change(parse(bad), {}, &id);
    EXPECT_TRUE(std::holds_alternative<codec::Error>(decoded)) << bad;
  }
  std::string id;
  codec::ParseLimits small;
  small.max_patch_bytes = 64;
  auto big = codec::decode_change(
      parse(R"({"id":"big","operation":"insert","collection":"c","documentId":"d","data":{"t":")" +
                         std::string(200, 'x') + "\"}}"),
      small, &id);
  ASSERT_TRUE(std::holds_alternative<codec::Change>(big));
  EXPECT_TRUE(std::holds_alternative<codec::OversizePatch>(std::get<codec::Change>(big).patch));
}

TEST(SocketIoPresence, JoinsAskForPresenceAndNameTheirClient) {
  auto join = std::get<codec::JoinRequest>(codec::decode_join(parse(R"({"channel":"c","presence":true,"clientId":"ada"})")));
  EXPECT_TRUE(join.presence);
  EXPECT_EQ(join.client_id, "ada");
  auto plain = std::get<codec::JoinRequest>(codec::decode_join(parse(R"({"channel":"c"})")));
  EXPECT_FALSE(plain.presence);
  EXPECT_EQ(plain.client_id, "");
  for (const char* bad : {R"({"channel":"c","presence":"yes"})", R"({"channel":"c","clientId":7})"}) {
    EXPECT_TRUE(std::holds_alternative<codec::Error>(codec::decode_join(parse(bad)))) << bad;
  }
  const std::string long_name(200, 'x');
  EXPECT_TRUE(std::holds_alternative<codec::Error>(
      codec::decode_join(parse(R"({"channel":"c","clientId":")" + long_name + R"("})"))));
}

TEST(SocketIoPresence, EventsAreTheJsonProtocolsFramesForANamedOrTheOnlyChannel) {
  auto update = std::get<codec::PresenceEvent>(
      codec::decode_presence_event("sync:presence_update", parse(R"({"channel":"c","state":{"name":"Ada"}})")));
  EXPECT_EQ(update.channel, "c");
  ASSERT_TRUE(std::holds_alternative<api::PresenceUpdate>(update.what));
  EXPECT_EQ(std::get<api::PresenceUpdate>(update.what).state().fields().at("name").string_value(), "Ada");
  auto applied = std::get<codec::PresenceEvent>(codec::decode_presence_event("sync:applied", parse(R"({"version":12})")));
  EXPECT_FALSE(applied.channel);
  EXPECT_EQ(std::get<api::Applied>(applied.what).version(), 12);
  auto subscribe = std::get<codec::PresenceEvent>(codec::decode_presence_event("sync:presence_subscribe", boost::json::value()));
  EXPECT_TRUE(std::holds_alternative<codec::PresenceSubscribe>(subscribe.what));
  EXPECT_TRUE(std::holds_alternative<codec::PresenceRequest>(
      std::get<codec::PresenceEvent>(codec::decode_presence_event("sync:presence_request", parse("{}"))).what));
  for (const auto& [name, bad] : std::vector<std::pair<const char*, const char*>>{
           {"sync:presence_update", R"({"state":"x"})"},
           {"sync:presence_update", R"({})"},
           {"sync:presence_update", R"({"channel":"bad name","state":{}})"},
           {"sync:applied", R"({"version":-1})"},
           {"sync:applied", R"([1])"},
       }) {
    EXPECT_TRUE(std::holds_alternative<codec::Error>(codec::decode_presence_event(name, parse(bad)))) << name << bad;
  }
  EXPECT_TRUE(codec::is_presence_event("sync:applied"));
  EXPECT_FALSE(codec::is_presence_event("sync:change"));
}

TEST(SocketIoPresence, EventsGoOutAsSyncPresenceWithTheChannel) {
  dialect::SocketIoEncoder encoder("room");
  const auto frame = encoder.presence(R"({"type":"presence_leave","payload":{"connectionId":"x"}})");
  EXPECT_EQ(*frame, R"(42["sync:presence",{"type":"presence_leave","payload":{"connectionId":"x"}},"room"])");
}

TEST(SocketIoOffsets, NameAChannelAndAVersion) {
  std::string channel;
  std::int64_t version = 0;
  EXPECT_TRUE(dialect::SocketIoEncoder::parse_offset("a:b@12", &channel, &version));
  EXPECT_EQ(channel, "a:b");
  EXPECT_EQ(version, 12);
  for (const char* bad : {"", "@1", "c@", "c@-1", "c@1x", "c", "c@99999999999999999999"}) {
    EXPECT_FALSE(dialect::SocketIoEncoder::parse_offset(bad, &channel, &version)) << bad;
  }
}

TEST(SocketIoAcks, ABatchIsAnsweredOnceInOrderWhateverOrderAnswersArriveIn) {
  std::vector<std::string> sent;
  socketio::AckCollector acks([&](std::int64_t id, std::string answer) {
    sent.push_back(std::to_string(id) + ":" + answer);
  });
  const auto e = acks.open(5, true, 3);
  acks.expect(e, 0, "ch", "a");
  acks.answer_at(e, 1, "\"refused\"");
  acks.expect(e, 2, "ch", "c");
  acks.answer("ch", "c", "\"C\"");
  EXPECT_TRUE(sent.empty());
  acks.answer("ch", "a", "\"A\"");
  EXPECT_EQ(sent, (std::vector<std::string>{"5:[\"A\",\"refused\",\"C\"]"}));
}

TEST(SocketIoAcks, AnswersGoToTheirChannelsEventsAndResentIdsInOrder) {
  std::vector<std::string> sent;
  socketio::AckCollector acks([&](std::int64_t id, std::string answer) {
    sent.push_back(std::to_string(id) + ":" + answer);
  });
  const auto first = acks.open(1, false, 1);
  acks.expect(first, 0, "ch", "x");
  const auto resent = acks.open(2, false, 1);
  acks.expect(resent, 0, "ch", "x");
  acks.answer("other", "x", "\"elsewhere\"");  // another channel's x: not these
  EXPECT_TRUE(sent.empty());
  acks.answer("ch", "x", "\"one\"");
  acks.answer("ch", "x", "\"two\"");
  EXPECT_EQ(sent, (std::vector<std::string>{"1:\"one\"", "2:\"two\""}));
  acks.open(3, true, 0);  // an empty batch: answered at once
  EXPECT_EQ(sent.back(), "3:[]");
}

}  // namespace
}  // namespace bridge
