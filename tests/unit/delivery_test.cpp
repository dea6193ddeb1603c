// The delivery core without a socket or syncd: a fake Upstream answers the
// calls when the test says so, and a recording Sink shows what the client
// would see. The invariants: every version once and in order, history
// before live, own patches as acks, bounded memory for a slow client.

#include "delivery/delivery.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>

#include "patches.h"

namespace bridge::delivery {
namespace {

api::Patch patch(std::int64_t version, const std::string& id) {
  api::Patch p = syncd::testing::create_node(id, "n" + id);
  p.set_server_version(version);
  return p;
}

// Calls wait in order until the test answers them.
class FakeUpstream final : public Upstream {
 public:
  std::deque<std::pair<api::GetChangesRequest, Done<api::GetChangesResponse>>> changes;
  std::deque<Done<api::ChannelInfo>> infos;
  std::deque<Done<std::vector<api::SnapshotPage>>> snapshots;
  std::deque<std::pair<api::PushRequest, Done<api::PushResponse>>> pushes;

  void channel_info(api::GetChannelInfoRequest, Done<api::ChannelInfo> done) override {
    infos.push_back(std::move(done));
  }
  void get_changes(api::GetChangesRequest req, Done<api::GetChangesResponse> done) override {
    changes.emplace_back(std::move(req), std::move(done));
  }
  void get_snapshot(api::GetSnapshotRequest, Done<std::vector<api::SnapshotPage>> done) override {
    snapshots.push_back(std::move(done));
  }
  void push(api::PushRequest req, Done<api::PushResponse> done) override { pushes.emplace_back(std::move(req), std::move(done)); }

  // Answers the oldest GetChanges with versions (from, to], has_more as given.
  std::int64_t answer_changes(std::int64_t to, bool more, grpc::Status status = grpc::Status::OK) {
    auto [req, done] = std::move(changes.front());
    changes.pop_front();
    api::GetChangesResponse page;
    for (std::int64_t v = req.from_version() + 1; v <= to; ++v) *page.add_patches() = patch(v, "p" + std::to_string(v));
    page.set_version(std::max(to, req.from_version()));
    page.set_has_more(more);
    done(status, std::move(page));
    return req.from_version();
  }
};

// What the client sees: "page@V+" (has more) / "page@V", "b3", "a:x@3", "fail:CODE".
class RecordingSink final : public Sink {
 public:
  std::vector<std::string> seen;
  std::size_t queue = 0;  // frames "queued"; the test drains them
  bool count_frames = false;

  std::size_t backlog() const override { return queue; }
  bool admitted() override { return true; }
  void joined(const api::ChannelInfo& info) override { add("joined@" + std::to_string(info.head_version())); }
  void page(api::SyncState& s, bool) override {
    add(std::string(s.snapshot() ? "snap" : s.requested() ? "req" : "page") + "@" + std::to_string(s.version()) +
        (s.has_more() ? "+" : "") + "(" + std::to_string(s.patches_size()) + ")");
  }
  void deliver(const Sequencer::Out& out) override {
    if (out.broadcast) return add("b" + std::to_string(out.broadcast->version));
    const char* s = out.ack.status() == api::Ack::ACCEPTED ? "a" : out.ack.status() == api::Ack::IGNORED ? "i" : "r";
    add(std::string(s) + ":" + out.ack.patch_id() + "@" + std::to_string(out.ack.server_version()));
  }
  void request_failed(const grpc::Status& st) override { add("reqfail:" + std::to_string(st.error_code())); }
  void failed(const grpc::Status& st) override { add("fail:" + std::to_string(st.error_code())); }
  void outbox_room() override {}

 private:
  void add(std::string s) {
    seen.push_back(std::move(s));
    if (count_frames) ++queue;
  }
};

struct DeliveryCore : ::testing::Test {
  FakeUpstream up;
  RecordingSink sink;
  std::unique_ptr<Delivery> d;

  void open(std::int64_t since, bool history = true, std::size_t queue_limit = 16) {
    Options o;
    o.channel = "c";
    o.since = since;
    o.history = history;
    o.queue_limit = queue_limit;
    d = std::make_unique<Delivery>(o, up, sink);
  }
  void feed(std::int64_t version, const std::string& id) {
    if (d->inbox().offer(upstream::make_item(patch(version, id))) == FeedInbox::Offer::kOverflow) d->fell_behind();
    d->take_inbox();
  }
};

TEST_F(DeliveryCore, HistoryPagesThenBufferedFeedItemsThenLive) {
  open(2);
  d->feed_ready();
  feed(6, "p6");  // arrives while the log is read: buffered
  ASSERT_EQ(up.changes.size(), 1u);
  EXPECT_EQ(up.answer_changes(4, true), 2);
  EXPECT_EQ(up.answer_changes(5, false), 4);
  feed(7, "p7");
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"page@4+(2)", "page@5(1)", "b6", "b7"}));
}

TEST_F(DeliveryCore, AFeedItemTheLogAlsoReturnedIsSentOnce) {
  open(0);
  d->feed_ready();
  feed(1, "p1");
  feed(2, "p2");
  up.answer_changes(2, false);  // the log already holds 1 and 2
  feed(3, "p3");
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"page@2(2)", "b3"}));
}

TEST_F(DeliveryCore, NoHistoryStartsAtTheHead) {
  open(0, false);
  d->feed_ready();
  ASSERT_EQ(up.infos.size(), 1u);
  api::ChannelInfo info;
  info.set_head_version(9);
  up.infos.front()(grpc::Status::OK, std::move(info));
  feed(10, "p10");
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"joined@9", "b10"}));
}

