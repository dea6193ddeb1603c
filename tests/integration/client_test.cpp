// clients/cpp against a real syncd: convergence, rollback, and offline
// edits that land exactly once after the server comes back.

#include <gtest/gtest.h>

#include "harness.h"
#include "patches.h"
#include "sync_client/sync_client.h"

namespace syncd::testing {
namespace {

using client::ClientOptions;
using client::SyncClient;
using namespace std::chrono_literals;

ClientOptions options(const Syncd& s, const std::string& channel, const std::string& id) {
  ClientOptions o;
  o.server = s.address();
  o.channel = channel;
  o.client_id = id;
  o.reconnect_initial = 100ms;
  o.reconnect_max = 500ms;
  return o;
}

google::protobuf::Struct props(const std::string& key, const std::string& value) {
  google::protobuf::Struct s;
  (*s.mutable_fields())[key].set_string_value(value);
  return s;
}

std::string name_of(const SyncClient& c, const std::string& id) {
  auto n = c.node(id);
  if (!n) return "<none>";
  auto it = n->properties.fields().find("name");
  return it == n->properties.fields().end() ? "<no name>" : it->second.string_value();
}

TEST(CppClient, TwoClientsConvergeAndEditsAreOptimistic) {
  TestDatabase db;
  Syncd s(db.url());
  SyncClient a(options(s, "cpp", "alice"));
  SyncClient b(options(s, "cpp", "bob"));
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return c.connected(); }, 10s));
  ASSERT_TRUE(b.wait_until([](const SyncClient& c) { return c.connected(); }, 10s));

  const std::string ada = a.create_node("Person", props("name", "Ada"));
  EXPECT_EQ(name_of(a, ada), "Ada");  // at once
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return c.pending_count() == 0 && c.server_version() == 1; }, 10s));
  ASSERT_TRUE(b.wait_until([&](const SyncClient& c) { return c.node(ada).has_value(); }, 10s));

  google::protobuf::Value v;
  v.set_string_value("Ada Lovelace");
  b.set_property("node", ada, "name", v);
  const std::string grace = b.create_node("Person", props("name", "Grace"));
  ASSERT_TRUE(a.wait_until([&](const SyncClient& c) { return c.node(grace).has_value(); }, 10s));
  const std::string edge = a.create_edge("KNOWS", ada, grace);
  for (SyncClient* c : {&a, &b}) {
    ASSERT_TRUE(c->wait_until([](const SyncClient& x) { return x.server_version() == 4 && x.pending_count() == 0; }, 10s));
    EXPECT_EQ(name_of(*c, ada), "Ada Lovelace");
    ASSERT_TRUE(c->edge(edge).has_value());
    EXPECT_EQ(c->edge(edge)->to, grace);
  }
  EXPECT_EQ(verify_log_and_state(db, "cpp"), "");
}

TEST(CppClient, RejectedPatchesAreRolledBackAndReported) {
  TestDatabase db;
  auto s = std::make_unique<Syncd>(db.url());
  const int port = s->grpc_port();
  SyncClient a(options(*s, "cpp-rollback", "alice"));
  std::vector<client::Rejection> rejected;
  std::mutex mu;
  a.on_rejected([&](const client::Rejection& r) {
    std::lock_guard lock(mu);
    rejected.push_back(r);
  });
  const std::string n = a.create_node("Person", props("name", "x"));
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return c.server_version() == 1; }, 10s));

  // Offline, so that the optimistic state can be seen before the answer:
  // the label applies locally, but the server refuses it.
  s->kill9();
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return !c.connected(); }, 10s));
  const std::string bad = a.create_node("not a label!", props("name", "y"));
  a.create_edge("KNOWS", n, "nobody", {}, "bad-edge");  // does not apply locally either
  EXPECT_TRUE(a.node(bad).has_value());
  EXPECT_FALSE(a.edge("bad-edge").has_value());
  s = std::make_unique<Syncd>(db.url(), std::vector<std::string>{}, port);
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return c.pending_count() == 0; }, 20s));
  std::lock_guard lock(mu);
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_EQ(rejected[0].code, "invalid_patch");
  EXPECT_EQ(rejected[0].patch.node_id(), bad);
  EXPECT_EQ(rejected[1].code, "not_found");
  EXPECT_EQ(rejected[1].patch.edge_id(), "bad-edge");
  EXPECT_FALSE(a.node(bad).has_value());
  EXPECT_TRUE(a.node(n).has_value());
  EXPECT_EQ(a.server_version(), 1);
}

