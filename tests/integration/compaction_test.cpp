// Long-lived channels: snapshots, compaction while writers and readers run,
// and clients at any position getting back in step with no error path.

#include <gtest/gtest.h>

#include <atomic>

#include "channel_calls.h"

namespace syncd::testing {
namespace {

void push_all(const Syncd& s, const std::string& channel, const std::vector<api::Patch>& patches, History* history) {
  const api::PushResponse resp = push(s, channel, patches);
  ASSERT_EQ(resp.acks_size(), static_cast<int>(patches.size()));
  for (int i = 0; i < resp.acks_size(); ++i) {
    ASSERT_NE(resp.acks(i).code(), "unavailable");
    if (history) history->record(patches[static_cast<std::size_t>(i)], resp.acks(i));
  }
}

TEST(Compaction, SnapshotThenTailReplacesStateAndNothingIsMissedOrRepeated) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "5"});
  History history;
  std::mt19937 rng(7);
  std::vector<api::Patch> batch;
  for (int i = 0; i < 300; ++i) batch.push_back(random_op(rng, "p" + std::to_string(i)));
  push_all(s, "doc", batch, &history);
  const std::int64_t head = info(s, "doc").head_version();
  ASSERT_GT(head, 100);

  api::CompactResponse compacted;
  ASSERT_TRUE(compact(s, "doc", head - 20, false, &compacted).ok());
  EXPECT_EQ(compacted.compacted_through(), head - 20);
  auto after = info(s, "doc");
  EXPECT_EQ(after.compacted_through(), head - 20);
  EXPECT_EQ(after.patch_count(), 20);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "20");

  // GetChanges names the horizon and the way out.
  {
    api::GetChangesRequest req;
    req.set_channel("doc");
    req.set_from_version(3);
    api::GetChangesResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status st = s.stub()->GetChanges(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_NE(st.error_message().find("GetSnapshot"), std::string::npos) << st.error_message();
    EXPECT_NE(st.error_message().find(std::to_string(head - 19)), std::string::npos) << st.error_message();
  }

  // GetSnapshot: pages of at most 5, all at the head, equal to the fold.
  std::string error;
  const graph::Graph want = history.fold(head, &error);
  ASSERT_EQ(error, "");
  const auto pages = snapshot(s, "doc");
  ASSERT_FALSE(pages.empty());
  Replica from_snapshot;
  from_snapshot.reset(head);
  for (std::size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(pages[i].version(), head);
    EXPECT_EQ(pages[i].compacted_through(), head - 20);
    EXPECT_LE(pages[i].patches_size(), 5);
    EXPECT_EQ(pages[i].has_more(), i + 1 < pages.size());
    for (const auto& p : pages[i].patches()) ASSERT_TRUE(from_snapshot.apply(p)) << from_snapshot.error();
  }
  EXPECT_EQ(graph_difference(want, from_snapshot.graph()), "");

  // Sessions before, at and after the horizon, and past the head.
  for (std::int64_t since : {std::int64_t{0}, head - 30, head - 20, head - 19, head - 5, head, head + 50}) {
    SessionClient c(s, "doc", since);
    ASSERT_TRUE(c.wait_opened());
    const bool snapshot_expected = since < head - 20 || since > head;
    ASSERT_TRUE(c.wait_for([&](const std::vector<api::SessionResponse>& rs) {
      for (const auto& x : rs) {
        if (x.has_sync_state() && !x.sync_state().has_more()) return true;
      }
      return false;
    }));
    // Inside the retained range the client holds the state at `since`.
    Replica r = snapshot_expected ? Replica() : history.replica_at(since);
    for (const auto& x : c.responses()) {
      if (x.has_opened()) {
        EXPECT_EQ(x.opened().compacted_through(), head - 20);
      }
      ASSERT_TRUE(r.take(x)) << "since " << since << ": " << r.error();
    }
    EXPECT_EQ(r.position(), head) << "since " << since;
    EXPECT_EQ(r.snapshots(), snapshot_expected ? 1 : 0) << "since " << since;
    EXPECT_EQ(graph_difference(want, r.graph()), "") << "since " << since;
  }
}