TEST_F(DeliveryCore, OwnPatchComesBackAsItsAckInItsVersionsPlace) {
  open(0);
  d->feed_ready();
  up.answer_changes(0, false);
  d->submit(patch(0, "mine"));
  ASSERT_EQ(up.pushes.size(), 1u);
  feed(1, "other");
  feed(2, "mine");  // the feed is faster than the Push answer: held
  feed(3, "later");
  api::PushResponse resp;
  auto* ack = resp.add_acks();
  ack->set_patch_id("mine");
  ack->set_status(api::Ack::ACCEPTED);
  ack->set_server_version(2);
  up.pushes.front().second(grpc::Status::OK, std::move(resp));
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"page@0(0)", "b1", "a:mine@2", "b3"}));
}

TEST_F(DeliveryCore, PatchesWaitForTheHistoryBeforeTheyArePushed) {
  open(0);
  d->submit(patch(0, "early"));
  EXPECT_TRUE(up.pushes.empty());
  d->feed_ready();
  up.answer_changes(0, false);
  EXPECT_EQ(up.pushes.size(), 1u);
}

TEST_F(DeliveryCore, APushWithAnUnknownOutcomeFailsTheChannel) {
  open(0);
  d->feed_ready();
  up.answer_changes(0, false);
  d->submit(patch(0, "x"));
  up.pushes.front().second(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"), {});
  EXPECT_EQ(sink.seen.back(), "fail:" + std::to_string(grpc::StatusCode::UNAVAILABLE));
}

TEST_F(DeliveryCore, ASlowClientFallsBehindAndCatchesUpFromTheLogWithoutGapsOrRepeats) {
  open(0, true, 8);
  sink.count_frames = true;
  d->feed_ready();
  up.answer_changes(0, false);  // live at 0; one page frame queued
  for (int v = 1; v <= 20; ++v) feed(v, "p" + std::to_string(v));
  // At the limit the delivery stops taking the feed: 7 broadcasts, then nothing.
  EXPECT_EQ(sink.queue, 8u);
  EXPECT_TRUE(up.changes.empty());
  sink.queue = 0;  // the client reads everything
  d->drained();
  ASSERT_EQ(up.changes.size(), 1u);
  EXPECT_EQ(up.changes.front().first.from_version(), 7);
  up.answer_changes(20, false);
  feed(21, "p21");
  std::vector<std::string> expected{"page@0(0)"};
  for (int v = 1; v <= 21; ++v) expected.push_back("b" + std::to_string(v));
  EXPECT_EQ(sink.seen, expected);
}

TEST_F(DeliveryCore, CompactedHistoryComesAsASnapshotThenTheTail) {
  open(3);
  d->feed_ready();
  up.answer_changes(0, false, grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "compacted"));
  ASSERT_EQ(up.snapshots.size(), 1u);
  std::vector<api::SnapshotPage> pages(2);
  for (auto& p : pages) p.set_version(10);
  *pages[0].add_patches() = patch(10, "s1");
  *pages[1].add_patches() = patch(10, "s2");
  up.snapshots.front()(grpc::Status::OK, std::move(pages));
  ASSERT_EQ(up.changes.size(), 1u);
  EXPECT_EQ(up.changes.front().first.from_version(), 10);
  up.answer_changes(11, false);
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"snap@10+(1)", "page@10+(1)", "page@11(1)"}));
}

TEST_F(DeliveryCore, ANewerSyncRequestReplacesOneNotYetStarted) {
  open(0);
  d->feed_ready();
  up.answer_changes(0, false);
  d->sync_request(0, 0);
  d->sync_request(5, 0);  // the first is running: this one waits, then runs
  ASSERT_EQ(up.changes.size(), 1u);
  up.answer_changes(3, true);  // replaced: its continuation is dropped
  ASSERT_EQ(up.changes.size(), 1u);
  EXPECT_EQ(up.answer_changes(6, false), 5);
  EXPECT_EQ(sink.seen, (std::vector<std::string>{"page@0(0)", "req@3+(3)", "req@6(1)"}));
}

TEST_F(DeliveryCore, NothingIsSentOrAskedAfterStop) {
  open(0);
  d->feed_ready();
  d->stop();
  up.answer_changes(5, false);
  feed(6, "p6");
  EXPECT_TRUE(sink.seen.empty());
}

TEST(FeedInbox, OverflowDropsWhatItHoldsAndEverythingUntilResumed) {
  FeedInbox inbox(3);
  const auto offer = [&](std::int64_t v) { return inbox.offer(upstream::make_item(patch(v, "p" + std::to_string(v)))); };
  EXPECT_EQ(offer(1), FeedInbox::Offer::kFirst);
  EXPECT_EQ(offer(2), FeedInbox::Offer::kQueued);
  EXPECT_EQ(offer(3), FeedInbox::Offer::kQueued);
  EXPECT_EQ(offer(4), FeedInbox::Offer::kOverflow);  // reported once
  EXPECT_EQ(offer(5), FeedInbox::Offer::kDropped);
  EXPECT_TRUE(inbox.take().empty());
  inbox.resume();
  EXPECT_EQ(offer(6), FeedInbox::Offer::kFirst);
  auto items = inbox.take();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items.front()->version, 6);
  inbox.skip();
  EXPECT_EQ(offer(7), FeedInbox::Offer::kDropped);
}

}  // namespace
}  // namespace bridge::delivery
