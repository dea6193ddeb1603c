// Invariants 1 and 3: acks only after COMMIT, at most once per patch id,
// across restarts and kill -9.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <set>

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

// Four sessions on one channel, each writing from its own thread until
// stopped: nodes, and edges between them, so the state tables are written
// in the same transactions as the log.
class Writers {
 public:
  Writers(const Syncd& s, const std::string& channel) {
    for (int w = 0; w < 4; ++w) {
      sessions_.push_back(std::make_unique<SessionClient>(s, channel));
      EXPECT_TRUE(sessions_.back()->wait_opened());
    }
    for (int w = 0; w < 4; ++w) {
      threads_.emplace_back([this, w] {
        const std::string prefix = "w" + std::to_string(w) + "-";
        for (int i = 0; !stop_ && i < 100000; ++i) {
          api::Patch p = i % 3 == 2 ? create_edge(prefix + std::to_string(i), "e" + prefix + std::to_string(i),
                                                  prefix + "n" + std::to_string(i - 2),
                                                  prefix + "n" + std::to_string(i - 1))
                                    : create_node(prefix + std::to_string(i), prefix + "n" + std::to_string(i));
          if (!sessions_[w]->send(p)) break;
          if (i % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
  }
  ~Writers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  // Stops, waits for every stream to end, and returns the acks received.
  std::vector<api::Ack> acks() {
    stop();
    std::vector<api::Ack> out;
    for (auto& session : sessions_) {
      session->finish_writes();
      session->finish();
      for (const auto& r : session->responses()) {
        if (r.has_ack()) out.push_back(r.ack());
      }
    }
    return out;
  }

 private:
  std::vector<std::unique_ptr<SessionClient>> sessions_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Patch id -> version of every accepted ack.
std::map<std::string, std::int64_t> accepted(const std::vector<api::Ack>& acks) {
  std::map<std::string, std::int64_t> out;
  for (const auto& a : acks) {
    if (a.status() == api::Ack::ACCEPTED) out[a.patch_id()] = a.server_version();
  }
  return out;
}

// "" when every acked patch is stored at its acked version.
std::string missing_acked(const TestDatabase& db, const std::map<std::string, std::int64_t>& acked) {
  std::map<std::string, std::int64_t> stored;
  for (const auto& row : db.query("SELECT patch_id, version FROM patches")) stored[row[0]] = std::stoll(row[1]);
  for (const auto& [id, version] : acked) {
    auto it = stored.find(id);
    if (it == stored.end()) return "acked patch " + id + " is not stored";
    if (it->second != version) return "acked patch " + id + " is stored at another version";
  }
  return "";
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
    Writers writers(s, "crash");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    s.kill9();
    acked = accepted(writers.acks());
  }
  ASSERT_GT(acked.size(), 100u) << "the load did not get going before the kill";
  EXPECT_EQ(missing_acked(db, acked), "");
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
  std::vector<api::Ack> acks;
  {
    Writers writers(s, "severed");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int k = 0; k < 6; ++k) {
      db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
               "AND pid <> pg_backend_pid()");
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    acks = writers.acks();
  }
  const std::map<std::string, std::int64_t> acked = accepted(acks);
  ASSERT_GT(acked.size(), 100u) << "the load did not get going";
  // A stream ends as soon as one of its patches is in doubt, while its
  // later patches may still sit in the committer's queue: let them land.
  const std::string head_at_end = db.query_value("SELECT head FROM channels WHERE name = 'severed'");
  ASSERT_TRUE(wait_idle(s, "severed", "marker")) << "syncd's log:\n" << s.log();
  std::printf("head when the last stream ended %s, after the marker %s\n", head_at_end.c_str(),
              db.query_value("SELECT head FROM channels WHERE name = 'severed'").c_str());
  EXPECT_EQ(missing_acked(db, acked), "");
  // Refused as unavailable means nothing was stored: a retry is safe.
  std::set<std::string> stored;
  for (const auto& row : db.query("SELECT patch_id FROM patches")) stored.insert(row[0]);
  int refused = 0;
  for (const auto& a : acks) {
    if (a.status() == api::Ack::ACCEPTED || a.code() != "unavailable") continue;
    ++refused;
    EXPECT_EQ(stored.count(a.patch_id()), 0u) << "patch " << a.patch_id() << " was refused, but it is stored";
  }
  std::printf("acked %zu, refused as unavailable %d\n", acked.size(), refused);
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
  std::map<std::string, std::string> stored;  // patch id -> version
  for (const auto& row : db.query("SELECT patch_id, version FROM patches")) stored[row[0]] = row[1];
  int accepted = 0;
  for (const auto& r : session.responses()) {
    if (!r.has_ack()) continue;
    if (r.ack().status() == api::Ack::ACCEPTED) {
      ++accepted;
      EXPECT_EQ(stored[r.ack().patch_id()], std::to_string(r.ack().server_version())) << r.ack().patch_id();
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
