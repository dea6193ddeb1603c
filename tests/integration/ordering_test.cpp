// Invariants 2 and 4: gap-free versions per channel and ordered, complete
// delivery, under concurrent writers and with two syncd instances sharing
// one database.

#include <gtest/gtest.h>

#include <map>
#include <pqxx/pqxx>
#include <set>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

struct Writer {
  std::unique_ptr<SessionClient> session;
  std::string prefix;
  std::vector<std::int64_t> own;  // versions of its accepted patches
};

// Each writer pipelines `count` patches, then waits for every ack.
void write_all(std::vector<Writer>& writers, int count) {
  std::vector<std::thread> threads;
  for (Writer& w : writers) {
    threads.emplace_back([&w, count] {
      for (int i = 0; i < count; ++i) {
        w.session->send(create_node(w.prefix + std::to_string(i), w.prefix + "n" + std::to_string(i)));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (Writer& w : writers) {
    for (int i = 0; i < count; ++i) {
      auto ack = w.session->ack(w.prefix + std::to_string(i), std::chrono::seconds(60));
      ASSERT_TRUE(ack) << w.prefix << i;
      ASSERT_EQ(ack->status(), api::Ack::ACCEPTED) << ack->DebugString();
      w.own.push_back(ack->server_version());
    }
  }
}

// What a writer saw: its own acks plus broadcasts of everyone else's,
// exactly 1..n; broadcasts in increasing order, none of its own.
void expect_complete_view(Writer& w, std::int64_t n) {
  ASSERT_TRUE(w.session->wait_for(
      [&](const auto& rs) { return static_cast<std::int64_t>(versions_in(rs).size() + w.own.size()) >= n; },
      std::chrono::seconds(60)))
      << w.prefix;
  const std::vector<std::int64_t> seen = w.session->delivered_versions();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end())) << w.prefix;
  std::vector<std::int64_t> all = seen;
  all.insert(all.end(), w.own.begin(), w.own.end());
  std::sort(all.begin(), all.end());
  std::string diff;
  for (std::int64_t v = 1, i = 0; v <= n; ++v) {
    int count = 0;
    while (i < static_cast<std::int64_t>(all.size()) && all[i] == v) ++count, ++i;
    if (count != 1) diff += " v" + std::to_string(v) + "x" + std::to_string(count);
  }
  EXPECT_EQ(diff, "") << w.prefix << " saw a gap or a duplicate (version x times seen)";
  EXPECT_EQ(all.size(), static_cast<std::size_t>(n)) << w.prefix;
}

TEST(Ordering, ConcurrentWritersOnTwoChannelsGetGapFreeVersions) {
  TestDatabase db;
  Syncd server(db.url());
  constexpr int kPerWriter = 150;
  SessionClient reader_a(server, "alpha");
  SessionClient reader_b(server, "beta");
  ASSERT_TRUE(reader_a.wait_opened());
  ASSERT_TRUE(reader_b.wait_opened());

  std::vector<Writer> writers;
  for (int i = 0; i < 10; ++i) {
    const std::string channel = i < 8 ? "alpha" : "beta";
    writers.push_back({std::make_unique<SessionClient>(server, channel), channel + "-w" + std::to_string(i) + "-", {}});
    ASSERT_TRUE(writers.back().session->wait_opened());
  }
  write_all(writers, kPerWriter);

  const std::int64_t n_alpha = 8 * kPerWriter, n_beta = 2 * kPerWriter;
  for (Writer& w : writers) expect_complete_view(w, w.prefix.rfind("alpha", 0) == 0 ? n_alpha : n_beta);
  ASSERT_TRUE(reader_a.wait_for([&](const auto& rs) { return versions_in(rs).size() >= n_alpha; }));
  ASSERT_TRUE(reader_b.wait_for([&](const auto& rs) { return versions_in(rs).size() >= n_beta; }));
  EXPECT_EQ(reader_a.delivered_versions(), iota(1, n_alpha));
  EXPECT_EQ(reader_b.delivered_versions(), iota(1, n_beta));
  EXPECT_EQ(verify_log_and_state(db, "alpha"), "");
  EXPECT_EQ(verify_log_and_state(db, "beta"), "");
  EXPECT_EQ(db.query_value("SELECT count(*) FROM nodes"), std::to_string(n_alpha + n_beta));
}

// Channels are spread over commit threads, each with its own connection;
// every channel must still get gap-free versions in submission order, and
// transactions on different threads must not block each other.
TEST(Ordering, ChannelsSpreadOverCommitThreadsStayGapFree) {
  TestDatabase db;
  Syncd server(db.url(), {"--commit-threads", "3"});
  constexpr int kChannels = 6, kWritersPerChannel = 2, kPerWriter = 100;
  std::vector<std::unique_ptr<SessionClient>> readers;
  std::vector<Writer> writers;
  for (int c = 0; c < kChannels; ++c) {
    const std::string channel = "ch" + std::to_string(c);
    readers.push_back(std::make_unique<SessionClient>(server, channel));
    ASSERT_TRUE(readers.back()->wait_opened());
    for (int w = 0; w < kWritersPerChannel; ++w) {
      const std::string prefix = channel + "-w" + std::to_string(w) + "-";
      writers.push_back({std::make_unique<SessionClient>(server, channel), prefix, {}});
      ASSERT_TRUE(writers.back().session->wait_opened());
    }
  }
  write_all(writers, kPerWriter);

  constexpr std::int64_t kPerChannel = kWritersPerChannel * kPerWriter;
  for (Writer& w : writers) {
    expect_complete_view(w, kPerChannel);
    // Acks come back in the order the writer sent: its versions increase.
    EXPECT_TRUE(std::is_sorted(w.own.begin(), w.own.end())) << w.prefix;
  }
  for (int c = 0; c < kChannels; ++c) {
    const std::string channel = "ch" + std::to_string(c);
    ASSERT_TRUE(readers[c]->wait_for([&](const auto& rs) { return versions_in(rs).size() >= kPerChannel; }));
    EXPECT_EQ(readers[c]->delivered_versions(), iota(1, kPerChannel)) << channel;
    EXPECT_EQ(verify_log_and_state(db, channel), "") << channel;
  }
  EXPECT_EQ(db.query_value("SELECT count(*) FROM nodes"), std::to_string(kChannels * kPerChannel));
}

TEST(Ordering, TwoInstancesOnOneDatabaseStayGapFreeAndFanOutToEachOther) {
  TestDatabase db;
  Syncd a(db.url());
  Syncd b(db.url());
  constexpr int kPerWriter = 100;
  SessionClient reader_a(a, "shared");
  SessionClient reader_b(b, "shared");
  ASSERT_TRUE(reader_a.wait_opened());
  ASSERT_TRUE(reader_b.wait_opened());
  std::vector<Writer> writers;
  for (int i = 0; i < 6; ++i) {
    writers.push_back({std::make_unique<SessionClient>(i % 2 ? a : b, "shared"), "w" + std::to_string(i) + "-", {}});
    ASSERT_TRUE(writers.back().session->wait_opened());
  }
  write_all(writers, kPerWriter);
  const std::int64_t n = 6 * kPerWriter;
  for (Writer& w : writers) expect_complete_view(w, n);
  for (SessionClient* r : {&reader_a, &reader_b}) {
    ASSERT_TRUE(r->wait_for([&](const auto& rs) { return versions_in(rs).size() >= static_cast<std::size_t>(n); }));
    EXPECT_EQ(r->delivered_versions(), iota(1, n));
  }
  EXPECT_EQ(verify_log_and_state(db, "shared"), "");
}

// A commit whose announcement never went out (its instance died between
// the commit and the NOTIFY after it) still reaches every instance's
// subscribers, by the listener's head poll.
TEST(Ordering, ACommitNeverAnnouncedStillReachesSubscribers) {
  TestDatabase db;
  Syncd server(db.url());
  SessionClient writer(server, "quiet");
  SessionClient reader(server, "quiet");
  ASSERT_TRUE(writer.wait_opened());
  ASSERT_TRUE(reader.wait_opened());
  writer.send(create_node("p1", "n1"));
  ASSERT_TRUE(reader.wait_for([](const auto& rs) { return versions_in(rs).size() == 1; }));
  store_patch_directly(db, "quiet", create_node("p2", "n2", "Person", "{}", "elsewhere"), 2);
  ASSERT_TRUE(reader.wait_for([](const auto& rs) { return versions_in(rs).size() == 2; }))
      << "a version stored without NOTIFY did not arrive";
  ASSERT_TRUE(writer.wait_for([](const auto& rs) { return versions_in(rs).size() == 1; }));
  EXPECT_EQ(reader.delivered_versions(), iota(1, 2));
  // The writer's own patch comes back only as its ack; the other one as a broadcast.
  EXPECT_EQ(writer.delivered_versions(), iota(2, 2));
}

// Other instances normally hear of a commit at once, by its NOTIFY: the
// head poll is only the fallback, and would hide a missing announcement
// from tests that wait for delivery.
TEST(Ordering, EveryCommitIsAnnouncedToOtherInstances) {
  TestDatabase db;
  pqxx::connection listener(db.url());
  struct Heard final : pqxx::notification_receiver {
    explicit Heard(pqxx::connection_base& c) : pqxx::notification_receiver(c, "syncd_heads") {}
    void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
    std::vector<std::string> payloads;
  } heard(listener);
  Syncd server(db.url());
  SessionClient writer(server, "announced");
  ASSERT_TRUE(writer.wait_opened());
  for (int v = 1; v <= 3; ++v) {
    writer.send(create_node("p" + std::to_string(v), "n" + std::to_string(v)));
    ASSERT_TRUE(writer.ack("p" + std::to_string(v)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    const std::string line = "\nannounced " + std::to_string(v);
    auto announced = [&] {
      for (const std::string& p : heard.payloads) {
        if (p.find(line) != std::string::npos) return true;
      }
      return false;
    };
    while (!announced() && std::chrono::steady_clock::now() < deadline) listener.await_notification(1, 0);
    EXPECT_TRUE(announced()) << "no NOTIFY for version " << v;
  }
}

TEST(Ordering, WatchDeliversHistoryThenLiveInOrder) {
  TestDatabase db;
  Syncd server(db.url());
  auto stub = server.stub();
  auto push = [&](int from, int to) {
    api::PushRequest req;
    req.set_channel("w");
    for (int i = from; i <= to; ++i) *req.add_patches() = create_node("p" + std::to_string(i), "n" + std::to_string(i));
    api::PushResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->Push(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.acks_size(), to - from + 1);
    for (int i = 0; i < resp.acks_size(); ++i) {
      EXPECT_EQ(resp.acks(i).status(), api::Ack::ACCEPTED);
      EXPECT_EQ(resp.acks(i).server_version(), from + i);
      EXPECT_EQ(resp.acks(i).patch_id(), "p" + std::to_string(from + i));
    }
  };
  push(1, 30);
  grpc::ClientContext ctx;
  api::WatchRequest req;
  req.set_channel("w");
  req.set_from_version(10);
  auto reader = stub->Watch(&ctx, req);
  std::vector<std::int64_t> got;
  api::Patch p;
  while (got.size() < 20 && reader->Read(&p)) got.push_back(p.server_version());
  push(31, 35);
  while (got.size() < 25 && reader->Read(&p)) {
    got.push_back(p.server_version());
    EXPECT_EQ(p.id(), "p" + std::to_string(p.server_version()));
  }
  EXPECT_EQ(got, iota(11, 35));
  ctx.TryCancel();
}

}  // namespace
}  // namespace syncd::testing
