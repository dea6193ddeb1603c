// Invariants 1 and 3: acks only after COMMIT, at most once per patch id,
// across restarts and kill -9.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

api::PushResponse push(const Syncd& s, const std::string& channel, const std::vector<api::Patch>& patches,
                       grpc::Status* status = nullptr) {
  api::PushRequest req;
  req.set_channel(channel);
  for (const auto& p : patches) *req.add_patches() = p;
  api::PushResponse resp;
  grpc::ClientContext ctx;
  const grpc::Status st = s.stub()->Push(&ctx, req, &resp);
  if (status) *status = st;
  return resp;
}

TEST(Durability, DuplicateIdsAreIgnoredAcrossARestart) {
  TestDatabase db;
  std::vector<api::Patch> patches;
  for (int i = 1; i <= 5; ++i) patches.push_back(create_node("p" + std::to_string(i), "n" + std::to_string(i)));
  {
    Syncd s(db.url());
    auto resp = push(s, "dups", patches);
    ASSERT_EQ(resp.acks_size(), 5);
    // The same id twice in one request: the second is a duplicate too.
    auto again = push(s, "dups", {create_node("p6", "n6"), create_node("p6", "n6-other")});
    EXPECT_EQ(again.acks(0).status(), api::Ack::ACCEPTED);
    EXPECT_EQ(again.acks(1).status(), api::Ack::IGNORED);
    EXPECT_EQ(again.acks(1).server_version(), 6);
    EXPECT_EQ(s.terminate(), 0);
  }
  Syncd s(db.url());
  // p3 resent after the restart, with different content: still p3's version.
  auto resp = push(s, "dups", {create_node("p3", "something-else"), create_node("p7", "n7")});
  ASSERT_EQ(resp.acks_size(), 2);
  EXPECT_EQ(resp.acks(0).status(), api::Ack::IGNORED);
  EXPECT_EQ(resp.acks(0).server_version(), 3);
  EXPECT_EQ(resp.acks(1).status(), api::Ack::ACCEPTED);
  EXPECT_EQ(resp.acks(1).server_version(), 7);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM nodes WHERE node_id = 'something-else'"), "0");
  EXPECT_EQ(verify_log_and_state(db, "dups"), "");
}

