// Migrations, start-up checks, health, heartbeats and idle timeouts.

#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

TEST(Lifecycle, MigrateDownThenUpRoundTrips) {
  TestDatabase db;
  auto status = run_syncd({"migrate", "status", "--database-url", db.url()});
  ASSERT_EQ(status.status, 0) << status.output;
  EXPECT_EQ(status.output.find("[pending]"), std::string::npos) << status.output;

  const std::string tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
                             "AND table_name IN ('channels','patches','nodes','edges','server_identity','crdt_peers',"
                             "'presence','presence_instances','client_positions')";
  EXPECT_EQ(db.query_value(tables), "9");
  int downs = 0;
  for (;;) {
    auto down = run_syncd({"migrate", "down", "--database-url", db.url()});
    ASSERT_EQ(down.status, 0) << down.output;
    if (down.output.find("nothing to revert") != std::string::npos) break;
    ++downs;
    ASSERT_LT(downs, 100);
  }
  EXPECT_GE(downs, 2);
  EXPECT_EQ(db.query_value(tables), "0");
  EXPECT_EQ(db.query_value("SELECT count(*) FROM schema_migrations"), "0");

  auto up = run_syncd({"migrate", "up", "--database-url", db.url()});
  ASSERT_EQ(up.status, 0) << up.output;
  EXPECT_NE(up.output.find("applied " + std::to_string(downs) + " migration"), std::string::npos) << up.output;
  EXPECT_EQ(db.query_value(tables), "9");
  auto again = run_syncd({"migrate", "up", "--database-url", db.url()});
  EXPECT_NE(again.output.find("up to date"), std::string::npos) << again.output;

  // And the schema works.
  Syncd s(db.url());
  SessionClient session(s, "after-migrations");
  session.send(create_node("p", "n"));
  auto ack = session.ack("p");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status(), api::Ack::ACCEPTED);
}

// A database the previous release migrated, holding data, takes the
// compaction migration in place: every row stays, and the new features
// work on the old channels.
TEST(Lifecycle, TheCompactionMigrationUpgradesADatabaseInPlaceWithItsData) {
  TestDatabase db;
  // The presence migrations came after it: reverted first.
  auto tracking = run_syncd({"migrate", "down", "--database-url", db.url()});
  ASSERT_EQ(tracking.status, 0) << tracking.output;
  ASSERT_NE(tracking.output.find("presence_change_tracking"), std::string::npos) << tracking.output;
  auto presence = run_syncd({"migrate", "down", "--database-url", db.url()});
  ASSERT_EQ(presence.status, 0) << presence.output;
  ASSERT_NE(presence.output.find("presence_and_positions"), std::string::npos) << presence.output;
  auto down = run_syncd({"migrate", "down", "--database-url", db.url()});
  ASSERT_EQ(down.status, 0) << down.output;
  ASSERT_NE(down.output.find("compaction_and_retention"), std::string::npos) << down.output;
  ASSERT_EQ(db.query_value("SELECT count(*) FROM information_schema.columns WHERE table_name = 'channels' "
                           "AND column_name = 'compacted_through'"),
            "0");
  // The old schema, written the way the old release wrote it.
  db.exec("INSERT INTO channels (name) VALUES ('old')");
  api::Patch a = create_node("a", "n1"), b = create_node("b", "n2");
  for (auto [patch, version] : {std::pair{&a, 1}, std::pair{&b, 2}}) {
    store_patch_directly(db, "old", *patch, version);
    db.exec("INSERT INTO nodes (channel_id, node_id, label, properties, version, client_id) SELECT id, '" +
            patch->node_id() + "', 'Person', '{}', " + std::to_string(version) +
            ", 'c1' FROM channels WHERE name = 'old'");
  }
  auto up = run_syncd({"migrate", "up", "--database-url", db.url()});
  ASSERT_EQ(up.status, 0) << up.output;
  EXPECT_EQ(verify_log_and_state(db, "old"), "");
  EXPECT_EQ(db.query_value("SELECT compacted_through FROM channels WHERE name = 'old'"), "0");

  Syncd s(db.url());
  api::CompactRequest req;
  req.set_channel("old");
  req.set_through_version(2);
  api::CompactResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(s.stub()->Compact(&ctx, req, &resp).ok());
  SessionClient session(s, "old", 0);
  ASSERT_TRUE(session.wait_for([](const std::vector<api::SessionResponse>& rs) {
    for (const auto& r : rs) {
      if (r.has_sync_state() && r.sync_state().snapshot()) return r.sync_state().patches_size() == 2;
    }
    return false;
  }));
  session.send(create_node("a", "n1"));  // a resend of a compacted patch
  auto ack = session.ack("a");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status(), api::Ack::IGNORED);
  EXPECT_EQ(ack->server_version(), 1);
}

