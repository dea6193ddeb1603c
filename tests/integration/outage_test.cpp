// The database goes away and comes back while syncd runs: its connections
// are dropped, or it refuses new ones. syncd must say it is not ready,
// refuse patches promptly, and serve again by itself.

#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Every connection to the test database but the caller's is closed by the
// server: what syncd's connections look like after a database restart.
void drop_connections(const TestDatabase& db) {
  db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
           "AND pid <> pg_backend_pid()");
}

grpc::health::v1::HealthCheckResponse::ServingStatus health(const Syncd& s, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(s.channel());
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!stub->Check(&ctx, req, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  return resp.status();
}

bool ready(const Syncd& s) { return http_get(s.http_port(), "/readyz").find(" 200 ") != std::string::npos; }

// Polls `cond` until it holds or `limit` passes; how long it took.
std::optional<Clock::duration> within(std::chrono::seconds limit, const std::function<bool()>& cond) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    if (cond()) return Clock::now() - start;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

api::GetChangesResponse changes(const Syncd& s, const std::string& channel, grpc::Status* status) {
  api::GetChangesRequest req;
  req.set_channel(channel);
  api::GetChangesResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  *status = s.stub()->GetChanges(&ctx, req, &resp);
  return resp;
}

api::Ack push_one(const Syncd& s, const std::string& channel, const api::Patch& patch) {
  api::PushRequest req;
  req.set_channel(channel);
  *req.add_patches() = patch;
  api::PushResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  const grpc::Status st = s.stub()->Push(&ctx, req, &resp);
  api::Ack ack;
  if (!st.ok() || resp.acks_size() != 1) {
    ack.set_status(api::Ack::REJECTED);
    ack.set_code("call failed: " + st.error_message());
    return ack;
  }
  return resp.acks(0);
}

// A connection that was open before the database dropped it fails its
// next statement; reads must retry on a new connection instead of failing
// the first call that lands on each reader.
TEST(Outage, ReadsRightAfterTheDatabaseDroppedEveryConnectionSucceed) {
  TestDatabase db;
  Syncd s(db.url(), {"--read-threads", "3"});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(push_one(s, "r", create_node("p" + std::to_string(i), "n" + std::to_string(i))).status(),
              api::Ack::ACCEPTED);
  }
  for (int round = 0; round < 3; ++round) {
    // Several reads, so every reader thread holds a connection.
    for (int i = 0; i < 6; ++i) {
      grpc::Status st;
      changes(s, "r", &st);
      ASSERT_TRUE(st.ok()) << st.error_message();
    }
    drop_connections(db);
    // Dropped connections are not an outage: readiness holds throughout
    // (the probe's own connection was dropped too; it is probed every second).
    const auto until = Clock::now() + std::chrono::milliseconds(1500);
    while (Clock::now() < until) {
      ASSERT_TRUE(ready(s)) << "/readyz said 503 after the connections were dropped, with the database up";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (int i = 0; i < 6; ++i) {
      grpc::Status st;
      const auto resp = changes(s, "r", &st);
      EXPECT_TRUE(st.ok()) << "read " << i << " after the connections were dropped: " << st.error_message();
      EXPECT_EQ(resp.patches_size(), 3);
    }
    SessionClient session(s, "r");
    EXPECT_TRUE(session.wait_opened()) << "a session opened after the connections were dropped";
  }
}

TEST(Outage, WhileTheDatabaseRefusesConnectionsSyncdIsNotReadyThenRecovers) {
  TestDatabase db;
  Syncd s(db.url());
  ASSERT_EQ(push_one(s, "o", create_node("before", "before")).status(), api::Ack::ACCEPTED);
  ASSERT_TRUE(ready(s));
  ASSERT_EQ(health(s, "sync.v1.Sync"), grpc::health::v1::HealthCheckResponse::SERVING);

  db.set_allow_connections(false);
  const auto noticed = within(std::chrono::seconds(10), [&] { return !ready(s); });
  ASSERT_TRUE(noticed) << "/readyz still says 200 with the database unreachable";
  std::printf("not ready %lld ms after the outage began\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(*noticed).count()));
  EXPECT_NE(http_get(s.http_port(), "/readyz").find("unreachable"), std::string::npos);
  EXPECT_NE(http_get(s.http_port(), "/healthz").find(" 200 "), std::string::npos) << "liveness must not change";
  for (const std::string service : {"", "sync.v1.Sync"}) {
    EXPECT_EQ(health(s, service), grpc::health::v1::HealthCheckResponse::NOT_SERVING) << service;
  }
  // Patches are refused at once, not held: nothing is stored.
  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) {
    const api::Ack ack = push_one(s, "o", create_node("during" + std::to_string(i), "d" + std::to_string(i)));
    EXPECT_EQ(ack.status(), api::Ack::REJECTED);
    EXPECT_EQ(ack.code(), "unavailable") << ack.DebugString();
  }
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5)) << "refusals should not wait on the database";
  grpc::Status read_status;
  changes(s, "o", &read_status);
  EXPECT_EQ(read_status.error_code(), grpc::StatusCode::UNAVAILABLE) << read_status.error_message();

  db.set_allow_connections(true);
  const auto back = within(std::chrono::seconds(5), [&] { return ready(s); });
  ASSERT_TRUE(back) << "not ready 5 s after the database accepted connections again";
  EXPECT_EQ(health(s, "sync.v1.Sync"), grpc::health::v1::HealthCheckResponse::SERVING);
  const api::Ack after = push_one(s, "o", create_node("after", "after"));
  EXPECT_EQ(after.status(), api::Ack::ACCEPTED) << after.DebugString();
  EXPECT_EQ(after.server_version(), 2);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches WHERE patch_id LIKE 'during%'"), "0");
  EXPECT_EQ(verify_log_and_state(db, "o"), "");
}

}  // namespace
}  // namespace syncd::testing