TEST(Durability, KillNineDuringWritesLosesNoAckedPatchAndHalfWritesNothing) {
  TestDatabase db;
  std::map<std::string, std::int64_t> acked;  // patch id -> version
  {
    Syncd s(db.url());
    std::vector<std::unique_ptr<SessionClient>> sessions;
    for (int i = 0; i < 4; ++i) {
      sessions.push_back(std::make_unique<SessionClient>(s, "crash"));
      ASSERT_TRUE(sessions.back()->wait_opened());
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; !stop && i < 100000; ++i) {
          const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
          // Nodes, edges between them and property changes: the state
          // tables are written in the same transactions as the log.
          api::Patch p = i % 3 == 2 ? create_edge(id, "e" + id, "w" + std::to_string(w) + "-n" + std::to_string(i - 2),
                                                  "w" + std::to_string(w) + "-n" + std::to_string(i - 1))
                                    : create_node(id, "w" + std::to_string(w) + "-n" + std::to_string(i));
          if (!sessions[w]->send(p)) break;
          if (i % 200 == 199) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    s.kill9();
    stop = true;
    for (auto& t : writers) t.join();
    for (auto& session : sessions) {
      session->finish();
      for (const auto& r : session->responses()) {
        if (r.has_ack() && r.ack().status() == api::Ack::ACCEPTED) acked[r.ack().patch_id()] = r.ack().server_version();
      }
    }
  }
  ASSERT_GT(acked.size(), 100u) << "the load did not get going before the kill";
  std::map<std::string, std::int64_t> stored;
  for (const auto& row : db.query("SELECT patch_id, version FROM patches")) stored[row[0]] = std::stoll(row[1]);
  for (const auto& [id, version] : acked) {
    auto it = stored.find(id);
    ASSERT_TRUE(it != stored.end()) << "acked patch " << id << " is not stored";
    ASSERT_EQ(it->second, version) << "acked patch " << id << " is stored at another version";
  }
  EXPECT_EQ(verify_log_and_state(db, "crash"), "");

  // The next instance carries on from the stored head.
  const std::int64_t head = std::stoll(db.query_value("SELECT head FROM channels WHERE name = 'crash'"));
  Syncd s(db.url());
  auto resp = push(s, "crash", {create_node("after-restart", "after-restart")});
  EXPECT_EQ(resp.acks(0).server_version(), head + 1);
}

// The committer's connections die mid-batch, some between the two round
// trips of a batch and some during COMMIT: no acked patch may be lost or
// moved, nothing may be half-written, and syncd must carry on once the
// database is reachable again.
TEST(Durability, DatabaseConnectionsKilledDuringWritesLoseNoAckedPatch) {
  TestDatabase db;
  Syncd s(db.url());
  std::map<std::string, std::int64_t> acked;  // patch id -> version
  std::vector<std::string> refused;           // answered: nothing stored, retry
  {
    std::vector<std::unique_ptr<SessionClient>> sessions;
    for (int i = 0; i < 4; ++i) {
      sessions.push_back(std::make_unique<SessionClient>(s, "severed"));
      ASSERT_TRUE(sessions.back()->wait_opened());
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        const std::string prefix = "w" + std::to_string(w) + "-";
        for (int i = 0; !stop && i < 100000; ++i) {
          api::Patch p = i % 3 == 2 ? create_edge(prefix + std::to_string(i), "e" + prefix + std::to_string(i),
                                                  prefix + "n" + std::to_string(i - 2),
                                                  prefix + "n" + std::to_string(i - 1))
                                    : create_node(prefix + std::to_string(i), prefix + "n" + std::to_string(i));
          if (!sessions[w]->send(p)) break;
          if (i % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int k = 0; k < 6; ++k) {
      db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
               "AND pid <> pg_backend_pid()");
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
    for (auto& t : writers) t.join();
    for (auto& session : sessions) {
      session->finish_writes();
      session->finish();
      for (const auto& r : session->responses()) {
        if (!r.has_ack()) continue;
        if (r.ack().status() == api::Ack::ACCEPTED) {
          acked[r.ack().patch_id()] = r.ack().server_version();
        } else if (r.ack().code() == "unavailable") {
          refused.push_back(r.ack().patch_id());
        }
      }
    }
  }
  ASSERT_GT(acked.size(), 100u) << "the load did not get going";
  std::printf("acked %zu, refused as unavailable %zu\n", acked.size(), refused.size());
  std::map<std::string, std::int64_t> stored;
  for (const auto& row : db.query("SELECT patch_id, version FROM patches")) stored[row[0]] = std::stoll(row[1]);
  for (const auto& [id, version] : acked) {
    auto it = stored.find(id);
    ASSERT_TRUE(it != stored.end()) << "acked patch " << id << " is not stored";
    ASSERT_EQ(it->second, version) << "acked patch " << id << " is stored at another version";
  }
  for (const std::string& id : refused) {
    ASSERT_EQ(stored.count(id), 0u) << "patch " << id << " was refused as unavailable, but it is stored";
  }
  EXPECT_EQ(verify_log_and_state(db, "severed"), "");

  // The same server carries on from the stored head.
  const std::int64_t head = std::stoll(db.query_value("SELECT head FROM channels WHERE name = 'severed'"));
  auto resp = push(s, "severed", {create_node("after-kills", "after-kills")});
  ASSERT_EQ(resp.acks_size(), 1);
  EXPECT_EQ(resp.acks(0).status(), api::Ack::ACCEPTED) << resp.acks(0).DebugString();
  EXPECT_EQ(resp.acks(0).server_version(), head + 1);
}

TEST(Durability, SigtermAnswersInFlightPatchesThenExitsZero) {
  TestDatabase db;
  Syncd s(db.url());
  SessionClient session(s, "term");
  ASSERT_TRUE(session.wait_opened());
  for (int i = 0; i < 300; ++i) session.send(create_node("p" + std::to_string(i), "n" + std::to_string(i)));
  ASSERT_TRUE(session.ack("p0").has_value());
  EXPECT_EQ(s.terminate(), 0);
  const grpc::Status st = session.finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  int accepted = 0;
  for (const auto& r : session.responses()) {
    if (!r.has_ack()) continue;
    if (r.ack().status() == api::Ack::ACCEPTED) {
      ++accepted;
      EXPECT_EQ(db.query_value("SELECT version FROM patches WHERE patch_id = '" + r.ack().patch_id() + "'"),
                std::to_string(r.ack().server_version()));
    } else {
      EXPECT_EQ(r.ack().code(), "unavailable") << r.ack().DebugString();
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), std::to_string(accepted));
  EXPECT_EQ(verify_log_and_state(db, "term"), "");
}

}  // namespace
}  // namespace syncd::testing
