// Operating a channel over years: retention, exactly-once after compaction
// and restarts, opaque channels, deletion, bad requests, and several
// instances compacting one database.

#include <gtest/gtest.h>

#include <regex>

#include "channel_calls.h"

namespace syncd::testing {
namespace {

std::vector<api::Patch> nodes(const std::string& prefix, int from, int to) {
  std::vector<api::Patch> out;
  for (int i = from; i <= to; ++i) out.push_back(create_node(prefix + std::to_string(i), prefix + "n" + std::to_string(i)));
  return out;
}

grpc::Status configure(const Syncd& s, api::ConfigureChannelRequest req, api::ChannelInfo* out = nullptr) {
  api::ChannelInfo info;
  grpc::ClientContext ctx;
  const grpc::Status st = s.stub()->ConfigureChannel(&ctx, req, &info);
  if (out) *out = info;
  return st;
}

grpc::Status delete_channel(const Syncd& s, const std::string& channel) {
  api::DeleteChannelRequest req;
  req.set_channel(channel);
  api::DeleteChannelResponse resp;
  grpc::ClientContext ctx;
  return s.stub()->DeleteChannel(&ctx, req, &resp);
}

// Waits until `pred` holds, polling; false after `timeout`.
template <typename Pred>
bool eventually(Pred pred, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(ChannelAdmin, BadRequestsGetClearErrorsAndChangeNothing) {
  TestDatabase db;
  Syncd s(db.url());
  push(s, "doc", nodes("p", 1, 10));
  const auto before = db.query("SELECT head, compacted_through, conflict_policy, retain_versions, retain_seconds "
                               "FROM channels");

  grpc::Status st = compact(s, "doc", -1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  st = compact(s, "doc", 11);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("past the head (10)"), std::string::npos) << st.error_message();
  st = compact(s, "nosuch", 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  st = compact(s, "bad name!", 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  st = delete_channel(s, "nosuch");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();

  for (auto [versions, seconds] : {std::pair<std::int64_t, std::int64_t>{-1, 0}, {0, -5},
                                   {std::int64_t{1} << 60, 0}, {0, std::int64_t{1} << 40}}) {
    api::ConfigureChannelRequest req;
    req.set_channel("doc");
    req.set_retain_versions(versions);
    req.set_retain_seconds(seconds);
    st = configure(s, req);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << versions << " " << seconds;
    EXPECT_NE(st.error_message().find("retain_"), std::string::npos) << st.error_message();
  }
  api::ConfigureChannelRequest bad_policy;
  bad_policy.set_channel("doc");
  bad_policy.set_conflict_policy("whatever");
  bad_policy.set_retain_versions(5);
  EXPECT_EQ(configure(s, bad_policy).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(db.query("SELECT head, compacted_through, conflict_policy, retain_versions, retain_seconds FROM channels"),
            before);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "10");
  EXPECT_EQ(verify_log_and_state(db, "doc"), "");
}

TEST(ChannelAdmin, RetentionSettingsAreKeptAndReported) {
  TestDatabase db;
  Syncd s(db.url(), {"--retain-seconds", "86400"});
  api::ConfigureChannelRequest req;
  req.set_channel("doc");
  req.set_retain_versions(100);
  api::ChannelInfo out;
  ASSERT_TRUE(configure(s, req, &out).ok());
  EXPECT_EQ(out.retain_versions(), 100);
  EXPECT_EQ(out.retain_seconds(), 86400);  // the server's default
  EXPECT_EQ(out.conflict_policy(), "last_writer_wins");
  // Changing the policy alone keeps the retention, and the reverse.
  api::ConfigureChannelRequest policy;
  policy.set_channel("doc");
  policy.set_conflict_policy("reject_stale");
  ASSERT_TRUE(configure(s, policy, &out).ok());
  EXPECT_EQ(out.retain_versions(), 100);
  EXPECT_EQ(out.conflict_policy(), "reject_stale");
  EXPECT_EQ(info(s, "doc").retain_versions(), 100);
}

TEST(ChannelAdmin, AResentPatchIsIgnoredAfterItsRowWasCompactedAcrossARestart) {
  TestDatabase db;
  auto s = std::make_unique<Syncd>(db.url());
  const auto first = push(*s, "doc", nodes("p", 1, 50));
  for (const auto& a : first.acks()) ASSERT_EQ(a.status(), api::Ack::ACCEPTED);
  ASSERT_TRUE(compact(*s, "doc", 50).ok());
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "0");
  EXPECT_EQ(db.query_value("SELECT count(*) FROM compacted_ids"), "50");
  EXPECT_EQ(s->terminate(), 0);
  s = std::make_unique<Syncd>(db.url());

  // The same ids again, mixed with new ones, in one batch.
  std::vector<api::Patch> again = nodes("p", 1, 50);
  auto fresh = nodes("q", 1, 5);
  again.insert(again.begin() + 10, fresh.begin(), fresh.end());
  const auto resent = push(*s, "doc", again);
  std::int64_t next = 51;
  for (int i = 0; i < resent.acks_size(); ++i) {
    const auto& a = resent.acks(i);
    if (a.patch_id()[0] == 'q') {
      EXPECT_EQ(a.status(), api::Ack::ACCEPTED) << a.DebugString();
      EXPECT_EQ(a.server_version(), next++);
    } else {
      EXPECT_EQ(a.status(), api::Ack::IGNORED) << a.DebugString();
      EXPECT_EQ(a.server_version(), std::stoll(a.patch_id().substr(1)));
    }
  }
  EXPECT_EQ(info(*s, "doc").head_version(), 55);
}

TEST(ChannelAdmin, PastTheDedupWindowACompactedIdIsNew) {
  TestDatabase db;
  Syncd s(db.url(), {"--dedup-window", "0"});
  push(s, "doc", {create_node("p1", "a")});
  ASSERT_TRUE(compact(s, "doc", 1).ok());
  EXPECT_EQ(db.query_value("SELECT count(*) FROM compacted_ids"), "0");
  const auto again = push(s, "doc", {patch_from_json(R"({"id":"p1","clientId":"c1","op":"update_node","nodeId":"a","data":{"properties":{"x":1}}})")});
  EXPECT_EQ(again.acks(0).status(), api::Ack::ACCEPTED);
  EXPECT_EQ(again.acks(0).server_version(), 2);
}

TEST(ChannelAdmin, OpaqueHistoryIsKeptUnlessForced) {
  TestDatabase db;
  Syncd s(db.url(), {"--compact-interval", "1", "--retain-versions", "1"});
  std::vector<api::Patch> batch;
  for (int i = 1; i <= 5; ++i) {
    batch.push_back(patch_from_json(R"({"id":"o)" + std::to_string(i) +
                                    R"(","clientId":"site","op":"opaque","data":{"changes":[1,2,3]}})"));
  }
  push(s, "crdt", batch);
  api::CompactResponse out;
  const grpc::Status st = compact(s, "crdt", 3, false, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("opaque"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("force"), std::string::npos) << st.error_message();
  // Retention refuses it too, and says so in the log.
  ASSERT_TRUE(eventually([&] { return s.log().find("channel crdt not compacted") != std::string::npos; }));
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "5");
  // An operator sees that retention runs and that a channel stays past its rule.
  ASSERT_TRUE(eventually([&] { return metric_value(s, "syncd_retention_uncompacted_channels") == 1; }));
  EXPECT_GT(metric_value(s, "syncd_retention_pass_timestamp_seconds"), 1.7e9);
  ASSERT_TRUE(compact(s, "crdt", 3, true, &out).ok());
  EXPECT_EQ(out.compacted_through(), 3);
  EXPECT_EQ(db.query_value("SELECT min(version) FROM patches"), "4");
}

TEST(ChannelAdmin, DeletingAChannelClosesItsStreamsOnEveryInstanceAndAWriteStartsAgainAtOne) {
  TestDatabase db;
  Syncd a(db.url());
  Syncd b(db.url());
  push(a, "doc", nodes("p", 1, 20));
  ASSERT_TRUE(compact(a, "doc", 10).ok());
  SessionClient on_a(a, "doc", 0);
  SessionClient on_b(b, "doc", 0);
  ASSERT_TRUE(on_a.wait_opened());
  ASSERT_TRUE(on_b.wait_opened());
  grpc::ClientContext watch_ctx;
  api::WatchRequest wreq;
  wreq.set_channel("doc");
  auto watch = b.stub()->Watch(&watch_ctx, wreq);

  api::DeleteChannelRequest req;
  req.set_channel("doc");
  api::DeleteChannelResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(a.stub()->DeleteChannel(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.head_version(), 20);

  for (SessionClient* c : {&on_a, &on_b}) {
    const grpc::Status st = c->finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
    EXPECT_NE(st.error_message().find("deleted"), std::string::npos) << st.error_message();
  }
  api::Patch p;
  while (watch->Read(&p)) {
  }
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  for (const char* table : {"channels", "patches", "nodes", "edges", "compacted_ids"}) {
    EXPECT_EQ(db.query_value(std::string("SELECT count(*) FROM ") + table), "0") << table;
  }
  // Both instances had the channel's row id cached; a write recreates it.
  for (const Syncd* s : {&a, &b}) {
    const std::string id = s == &a ? "again-a" : "again-b";
    const auto acks = push(*s, "doc", {create_node(id, id)});
    EXPECT_EQ(acks.acks(0).status(), api::Ack::ACCEPTED) << acks.acks(0).DebugString();
  }
  EXPECT_EQ(info(a, "doc").head_version(), 2);
  EXPECT_EQ(info(a, "doc").compacted_through(), 0);
  EXPECT_EQ(verify_log_and_state(db, "doc"), "");
}

// Two instances on one database, retention on: each version is compacted
// exactly once (by one of them), and readers on both stay gap-free.
TEST(ChannelAdmin, TwoInstancesApplyRetentionOnceAndReadersStayGapFree) {
  TestDatabase db;
  const std::vector<std::string> flags{"--compact-interval", "1", "--compact-batch", "5"};
  Syncd a(db.url(), flags);
  Syncd b(db.url(), flags);
  api::ConfigureChannelRequest req;
  req.set_channel("doc");
  req.set_retain_versions(10);
  ASSERT_TRUE(configure(a, req).ok());
  SessionClient reader_a(a, "doc", 0);
  SessionClient reader_b(b, "doc", 0);
  ASSERT_TRUE(reader_a.wait_opened());
  ASSERT_TRUE(reader_b.wait_opened());

  for (int round = 0; round < 20; ++round) {
    push(round % 2 ? a : b, "doc", nodes("r" + std::to_string(round) + "-", 1, 15));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // pacing, so passes land between writes
  }
  const std::int64_t head = info(a, "doc").head_version();
  ASSERT_EQ(head, 300);
  ASSERT_TRUE(eventually([&] { return info(b, "doc").compacted_through() == head - 10; }))
      << info(b, "doc").compacted_through();
  for (SessionClient* r : {&reader_a, &reader_b}) {
    ASSERT_TRUE(r->wait_for([&](const auto& rs) { return !versions_in(rs).empty() && versions_in(rs).back() == head; }));
    EXPECT_EQ(r->delivered_versions(), iota(1, head));
  }
  // The ranges both logs report cover 1..head-10, each version once. A
  // compaction's line is logged just after its commit: wait for the last.
  const std::regex line("compacted channel doc versions (\\d+)-(\\d+)");
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  const auto logged_ranges = [&] {
    ranges.clear();
    for (const Syncd* s : {&a, &b}) {
      const std::string log = s->log();
      for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
        ranges.emplace_back(std::stoll((*it)[1]), std::stoll((*it)[2]));
      }
    }
    std::sort(ranges.begin(), ranges.end());
    return !ranges.empty() && ranges.back().second == head - 10;
  };
  EXPECT_TRUE(eventually(logged_ranges));
  std::int64_t next = 1;
  for (const auto& [from, to] : ranges) {
    EXPECT_EQ(from, next) << "ranges overlap or leave a gap";
    next = to + 1;
  }
  EXPECT_EQ(next, head - 10 + 1);
}

}  // namespace
}  // namespace syncd::testing
