// Invariants 5 and 7: bad input gets a clear answer, changes nothing, and
// leaves the stream and other clients working.

#include <gtest/gtest.h>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

TEST(BadInput, BadChannelNamesAreRefusedWithInvalidArgument) {
  TestDatabase db;
  Syncd s(db.url());
  for (const std::string& bad : std::vector<std::string>{"has space", std::string(129, 'a'), "semi;colon", "x'--", "ünï"}) {
    SessionClient session(s, bad);
    const grpc::Status st = session.finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(st.error_message().find("[A-Za-z0-9._:-]"), std::string::npos);

    api::PushRequest req;
    req.set_channel(bad);
    *req.add_patches() = create_node("p", "n");
    api::PushResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(s.stub()->Push(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(db.query_value("SELECT count(*) FROM channels"), "0");
}

TEST(BadInput, MalformedPatchesAreRejectedAndTheStreamStaysUsable) {
  TestDatabase db;
  Syncd s(db.url());
  SessionClient bad(s, "room");
  SessionClient other(s, "room");
  ASSERT_TRUE(bad.wait_opened());
  ASSERT_TRUE(other.wait_opened());

  api::Patch deep = patch_from_json(R"({"id":"deep","op":"opaque"})");
  google::protobuf::Value v;
  v.set_number_value(1);
  for (int i = 0; i < 20; ++i) {
    google::protobuf::Value outer;
    *outer.mutable_list_value()->add_values() = v;
    v = outer;
  }
  (*deep.mutable_data()->mutable_fields())["x"] = v;

  const std::vector<std::pair<api::Patch, std::string>> cases = {
      {patch_from_json(R"({"id":"unknown-op","op":"truncate_everything"})"), "invalid_patch"},
      {patch_from_json(R"({"op":"create_node","nodeId":"n","data":{"label":"L"}})"), "invalid_patch"},
      {patch_from_json(R"({"id":"no-node-id","op":"create_node","data":{"label":"L"}})"), "invalid_patch"},
      {patch_from_json(R"({"id":"bad-label","op":"create_node","nodeId":"n","data":{"label":"L) DETACH DELETE n //"}})"), "invalid_patch"},
      {patch_from_json(R"({"id":"no-value","op":"set_property","targetType":"node","targetId":"n","propertyKey":"k"})"), "invalid_patch"},
      {create_node("huge", "n", "L", R"({"blob":")" + std::string(70 * 1024, 'x') + R"("})"), "too_large"},
      {deep, "invalid_patch"},
      {simple("ghost", "delete_node", "nodeId", "ghost"), "not_found"},
      {create_edge("dangling", "e", "nowhere", "nothing"), "not_found"},
  };
  for (const auto& [patch, code] : cases) {
    ASSERT_TRUE(bad.send(patch));
    auto ack = bad.ack(patch.id());
    ASSERT_TRUE(ack) << patch.id();
    EXPECT_EQ(ack->status(), api::Ack::REJECTED) << patch.id();
    EXPECT_EQ(ack->code(), code) << patch.id() << ": " << ack->reason();
    EXPECT_FALSE(ack->reason().empty());
    EXPECT_EQ(ack->server_version(), 0);
  }
  // Still usable: the next good patch is version 1.
  ASSERT_TRUE(bad.send(create_node("good", "n")));
  auto ok = bad.ack("good");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status(), api::Ack::ACCEPTED);
  EXPECT_EQ(ok->server_version(), 1);
  // The other client saw exactly the good one.
  ASSERT_TRUE(other.wait_for([&](const auto& rs) { return !versions_in(rs).empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(other.delivered_versions(), std::vector<std::int64_t>{1});
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "1");
  EXPECT_EQ(verify_log_and_state(db, "room"), "");
}

TEST(BadInput, RejectedPatchesInABatchLeaveNoTrace) {
  TestDatabase db;
  Syncd s(db.url());
  SessionClient watcher(s, "mix");
  ASSERT_TRUE(watcher.wait_opened());
  api::PushRequest req;
  req.set_channel("mix");
  for (const auto& p : {create_node("a", "n1"), create_node("b", "n1"), create_node("c", "n2"),
                        create_edge("d", "e1", "n1", "n3"), create_edge("e", "e1", "n1", "n2"),
                        simple("f", "delete_node", "nodeId", "n3"), set_property("g", "node", "n2", "k", "1"),
                        simple("h", "delete_edge", "edgeId", "e2"), simple("i", "delete_node", "nodeId", "n1"),
                        set_property("j", "edge", "e1", "k", "1")}) {
    *req.add_patches() = p;
  }
  api::PushResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(s.stub()->Push(&ctx, req, &resp).ok());
  std::string statuses;
  for (const auto& a : resp.acks()) statuses += a.status() == api::Ack::ACCEPTED ? "A" : "R";
  // j: e1 went with n1.
  EXPECT_EQ(statuses, "ARAR" "ARAR" "AR");
  EXPECT_EQ(resp.acks(1).code(), "conflict");
  EXPECT_EQ(resp.acks(1).server_version(), 1);  // the head at that moment
  ASSERT_TRUE(watcher.wait_for([&](const auto& rs) { return versions_in(rs).size() >= 5; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(watcher.delivered_versions(), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(db.query_value("SELECT string_agg(patch_id, ',' ORDER BY version) FROM patches"), "a,c,e,g,i");
  EXPECT_EQ(db.query_value("SELECT count(*) FROM edges"), "0");
  EXPECT_EQ(db.query_value("SELECT string_agg(node_id, ',') FROM nodes"), "n2");
  EXPECT_EQ(verify_log_and_state(db, "mix"), "");
}

TEST(BadInput, ProtocolMisuseGetsAClearStatus) {
  TestDatabase db;
  Syncd s(db.url());
  {
    // A patch before `open`.
    grpc::ClientContext ctx;
    auto stream = s.stub()->Session(&ctx);
    api::SessionRequest req;
    *req.mutable_patch() = create_node("p", "n");
    stream->Write(req);
    api::SessionResponse msg;
    while (stream->Read(&msg)) {
    }
    const grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(st.error_message().find("open"), std::string::npos);
  }
  {
    // An empty message and a second open: errors, and the stream goes on.
    SessionClient session(s, "misuse");
    ASSERT_TRUE(session.wait_opened());
    session.send(api::SessionRequest{});
    api::SessionRequest open;
    open.mutable_open()->set_channel("elsewhere");
    session.send(open);
    session.send(create_node("p", "n"));
    ASSERT_TRUE(session.ack("p"));
    int errors = 0;
    for (const auto& r : session.responses()) errors += r.has_error();
    EXPECT_EQ(errors, 2);
  }
  {
    // A message far over the size limit: refused by gRPC; others unaffected.
    SessionClient session(s, "misuse");
    ASSERT_TRUE(session.wait_opened());
    session.send(create_node("big", "big", "L", R"({"blob":")" + std::string(5 << 20, 'x') + R"("})"));
    const grpc::Status st = session.finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    SessionClient fine(s, "misuse");
    ASSERT_TRUE(fine.wait_opened());
    fine.send(create_node("after", "after"));
    auto ack = fine.ack("after");
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->status(), api::Ack::ACCEPTED);
  }
}

TEST(BadInput, AMessageOverMaxMessageBytesFailsAndChangesNothing) {
  TestDatabase db;
  Syncd s(db.url(), {"--max-message-bytes", "200000"});
  const std::string big = "\"" + std::string(60000, 'x') + "\"";
  api::PushRequest req;
  req.set_channel("big");
  for (int i = 0; i < 5; ++i) {
    *req.add_patches() = create_node("p" + std::to_string(i), "n" + std::to_string(i), "Person", "{\"blob\":" + big + "}");
  }
  grpc::ClientContext ctx;
  api::PushResponse out;
  const grpc::Status st = s.stub()->Push(&ctx, req, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  // Under the limit, the same patches go through.
  req.mutable_patches()->DeleteSubrange(2, 3);
  grpc::ClientContext ctx2;
  ASSERT_TRUE(s.stub()->Push(&ctx2, req, &out).ok());
  EXPECT_EQ(out.acks(1).status(), api::Ack::ACCEPTED);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "2");
}


TEST(BadInput, StreamsPerAddressAreCappedWithoutAuthentication) {
  TestDatabase db;
  {
    Syncd server(db.url(), {"--max-streams-per-address", "2"});
    SessionClient a(server, "x"), b(server, "y");
    ASSERT_TRUE(a.wait_opened() && b.wait_opened());
    SessionClient c(server, "z");
    const grpc::Status st = c.finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(st.error_message().find("127.0.0.1 already has 2 streams open (--max-streams-per-address)"),
              std::string::npos)
        << st.error_message();
    // Unary calls are not streams: they still work.
    grpc::ClientContext ctx;
    api::GetChannelInfoRequest req;
    req.set_channel("z");
    api::ChannelInfo info;
    EXPECT_TRUE(server.stub()->GetChannelInfo(&ctx, req, &info).ok());
  }
  Syncd uncapped(db.url(), {"--max-streams-per-address", "2", "--uncapped-address", "127.0.0.1"});
  SessionClient a(uncapped, "x"), b(uncapped, "y"), c(uncapped, "z");
  EXPECT_TRUE(a.wait_opened() && b.wait_opened() && c.wait_opened());
}

}  // namespace
}  // namespace syncd::testing
