// Reading the log: GetChanges pages, Session history pages followed by
// live broadcasts with no gap, sync requests, and slow readers.

#include <gtest/gtest.h>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

void push_nodes(const Syncd& s, const std::string& channel, int from, int to) {
  auto stub = s.stub();
  for (int start = from; start <= to; start += 500) {
    api::PushRequest req;
    req.set_channel(channel);
    for (int i = start; i <= std::min(to, start + 499); ++i) {
      *req.add_patches() = create_node("p" + std::to_string(i), "n" + std::to_string(i));
    }
    api::PushResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->Push(&ctx, req, &resp).ok());
    for (const auto& a : resp.acks()) ASSERT_EQ(a.status(), api::Ack::ACCEPTED) << a.DebugString();
  }
}

TEST(History, GetChangesPagesReturnTheExactSuffix) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "7"});
  push_nodes(s, "log", 1, 100);
  auto stub = s.stub();
  for (std::int64_t from : {0, 5, 7, 50, 99, 100, 150}) {
    for (int limit : {0, 3, 1000}) {
      std::vector<std::int64_t> got;
      std::int64_t cursor = from;
      for (int pages = 0; pages < 200; ++pages) {
        api::GetChangesRequest req;
        req.set_channel("log");
        req.set_from_version(cursor);
        req.set_limit(limit);
        api::GetChangesResponse resp;
        grpc::ClientContext ctx;
        ASSERT_TRUE(stub->GetChanges(&ctx, req, &resp).ok());
        ASSERT_LE(resp.patches_size(), limit == 3 ? 3 : 7);
        for (const auto& p : resp.patches()) got.push_back(p.server_version());
        if (resp.patches_size() > 0) EXPECT_EQ(resp.version(), resp.patches(resp.patches_size() - 1).server_version());
        cursor = resp.version();
        if (!resp.has_more()) break;
      }
      EXPECT_EQ(got, iota(from + 1, 100)) << "from " << from << " limit " << limit;
    }
  }
  // An unknown channel is empty, not an error.
  api::GetChangesRequest req;
  req.set_channel("nobody-here");
  api::GetChangesResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->GetChanges(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.patches_size(), 0);
  EXPECT_FALSE(resp.has_more());
}

TEST(History, SessionGetsHistoryPagesThenLiveWithNoGapWhileOthersWrite) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "10"});
  push_nodes(s, "h", 1, 95);
  std::thread writer([&] { push_nodes(s, "h", 96, 400); });
  SessionClient session(s, "h", 13);
  writer.join();
  ASSERT_TRUE(session.wait_for([&](const auto& rs) { return versions_in(rs).size() >= 387; },
                               std::chrono::seconds(60)));
  EXPECT_EQ(session.delivered_versions(), iota(14, 400));

  // The pages: at most 10 patches, hasMore on all but the last, version =
  // the last version in the page; and no broadcast before the last page.
  bool pages_done = false;
  std::int64_t last_page_version = 13;
  for (const auto& r : session.responses()) {
    if (r.has_sync_state()) {
      ASSERT_FALSE(pages_done) << "a sync_state page came after the history ended";
      const auto& st = r.sync_state();
      EXPECT_LE(st.patches_size(), 10);
      if (st.patches_size() > 0) EXPECT_EQ(st.version(), st.patches(st.patches_size() - 1).server_version());
      EXPECT_GT(st.version(), last_page_version - (st.patches_size() == 0 ? 1 : 0));
      last_page_version = st.version();
      if (!st.has_more()) pages_done = true;
    } else if (r.has_broadcast()) {
      ASSERT_TRUE(pages_done) << "a broadcast came before the last history page";
    }
  }
  EXPECT_TRUE(pages_done);
}

TEST(History, OwnPatchesSentDuringHistoryAreNotEchoed) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "5"});
  push_nodes(s, "echo", 1, 300);
  SessionClient session(s, "echo", 0);
  for (int i = 0; i < 20; ++i) session.send(create_node("own" + std::to_string(i), "own" + std::to_string(i)));
  std::vector<std::int64_t> own;
  for (int i = 0; i < 20; ++i) {
    auto ack = session.ack("own" + std::to_string(i));
    ASSERT_TRUE(ack);
    ASSERT_EQ(ack->status(), api::Ack::ACCEPTED);
    own.push_back(ack->server_version());
  }
  push_nodes(s, "echo", 1000, 1009);  // others' patches after ours
  ASSERT_TRUE(session.wait_for([&](const auto& rs) { return versions_in(rs).size() >= 310; }));
  std::vector<std::int64_t> all = session.delivered_versions();
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  for (std::int64_t v : own) EXPECT_EQ(std::count(all.begin(), all.end(), v), 0) << "own patch " << v << " echoed";
  all.insert(all.end(), own.begin(), own.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, iota(1, 330));
}