TEST(Lifecycle, ServeRefusesASchemaThatIsBehind) {
  TestDatabase db(/*migrate=*/false);
  EXPECT_THROW(Syncd s(db.url()), std::runtime_error);
  auto r = run_syncd({"serve", "--database-url", db.url(), "--grpc-listen", "127.0.0.1:0",
                      "--http-listen", "127.0.0.1:0"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("syncd migrate up"), std::string::npos) << r.output;
}

TEST(Lifecycle, HelpAndConfigurationErrorsAreClear) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"serve", "--help"}, {"migrate", "--help"}}) {
    auto r = run_syncd(args);
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << r.output;
  }
  auto no_db = run_syncd({"migrate", "up", "--database-url", ""});
  EXPECT_EQ(no_db.status, 2);
  EXPECT_NE(no_db.output.find("DATABASE_URL"), std::string::npos);
  auto unreachable = run_syncd({"migrate", "status", "--database-url", "postgresql://nobody@127.0.0.1:1/x"});
  EXPECT_EQ(unreachable.status, 1);
  auto bad_flag = run_syncd({"serve", "--no-such-flag"});
  EXPECT_EQ(bad_flag.status, 2);
  EXPECT_NE(bad_flag.output.find("no-such-flag"), std::string::npos);
}

TEST(Lifecycle, HealthIsServingOverGrpcAndHttp) {
  TestDatabase db;
  Syncd s(db.url());
  auto health = grpc::health::v1::Health::NewStub(s.channel());
  for (const std::string service : {"", "sync.v1.Sync"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  const std::string ok = http_get(s.http_port(), "/healthz");
  EXPECT_NE(ok.find("200 OK"), std::string::npos) << ok;
  EXPECT_NE(ok.find("serving"), std::string::npos);
  const std::string ready = http_get(s.http_port(), "/readyz");
  EXPECT_NE(ready.find("200 OK"), std::string::npos) << ready;
  EXPECT_NE(ready.find(R"("status":"ready")"), std::string::npos) << ready;
  EXPECT_NE(http_get(s.http_port(), "/nope").find("404"), std::string::npos);
}

TEST(Lifecycle, SilentSessionsAreClosedAndHeartbeatsKeepThemOpen) {
  TestDatabase db;
  Syncd s(db.url(), {"--idle-timeout", "2", "--heartbeat-interval", "1"});
  SessionClient silent(s, "idle");
  SessionClient chatty(s, "idle");
  ASSERT_TRUE(silent.wait_opened());
  ASSERT_TRUE(chatty.wait_opened());
  api::SessionRequest hb;
  hb.mutable_heartbeat();
  for (int i = 0; i < 12; ++i) {
    chatty.send(hb);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  EXPECT_TRUE(silent.ended());
  const grpc::Status st = silent.finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_NE(st.error_message().find("heartbeat"), std::string::npos) << st.error_message();
  EXPECT_FALSE(chatty.ended());
  int heartbeats = 0;
  for (const auto& r : chatty.responses()) heartbeats += r.has_heartbeat();
  EXPECT_GE(heartbeats, 2);
  chatty.send(create_node("still-here", "n"));
  auto ack = chatty.ack("still-here");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status(), api::Ack::ACCEPTED);
}

}  // namespace
}  // namespace syncd::testing
