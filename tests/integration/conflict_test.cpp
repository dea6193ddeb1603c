// Channel conflict policies, end to end.

#include <gtest/gtest.h>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

api::Ack push_one(api::Sync::Stub& stub, const std::string& channel, const api::Patch& p) {
  api::PushRequest req;
  req.set_channel(channel);
  *req.add_patches() = p;
  api::PushResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub.Push(&ctx, req, &resp).ok());
  return resp.acks(0);
}

api::ChannelInfo info(api::Sync::Stub& stub, const std::string& channel) {
  api::GetChannelInfoRequest req;
  req.set_channel(channel);
  api::ChannelInfo out;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub.GetChannelInfo(&ctx, req, &out).ok());
  return out;
}

TEST(Conflict, RejectStaleRefusesEditsBasedOnOldVersions) {
  TestDatabase db;
  Syncd s(db.url());
  auto stub = s.stub();
  api::ConfigureChannelRequest cfg;
  cfg.set_channel("doc");
  cfg.set_conflict_policy("reject_stale");
  api::ChannelInfo configured;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->ConfigureChannel(&ctx, cfg, &configured).ok());
  EXPECT_EQ(configured.conflict_policy(), "reject_stale");

  ASSERT_EQ(push_one(*stub, "doc", create_node("p1", "n", "Doc", R"({"title":"a","body":"x"})", "alice")).status(),
            api::Ack::ACCEPTED);
  ASSERT_EQ(push_one(*stub, "doc", set_property("p2", "node", "n", "title", R"("b")", "bob")).status(),
            api::Ack::ACCEPTED);

  api::Patch stale = set_property("p3", "node", "n", "title", R"("c")", "carol");
  stale.set_base_version(1);
  const api::Ack rejected = push_one(*stub, "doc", stale);
  EXPECT_EQ(rejected.status(), api::Ack::REJECTED);
  EXPECT_EQ(rejected.code(), "conflict");
  EXPECT_EQ(rejected.server_version(), 2);

  api::Patch fresh = set_property("p4", "node", "n", "title", R"("c")", "carol");
  fresh.set_base_version(2);
  EXPECT_EQ(push_one(*stub, "doc", fresh).status(), api::Ack::ACCEPTED);
  EXPECT_EQ(db.query_value("SELECT properties->>'title' FROM nodes"), "c");

  const api::ChannelInfo i = info(*stub, "doc");
  EXPECT_EQ(i.head_version(), 3);
  EXPECT_EQ(i.patch_count(), 3);
  EXPECT_EQ(i.conflict_policy(), "reject_stale");
  EXPECT_EQ(verify_log_and_state(db, "doc"), "");
}

TEST(Conflict, LastWriterWinsIsTheDefault) {
  TestDatabase db;
  Syncd s(db.url());
  auto stub = s.stub();
  EXPECT_EQ(info(*stub, "fresh").conflict_policy(), "last_writer_wins");
  ASSERT_EQ(push_one(*stub, "lww", create_node("p1", "n", "Doc", R"({"t":1})", "alice")).status(), api::Ack::ACCEPTED);
  ASSERT_EQ(push_one(*stub, "lww", set_property("p2", "node", "n", "t", "2", "bob")).status(), api::Ack::ACCEPTED);
  api::Patch late = set_property("p3", "node", "n", "t", "3", "carol");
  late.set_base_version(1);
  EXPECT_EQ(push_one(*stub, "lww", late).status(), api::Ack::ACCEPTED);
  EXPECT_EQ(db.query_value("SELECT properties->>'t' FROM nodes"), "3");

  SessionClient watcher(s, "lww", 0, true);
  ASSERT_TRUE(watcher.wait_opened());
  EXPECT_EQ(info(*stub, "lww").connected_clients(), 1);

  api::ConfigureChannelRequest bad;
  bad.set_channel("lww");
  bad.set_conflict_policy("first_writer_wins");
  api::ChannelInfo out;
  grpc::ClientContext ctx;
  EXPECT_EQ(stub->ConfigureChannel(&ctx, bad, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace syncd::testing