TEST(Compaction, SyncRequestBeforeTheHorizonAnswersWithASnapshot) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "4"});
  History history;
  std::mt19937 rng(11);
  std::vector<api::Patch> batch;
  for (int i = 0; i < 60; ++i) batch.push_back(random_op(rng, "q" + std::to_string(i)));
  push_all(s, "sr", batch, &history);
  const std::int64_t head = info(s, "sr").head_version();
  ASSERT_TRUE(compact(s, "sr", head / 2).ok());

  SessionClient c(s, "sr", 0, /*no_history=*/true);
  ASSERT_TRUE(c.wait_opened());
  api::SessionRequest req;
  req.mutable_sync_request()->set_from_version(1);
  ASSERT_TRUE(c.send(req));
  ASSERT_TRUE(c.wait_for([](const std::vector<api::SessionResponse>& rs) {
    for (const auto& x : rs) {
      if (x.has_sync_state() && x.sync_state().requested() && !x.sync_state().has_more()) return true;
    }
    return false;
  }));
  Replica r;
  int snapshot_pages = 0;
  for (const auto& x : c.responses()) {
    if (!x.has_sync_state() || !x.sync_state().requested()) continue;
    if (x.sync_state().snapshot()) {
      ++snapshot_pages;
      r.reset(x.sync_state().version());
    }
    for (const auto& p : x.sync_state().patches()) ASSERT_TRUE(r.apply(p)) << r.error();
  }
  EXPECT_EQ(snapshot_pages, 1);
  std::string error;
  EXPECT_EQ(graph_difference(history.fold(head, &error), r.graph()), "");
  EXPECT_EQ(r.position(), head);
}

TEST(Compaction, WatchFromBeforeTheHorizonStartsWithAReset) {
  TestDatabase db;
  Syncd s(db.url());
  History history;
  std::mt19937 rng(5);
  std::vector<api::Patch> batch;
  for (int i = 0; i < 80; ++i) batch.push_back(random_op(rng, "w" + std::to_string(i)));
  push_all(s, "wt", batch, &history);
  const std::int64_t head = info(s, "wt").head_version();
  ASSERT_TRUE(compact(s, "wt", head - 3).ok());

  grpc::ClientContext ctx;
  api::WatchRequest req;
  req.set_channel("wt");
  req.set_from_version(1);
  auto reader = s.stub()->Watch(&ctx, req);
  Replica r;
  std::vector<api::Patch> more;
  for (int i = 0; i < 5; ++i) more.push_back(random_op(rng, "w2-" + std::to_string(i)));
  std::int64_t final_head = 0;
  bool pushed = false;
  api::Patch p;
  bool first = true;
  while (reader->Read(&p)) {
    if (first) {
      EXPECT_EQ(p.op(), "reset");
      EXPECT_TRUE(p.snapshot());
      first = false;
    } else if (p.op() != "reset" && p.server_version() == r.position() && r.snapshots() == 1) {
      EXPECT_TRUE(p.snapshot());
    }
    ASSERT_TRUE(r.take(p)) << r.error();
    if (!pushed && r.position() == head) {
      pushed = true;
      push_all(s, "wt", more, &history);
      final_head = info(s, "wt").head_version();
    }
    if (pushed && r.position() == final_head) break;
  }
  ctx.TryCancel();
  EXPECT_EQ(r.snapshots(), 1);
  std::string error;
  EXPECT_EQ(graph_difference(history.fold(final_head, &error), r.graph()), "");
  EXPECT_EQ(error, "");
}