TEST(CppClient, OfflineEditsLandExactlyOnceWhenTheServerReturns) {
  TestDatabase db;
  auto s = std::make_unique<Syncd>(db.url());
  const int port = s->grpc_port();
  SyncClient a(options(*s, "cpp-offline", "alice"));
  SyncClient b(options(*s, "cpp-offline", "bob"));
  const std::string doc = a.create_node("Doc", props("name", "draft"));
  ASSERT_TRUE(b.wait_until([&](const SyncClient& c) { return c.node(doc).has_value(); }, 10s));

  s->kill9();
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return !c.connected(); }, 10s));
  google::protobuf::Value v;
  for (int i = 0; i < 5; ++i) {
    v.set_number_value(i);
    a.set_property("node", doc, "k" + std::to_string(i), v);
  }
  b.create_node("Doc", props("name", "from bob"), "doc-b");
  EXPECT_EQ(a.pending_count(), 5u);

  s = std::make_unique<Syncd>(db.url(), std::vector<std::string>{}, port);
  for (SyncClient* c : {&a, &b}) {
    ASSERT_TRUE(c->wait_until([](const SyncClient& x) { return x.server_version() == 7 && x.pending_count() == 0; }, 20s))
        << "version " << c->server_version() << ", pending " << c->pending_count();
  }
  EXPECT_EQ(name_of(a, "doc-b"), "from bob");
  EXPECT_TRUE(b.node(doc)->properties.fields().count("k4"));
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "7");
  EXPECT_EQ(verify_log_and_state(db, "cpp-offline"), "");
}

// Away while the channel moved on and was compacted: the client comes
// back to a snapshot, which replaces its confirmed state, and its offline
// edits still land on top, once.
TEST(CppClient, AClientBehindTheHorizonGetsASnapshotAndKeepsItsPendingEdits) {
  TestDatabase db;
  auto s = std::make_unique<Syncd>(db.url());
  const int port = s->grpc_port();
  ClientOptions o = options(*s, "cpp-compact", "alice");
  o.reconnect_initial = 3s;  // time for the channel to move on while it is away
  o.reconnect_max = 3s;
  SyncClient a(o);
  const std::string doc = a.create_node("Doc", props("name", "draft"), "doc");
  a.create_node("Doc", props("name", "doomed"), "doomed");
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return c.server_version() == 2 && c.pending_count() == 0; }, 10s));

  s->kill9();
  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return !c.connected(); }, 10s));
  google::protobuf::Value v;
  v.set_string_value("offline");
  a.set_property("node", doc, "note", v);

  s = std::make_unique<Syncd>(db.url(), std::vector<std::string>{}, port);
  api::PushRequest req;
  req.set_channel("cpp-compact");
  for (int i = 0; i < 20; ++i) *req.add_patches() = create_node("other-" + std::to_string(i), "o" + std::to_string(i));
  *req.add_patches() = simple("kill-doomed", "delete_node", "nodeId", "doomed");
  api::PushResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(s->stub()->Push(&ctx, req, &resp).ok());
  }
  api::CompactRequest compact;
  compact.set_channel("cpp-compact");
  compact.set_through_version(23);
  api::CompactResponse compacted;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(s->stub()->Compact(&ctx, compact, &compacted).ok());
  }

  ASSERT_TRUE(a.wait_until([](const SyncClient& c) { return c.server_version() == 24 && c.pending_count() == 0; }, 30s))
      << "version " << a.server_version() << ", pending " << a.pending_count();
  EXPECT_EQ(a.node_count(), 21u);  // doc and the 20 others; "doomed" is gone
  EXPECT_FALSE(a.node("doomed").has_value());
  EXPECT_EQ(a.node(doc)->properties.fields().at("note").string_value(), "offline");
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "1");
}

}  // namespace
}  // namespace syncd::testing
