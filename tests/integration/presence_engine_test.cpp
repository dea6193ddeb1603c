// The presence engine on a real PostgreSQL: two instances (as two syncd
// processes would have) sharing one database, each watcher's view kept
// from the events alone and compared with what the database holds.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "engine/presence.h"
#include "graph/json.h"
#include "harness.h"

namespace syncd::testing {
namespace {

using namespace std::chrono_literals;
using engine::PresenceChange;

// A watcher that keeps the list from what it hears, and counts it.
class Recorder final : public engine::PresenceWatcher {
 public:
  void on_presence(const std::string&, const std::shared_ptr<const api::PresenceList>& full,
                   const std::vector<PresenceChange>& changes) override {
    std::lock_guard lock(mu_);
    if (full) {
      ++lists;
      members.clear();
      for (const auto& m : full->members()) members[m.connection_id()] = graph::to_json(m.state());
    }
    for (const auto& c : changes) {
      const std::string& id = c.member.connection_id();
      switch (c.kind) {
        case PresenceChange::Kind::kJoin: ++joins, members[id] = graph::to_json(c.member.state()); break;
        case PresenceChange::Kind::kUpdate: ++updates[id], members[id] = graph::to_json(c.member.state()); break;
        case PresenceChange::Kind::kLeave: ++leaves, members.erase(id); break;
      }
    }
    changed_.notify_all();
  }

  // Under mu_: the member's state as JSON, or "" when it is not listed.
  std::string state_of(const std::string& id) const {
    auto it = members.find(id);
    return it == members.end() ? "" : it->second;
  }

  // Waits (up to 20 s) until `done` holds of what was heard.
  bool wait_for(const std::function<bool()>& done) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, 20s, done);
  }

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::string> members;  // connection id -> state JSON
  int lists = 0, joins = 0, leaves = 0;
  std::map<std::string, int> updates;
};

api::PresenceMember member(const std::string& id, const std::string& name) {
  api::PresenceMember m;
  m.set_connection_id(id);
  m.set_transport("grpc");
  (*m.mutable_state()->mutable_fields())["name"].set_string_value(name);
  return m;
}

google::protobuf::Struct state(int n) {
  google::protobuf::Struct s;
  (*s.mutable_fields())["n"].set_number_value(n);
  return s;
}

engine::PresenceOptions options(std::size_t large_channel) {
  engine::PresenceOptions o;
  o.ttl = 3s;
  o.large_channel = large_channel;
  return o;
}

TEST(PresenceEngine, JoinsUpdatesAndLeavesOfAnotherInstanceArriveAsEvents) {
  TestDatabase db;
  engine::Presence a(db.url(), "a", options(1000)), b(db.url(), "b", options(1000));
  auto seen = std::make_shared<Recorder>();
  b.watch("doc", seen);
  ASSERT_TRUE(seen->wait_for([&] { return seen->lists == 1; }));
  for (int i = 0; i < 5; ++i) a.connect("doc", member("a." + std::to_string(i), "m" + std::to_string(i)));
  b.connect("doc", member("b.0", "local"));
  ASSERT_TRUE(seen->wait_for([&] { return seen->members.size() == 6; }));
  EXPECT_EQ(seen->lists, 1) << "joins come as events, not as whole lists";
  EXPECT_EQ(seen->joins, 6);

  a.set_state("doc", "a.2", state(7));
  ASSERT_TRUE(seen->wait_for([&] { return seen->state_of("a.2") == R"({"n":7})"; }));
  a.disconnect("doc", "a.0");
  a.disconnect("doc", "a.1");
  ASSERT_TRUE(seen->wait_for([&] { return seen->members.size() == 4; }));
  EXPECT_EQ(seen->leaves, 2);
  EXPECT_EQ(seen->lists, 1);

  // A clean stop: the instance's members leave at once.
  a.stop();
  ASSERT_TRUE(seen->wait_for([&] { return seen->members.size() == 1; }));
  EXPECT_EQ(seen->members.count("b.0"), 1u);
}

TEST(PresenceEngine, ALargeChannelSendsJoinsAtOnceAndEachMembersUpdatesAtMostOnceASecond) {
  TestDatabase db;
  // "Large" from 4 members, so a test can be one.
  engine::Presence a(db.url(), "a", options(4)), b(db.url(), "b", options(4));
  auto seen = std::make_shared<Recorder>();
  b.watch("doc", seen);
  ASSERT_TRUE(seen->wait_for([&] { return seen->lists == 1; }));
  for (int i = 0; i < 6; ++i) a.connect("doc", member("a." + std::to_string(i), "m"));
  ASSERT_TRUE(seen->wait_for([&] { return seen->members.size() == 6; }));
  const int lists_before = seen->lists;

  // Member a.0 changes its state 40 times over about 2 s; the engine writes
  // at most 10 a second, and a watcher of a large channel hears at most one
  // a second, the latest. A join meanwhile is not held back.
  const auto start = std::chrono::steady_clock::now();
  for (int n = 1; n <= 40; ++n) {
    a.set_state("doc", "a.0", state(n));
    if (n == 20) a.connect("doc", member("a.joined", "late"));
    std::this_thread::sleep_for(50ms);  // the pace of the updates, not a wait for a result
  }
  ASSERT_TRUE(seen->wait_for([&] { return seen->state_of("a.0") == R"({"n":40})"; }));
  ASSERT_TRUE(seen->wait_for([&] { return seen->members.count("a.joined") == 1; }));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard lock(seen->mu_);
  EXPECT_GE(seen->updates["a.0"], 1);
  EXPECT_LE(seen->updates["a.0"], static_cast<int>(seconds) + 2) << "over " << seconds << " s";
  EXPECT_EQ(seen->lists, lists_before) << "the changes went as events";
}