TEST(History, NoHistoryStartsAtTheHead) {
  TestDatabase db;
  Syncd s(db.url());
  push_nodes(s, "nh", 1, 20);
  SessionClient session(s, "nh", 0, /*no_history=*/true);
  ASSERT_TRUE(session.wait_opened());
  ASSERT_TRUE(session.wait_for([](const auto& rs) {
    for (const auto& r : rs) if (r.has_sync_state()) return true;
    return false;
  }));
  push_nodes(s, "nh", 21, 25);
  ASSERT_TRUE(session.wait_for([&](const auto& rs) { return versions_in(rs).size() >= 5; }));
  EXPECT_EQ(session.delivered_versions(), iota(21, 25));
  for (const auto& r : session.responses()) {
    if (r.has_opened()) EXPECT_EQ(r.opened().head_version(), 20);
    if (r.has_sync_state()) EXPECT_EQ(r.sync_state().version(), 20);
  }
}

TEST(History, SyncRequestAnswersPagesFromAnyVersion) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "8"});
  push_nodes(s, "sr", 1, 30);
  SessionClient session(s, "sr", 0, true);
  ASSERT_TRUE(session.wait_opened());
  api::SessionRequest req;
  req.mutable_sync_request()->set_from_version(5);
  req.mutable_sync_request()->set_limit(6);
  session.send(req);
  std::vector<std::int64_t> got;
  ASSERT_TRUE(session.wait_for([&](const auto& rs) {
    got.clear();
    bool last = false;
    for (const auto& r : rs) {
      if (!r.has_sync_state() || r.sync_state().version() == 30 && r.sync_state().patches_size() == 0) continue;
      for (const auto& p : r.sync_state().patches()) got.push_back(p.server_version());
      last = !r.sync_state().has_more();
    }
    return last && !got.empty();
  }));
  EXPECT_EQ(got, iota(6, 30));
}

// A client that does not read while thousands of patches are written keeps
// the server's memory bounded (it falls behind and is served from the log)
// and still gets every patch, in order, once.
TEST(History, SlowReaderGetsEverythingInOrder) {
  TestDatabase db;
  Syncd s(db.url());
  auto stub = s.stub();
  grpc::ClientContext ctx;
  auto stream = stub->Session(&ctx);
  api::SessionRequest open;
  open.mutable_open()->set_channel("slow");
  ASSERT_TRUE(stream->Write(open));
  api::SessionResponse msg;
  ASSERT_TRUE(stream->Read(&msg));  // opened
  ASSERT_TRUE(msg.has_opened());
  const std::string big(2000, 'x');
  auto push = [&](int from, int to) {
    api::PushRequest req;
    req.set_channel("slow");
    for (int i = from; i <= to; ++i) {
      *req.add_patches() = create_node("p" + std::to_string(i), "n" + std::to_string(i), "Person",
                                       R"({"pad":")" + big + R"("})");
    }
    api::PushResponse resp;
    grpc::ClientContext c;
    ASSERT_TRUE(stub->Push(&c, req, &resp).ok());
  };
  for (int i = 0; i < 6; ++i) push(i * 500 + 1, (i + 1) * 500);  // ~6 MB the client is not reading
  std::vector<std::int64_t> got;
  while (got.size() < 3000 && stream->Read(&msg)) {
    if (msg.has_broadcast()) got.push_back(msg.broadcast().server_version());
    for (const auto& p : msg.sync_state().patches()) got.push_back(p.server_version());
  }
  EXPECT_EQ(got, iota(1, 3000));
  // It fell behind, so it was served by catch-up reads.
  EXPECT_GT(metric_value(s, "syncd_catchup_reads_total"), 0);
  ctx.TryCancel();
}

// Reading history is not catching up: a Session and a Watch that start far
// back read the log, but only a stream that fell behind the live feed
// counts in syncd_catchup_reads_total.
TEST(History, HistoryReadsAreNotCatchUpReads) {
  TestDatabase db;
  Syncd s(db.url(), {"--page-size", "10"});
  push_nodes(s, "h", 1, 200);
  SessionClient session(s, "h", 0);
  ASSERT_TRUE(session.wait_for([&](const auto& rs) { return versions_in(rs).size() >= 200; },
                               std::chrono::seconds(60)));
  api::WatchRequest req;
  req.set_channel("h");
  req.set_from_version(0);
  grpc::ClientContext ctx;
  auto watch = s.stub()->Watch(&ctx, req);
  std::vector<std::int64_t> got;
  api::Patch p;
  while (got.size() < 200 && watch->Read(&p)) got.push_back(p.server_version());
  EXPECT_EQ(got, iota(1, 200));
  EXPECT_GT(metric_value(s, "syncd_log_reads_total"), 2);
  EXPECT_EQ(metric_value(s, "syncd_catchup_reads_total"), 0);
  ctx.TryCancel();
}

}  // namespace
}  // namespace syncd::testing
