// Presence's pure parts: what a state and a client id may be, the update
// rate, the WebSocket frames, and which changes watchers hear of.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "codec/json_codec.h"
#include "codec/presence_codec.h"
#include "engine/presence_rows.h"
#include "auth/client_text.h"
#include "graph/check.h"
#include "server/session_presence.h"

namespace {

google::protobuf::Struct state_with(const std::string& key, const std::string& value) {
  google::protobuf::Struct s;
  (*s.mutable_fields())[key].set_string_value(value);
  return s;
}

TEST(Presence, StateIsAtMostOneKibOfJsonWithoutNul) {
  using syncd::graph::presence_state_error;
  EXPECT_FALSE(presence_state_error(state_with("name", "Ada")));
  EXPECT_FALSE(presence_state_error(state_with("x", std::string(1000, 'a'))));
  auto big = presence_state_error(state_with("x", std::string(1100, 'a')));
  ASSERT_TRUE(big);
  EXPECT_NE(big->find("1 KiB"), std::string::npos) << *big;
  // Escaping counts: 300 quotes are 600 bytes of JSON, plus the rest.
  EXPECT_TRUE(presence_state_error(state_with("x", std::string(600, '"'))));
  auto nul = presence_state_error(state_with("x", std::string("a\0b", 3)));
  ASSERT_TRUE(nul);
  EXPECT_NE(nul->find("NUL"), std::string::npos) << *nul;
}

TEST(Presence, ClientIdIsShortAndPrintable) {
  using syncd::auth::client_id_error;
  EXPECT_FALSE(client_id_error(""));
  EXPECT_FALSE(client_id_error("ada@example.com"));
  EXPECT_FALSE(client_id_error(std::string(128, 'x')));
  EXPECT_TRUE(client_id_error(std::string(129, 'x')));
  EXPECT_TRUE(client_id_error("a\nb"));
  EXPECT_TRUE(client_id_error(std::string("a\0b", 3)));
  // A protobuf string must be UTF-8: one bad byte forwarded by a bridge
  // would end its whole stream to syncd.
  EXPECT_FALSE(client_id_error("Zoë 🙂"));
  EXPECT_TRUE(client_id_error("\xff"));
  EXPECT_TRUE(client_id_error("\xc3"));          // cut short
  EXPECT_TRUE(client_id_error("\xc0\xaf"));      // overlong
  EXPECT_TRUE(client_id_error("\xed\xa0\x80"));  // a surrogate
}

TEST(Presence, UpdateRateAllowsABurstThenRefuses) {
  syncd::server::UpdateRate rate;
  int admitted = 0;
  for (int i = 0; i < 200; ++i) admitted += rate.admit() ? 1 : 0;
  // The burst, plus what refilled while the loop ran (well under one more second's worth).
  EXPECT_GE(admitted, static_cast<int>(syncd::server::UpdateRate::kBurst));
  EXPECT_LT(admitted, 200);
}

TEST(Presence, WebSocketFramesDecode) {
  using namespace bridge::codec;
  auto sub = decode_client_frame(R"({"type":"presence_subscribe"})");
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(sub));
  EXPECT_TRUE(std::holds_alternative<PresenceSubscribe>(std::get<ClientMessage>(sub)));
  auto req = decode_client_frame(R"({"type":"presence_request"})");
  EXPECT_TRUE(std::holds_alternative<PresenceRequest>(std::get<ClientMessage>(req)));

  auto upd = decode_client_frame(R"({"type":"presence_update","payload":{"state":{"name":"Ada","cursor":[1,2]}}})");
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(upd));
  const auto& state = std::get<syncapi::v1::PresenceUpdate>(std::get<ClientMessage>(upd)).state();
  EXPECT_EQ(state.fields().at("name").string_value(), "Ada");
  EXPECT_EQ(state.fields().at("cursor").list_value().values_size(), 2);

  auto applied = decode_client_frame(R"({"type":"applied","payload":{"version":7}})");
  EXPECT_EQ(std::get<syncapi::v1::Applied>(std::get<ClientMessage>(applied)).version(), 7);

  for (const char* bad : {R"({"type":"presence_update"})", R"({"type":"presence_update","payload":{"state":3}})",
                          R"({"type":"presence_update","payload":{"state":[1]}})", R"({"type":"applied"})",
                          R"({"type":"applied","payload":{"version":-1}})",
                          R"({"type":"applied","payload":{"version":"7"}})"}) {
    auto d = decode_client_frame(bad);
    ASSERT_TRUE(std::holds_alternative<Error>(d)) << bad;
    EXPECT_EQ(std::get<Error>(d).code, "invalid_message") << bad;
  }
}

TEST(Presence, WebSocketFramesEncodeMembers) {
  syncapi::v1::PresenceList list;
  list.set_channel("doc");
  auto* m = list.add_members();
  m->set_connection_id("i.1");
  m->set_client_id("ada");
  m->set_transport("ws");
  m->set_connected_at(1700000000000);
  *m->mutable_state() = state_with("name", "Ada \"the\" first");
  m->set_applied_version(3);
  const auto j = nlohmann::json::parse(bridge::codec::encode_presence_state(list));
  EXPECT_EQ(j["type"], "presence_state");
  EXPECT_EQ(j["payload"]["channel"], "doc");
  ASSERT_EQ(j["payload"]["members"].size(), 1u);
  const auto& member = j["payload"]["members"][0];
  EXPECT_EQ(member["connectionId"], "i.1");
  EXPECT_EQ(member["state"]["name"], "Ada \"the\" first");
  EXPECT_EQ(member["appliedVersion"], 3);
  EXPECT_FALSE(member.contains("subject"));  // authentication off

  syncapi::v1::PresenceEvent leave;
  *leave.mutable_leave() = *m;
  EXPECT_EQ(nlohmann::json::parse(bridge::codec::encode_presence(leave))["type"], "presence_leave");
}

TEST(Presence, WatchersHearOfStateChangesNotOfPositions) {
  syncapi::v1::PresenceMember a;
  a.set_connection_id("i.1");
  a.set_client_id("ada");
  *a.mutable_state() = state_with("name", "Ada");
  syncapi::v1::PresenceMember moved = a;
  moved.set_delivered_version(10);
  moved.set_applied_version(9);
  const auto row = [](const syncapi::v1::PresenceMember& m) { return syncd::engine::row_of("doc", m); };
  EXPECT_TRUE(syncd::engine::same_for_watchers(row(a), row(moved)));
  syncapi::v1::PresenceMember renamed = a;
  *renamed.mutable_state() = state_with("name", "Ada L.");
  EXPECT_FALSE(syncd::engine::same_for_watchers(row(a), row(renamed)));
}

TEST(Presence, RowsKeepTheStateAsJson) {
  syncapi::v1::PresenceMember m;
  m.set_connection_id("i.1");
  m.set_transport("grpc");
  *m.mutable_state() = state_with("cursor", "n1");
  m.set_delivered_version(4);
  const auto row = syncd::engine::row_of("doc", m);
  EXPECT_EQ(row.channel, "doc");
  EXPECT_EQ(nlohmann::json::parse(row.state_json), nlohmann::json({{"cursor", "n1"}}));
  const auto back = syncd::engine::member_of(row);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back.state(), m.state()));
  EXPECT_EQ(back.delivered_version(), 4);
}

}  // namespace