TEST(PresenceEngine, AnIdleInstanceOnlyRenewsItsHeartbeatAndKeepsItsMembersListed) {
  TestDatabase db;
  // Counts instance a's writes: each one upserts its heartbeat row.
  db.exec(R"(CREATE TABLE beats (at timestamptz NOT NULL DEFAULT clock_timestamp());
             CREATE FUNCTION count_beat() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO beats DEFAULT VALUES; RETURN NULL; END $$;
             CREATE TRIGGER beat AFTER INSERT OR UPDATE ON presence_instances
               FOR EACH ROW WHEN (NEW.instance_id = 'a') EXECUTE FUNCTION count_beat())");
  engine::Presence a(db.url(), "a", options(1000)), b(db.url(), "b", options(1000));
  auto seen = std::make_shared<Recorder>();
  b.watch("doc", seen);
  a.connect("doc", member("a.0", "idle"));
  ASSERT_TRUE(seen->wait_for([&] { return seen->members.count("a.0") == 1; }));

  // Idle for twice the ttl (3 s): a round every 50 ms, a heartbeat due every
  // 0.3 s. Each round writing would be about 120 writes.
  const std::string from = db.query_value("SELECT clock_timestamp()");
  std::this_thread::sleep_for(6s);  // the span observed, not a wait for a result
  const int writes = std::stoi(db.query_value("SELECT count(*) FROM beats WHERE at > '" + from + "'"));
  EXPECT_GE(writes, 2) << "the heartbeat must still be renewed";
  EXPECT_LE(writes, 40) << "an idle instance writes only its heartbeat";
  // Renewed often enough: b's sweeps never took a for dead.
  std::lock_guard lock(seen->mu_);
  EXPECT_EQ(seen->members.count("a.0"), 1u);
  EXPECT_EQ(seen->leaves, 0);
}

TEST(PresenceEngine, RowsTheDatabaseLostAreWrittenAgain) {
  TestDatabase db;
  engine::Presence a(db.url(), "a", options(1000));
  a.connect("doc", member("a.0", "x"));
  a.connect("doc", member("a.1", "y"));
  a.set_state("doc", "a.1", state(5));
  const std::map<std::string, std::string> want{{"a.0", R"({"name":"x"})"}, {"a.1", R"({"n":5})"}};
  // a's rows as stored, once they equal `want` or after 20 s.
  const auto stored = [&] {
    std::map<std::string, std::string> rows;
    for (int i = 0; i < 200; ++i) {
      rows.clear();
      for (const auto& row : db.query("SELECT connection_id, state::text FROM presence WHERE instance_id = 'a'")) {
        rows[row[0]] = graph::to_json(*graph::struct_from_json(row[1]));
      }
      if (rows == want) break;
      std::this_thread::sleep_for(100ms);  // polling for the rows
    }
    return rows;
  };
  ASSERT_EQ(stored(), want);

  // Taken for dead (what another instance's sweep does after a stall):
  // a's heartbeat finds its row gone, and a lists its connections again.
  db.exec("DELETE FROM presence WHERE instance_id = 'a'; DELETE FROM presence_instances WHERE instance_id = 'a'");
  EXPECT_EQ(stored(), want) << "after a sweep";

  // A database crash empties the presence tables, which are unlogged, and
  // ends every connection: a's next connection writes every row again.
  db.exec("DELETE FROM presence WHERE instance_id = 'a'");
  db.set_allow_connections(false);
  db.set_allow_connections(true);
  EXPECT_EQ(stored(), want) << "after the connections were lost";
}

TEST(PresenceEngine, EveryWatcherEndsWithWhatTheDatabaseHolds) {
  TestDatabase db;
  engine::Presence a(db.url(), "a", options(1000)), b(db.url(), "b", options(1000));
  auto on_a = std::make_shared<Recorder>(), on_b = std::make_shared<Recorder>();
  a.watch("doc", on_a);
  b.watch("doc", on_b);
  // Both instances churn at once: joins, updates and leaves interleave in
  // concurrent transactions, which incremental reads must not miss.
  for (int round = 0; round < 30; ++round) {
    for (auto [p, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}}) {
      const std::string id = std::string(name) + "." + std::to_string(round);
      p->connect("doc", member(id, name));
      p->set_state("doc", id, state(round));
      if (round % 3 == 0) p->disconnect("doc", std::string(name) + "." + std::to_string(round / 2));
    }
    std::this_thread::sleep_for(10ms);  // spreads the changes over several rounds
  }
  // What both instances must end with: every id joined, less those that left.
  std::map<std::string, std::string> want;
  for (const char* name : {"a", "b"}) {
    for (int round = 0; round < 30; ++round) want[std::string(name) + "." + std::to_string(round)] = graph::to_json(state(round));
    for (int round = 0; round < 30; round += 3) want.erase(std::string(name) + "." + std::to_string(round / 2));
  }
  ASSERT_EQ(want.size(), 40u);
  for (auto* seen : {on_a.get(), on_b.get()}) {
    EXPECT_TRUE(seen->wait_for([&] {
      if (seen->members.size() != want.size()) return false;
      for (const auto& [id, json] : want) {
        auto it = seen->members.find(id);
        if (it == seen->members.end() || it->second != json) return false;
      }
      return true;
    }));
  }
  // And so does the database, read once both are idle.
  std::map<std::string, std::string> stored;
  for (const auto& row : db.query("SELECT connection_id, state::text FROM presence WHERE channel = 'doc'")) {
    stored[row[0]] = graph::to_json(*graph::struct_from_json(row[1]));
  }
  EXPECT_EQ(stored, want);
}

}  // namespace
}  // namespace syncd::testing