// The property: random operations on several channels, compaction at
// random points while writers run, clients joining at random positions;
// every client ends with the fold of the whole history, having seen no
// version twice and none out of order.
TEST(Compaction, RandomJoinsDuringCompactionAllConvergeToTheFold) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "16", "--compact-batch", "7"});
  const std::vector<std::string> channels{"a", "b", "c"};
  std::map<std::string, History> histories;
  for (const auto& c : channels) histories[c];
  std::atomic<bool> writing{true};

  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      for (int round = 0; round < 60; ++round) {
        const std::string& channel = channels[rng() % channels.size()];
        std::vector<api::Patch> batch;
        for (int i = 0; i < 10; ++i) {
          batch.push_back(random_op(rng, "w" + std::to_string(w) + "-" + std::to_string(round) + "-" + std::to_string(i)));
        }
        push_all(s, channel, batch, &histories[channel]);
      }
    });
  }
  std::thread compactor([&] {
    std::mt19937 rng(3);
    while (writing) {
      const std::string& channel = channels[rng() % channels.size()];
      auto i = info(s, channel);
      if (i.head_version() > 0) {
        const std::int64_t through = static_cast<std::int64_t>(rng() % static_cast<unsigned>(i.head_version() + 1));
        const grpc::Status st = compact(s, channel, through);
        EXPECT_TRUE(st.ok()) << st.error_message();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  // Readers join at random moments and positions, on Session and Watch.
  struct Reader {
    std::string channel;
    std::int64_t since;
    std::unique_ptr<SessionClient> session;
    std::unique_ptr<grpc::ClientContext> watch_ctx;
    std::unique_ptr<grpc::ClientReader<api::Patch>> watch;
    Replica replica;
  };
  std::vector<std::unique_ptr<Reader>> readers;
  std::mt19937 rng(42);
  for (int i = 0; i < 24; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    auto r = std::make_unique<Reader>();
    r->channel = channels[rng() % channels.size()];
    auto ci = info(s, r->channel);
    const std::int64_t head = ci.head_version(), horizon = ci.compacted_through();
    const std::int64_t choices[] = {0, horizon / 2, horizon, horizon + (head - horizon) / 2, head, head + 7};
    r->since = choices[rng() % 6];
    if (i % 3 == 2) {
      r->watch_ctx = std::make_unique<grpc::ClientContext>();
      r->watch_ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
      api::WatchRequest req;
      req.set_channel(r->channel);
      req.set_from_version(r->since);
      r->watch = s.stub()->Watch(r->watch_ctx.get(), req);
    } else {
      r->session = std::make_unique<SessionClient>(s, r->channel, r->since);
    }
    readers.push_back(std::move(r));
  }
  for (auto& w : writers) w.join();
  writing = false;
  compactor.join();

  for (auto& r : readers) {
    std::string error;
    const std::int64_t head = info(s, r->channel).head_version();
    const graph::Graph want = histories[r->channel].fold(head, &error);
    ASSERT_EQ(error, "");
    // A client that joined inside the retained range holds the state at
    // its `since` already; one that gets a snapshot starts from nothing.
    bool seeded = false;
    auto seed = [&](bool snapshot_first) {
      if (seeded) return;
      seeded = true;
      if (!snapshot_first) r->replica = histories[r->channel].replica_at(r->since);
    };
    if (r->watch) {
      api::Patch p;
      if (r->since == head) seed(false);  // nothing to deliver
      while (!seeded || r->replica.position() < head || r->replica.owed() > 0) {
        ASSERT_TRUE(r->watch->Read(&p)) << "watch since " << r->since << " ended at " << r->replica.position()
                                         << " before " << head << ": " << r->watch->Finish().error_message();
        seed(p.op() == "reset");
        ASSERT_TRUE(r->replica.take(p)) << "watch since " << r->since << ": " << r->replica.error();
      }
      r->watch_ctx->TryCancel();
    } else {
      ASSERT_TRUE(r->session->wait_for([&](const std::vector<api::SessionResponse>& rs) {
        for (const auto& x : rs) {
          if (x.has_sync_state() && !x.sync_state().has_more() && x.sync_state().version() >= head) return true;
        }
        return !versions_in(rs).empty() && versions_in(rs).back() >= head;
      })) << "session since " << r->since << " never reached " << head;
      for (const auto& x : r->session->responses()) {
        if (x.has_sync_state() || x.has_broadcast()) seed(x.has_sync_state() && x.sync_state().snapshot());
        ASSERT_TRUE(r->replica.take(x)) << "session since " << r->since << ": " << r->replica.error();
      }
    }
    EXPECT_EQ(r->replica.position(), head);
    EXPECT_EQ(graph_difference(want, r->replica.graph()), "")
        << r->channel << " since " << r->since << (r->watch ? " (watch)" : " (session)") << ", "
        << r->replica.snapshots() << " snapshots";
  }
  // The run covered both paths: joins that needed a snapshot and joins
  // inside the retained range.
  int with_snapshot = 0;
  for (const auto& r : readers) with_snapshot += r->replica.snapshots() > 0;
  EXPECT_GT(with_snapshot, 0);
  EXPECT_LT(with_snapshot, static_cast<int>(readers.size()));

  // The stored state is still the fold, and the log holds exactly
  // (horizon, head].
  for (const auto& c : channels) {
    const auto ci = info(s, c);
    std::string error;
    Replica r;
    r.reset(ci.head_version());
    for (const auto& page : snapshot(s, c)) {
      for (const auto& p : page.patches()) ASSERT_TRUE(r.apply(p)) << r.error();
    }
    EXPECT_EQ(graph_difference(histories[c].fold(ci.head_version(), &error), r.graph()), "") << c;
    const auto rows = db.query("SELECT count(*), coalesce(min(version), 0), coalesce(max(version), 0) FROM patches p "
                               "JOIN channels ch ON ch.id = p.channel_id WHERE ch.name = '" + c + "'");
    EXPECT_EQ(std::stoll(rows[0][0]), ci.head_version() - ci.compacted_through()) << c;
    if (ci.head_version() > ci.compacted_through()) {
      EXPECT_EQ(std::stoll(rows[0][1]), ci.compacted_through() + 1) << c;
      EXPECT_EQ(std::stoll(rows[0][2]), ci.head_version()) << c;
    }
  }
}

}  // namespace
}  // namespace syncd::testing
