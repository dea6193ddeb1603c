// Sessions opened with `batch`: messages that queue behind the one being
// written come together in one SessionResponse{batch}, in order and never
// nested; sessions that did not ask never get a batch.

#include <gtest/gtest.h>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {
namespace {

// What a raw session read: the versions of its broadcasts in order, the
// batches it got and their sizes.
struct Received {
  std::vector<std::int64_t> versions;
  std::vector<int> batch_sizes;
  bool nested = false;
  bool opened = false;
};

void take(const api::SessionResponse& r, bool in_batch, Received* out) {
  switch (r.kind_case()) {
    case api::SessionResponse::kOpened:
      out->opened = true;
      break;
    case api::SessionResponse::kBroadcast:
      out->versions.push_back(r.broadcast().server_version());
      break;
    case api::SessionResponse::kSyncState:
      for (const auto& p : r.sync_state().patches()) out->versions.push_back(p.server_version());
      break;
    case api::SessionResponse::kBatch:
      if (in_batch) out->nested = true;
      out->batch_sizes.push_back(r.batch().responses_size());
      for (const auto& each : r.batch().responses()) take(each, true, out);
      break;
    default:
      break;
  }
}

TEST(Batch, MessagesQueuedBehindAWriteComeTogetherInOrder) {
  TestDatabase db;
  Syncd server(db.url());
  const std::string channel = "batched";

  // A reader that reads nothing until the writer is done: what syncd owes
  // it queues behind a write its transport cannot take.
  auto stub = server.stub();
  grpc::ClientContext ctx;
  auto reader = stub->Session(&ctx);
  api::SessionRequest open;
  open.mutable_open()->set_channel(channel);
  open.mutable_open()->set_batch(true);
  ASSERT_TRUE(reader->Write(open));

  SessionClient writer(server, channel);
  ASSERT_TRUE(writer.wait_opened());
  constexpr int kPatches = 300;
  const std::string blob(4000, 'x');  // 1.2 MB in all: more than the stream's flow-control window
  for (int i = 0; i < kPatches; ++i) {
    ASSERT_TRUE(writer.send(create_node("p" + std::to_string(i), "n" + std::to_string(i), "Blob",
                                        R"({"blob":")" + blob + R"("})")));
  }
  for (int i = 0; i < kPatches; ++i) {
    auto ack = writer.ack("p" + std::to_string(i), std::chrono::seconds(60));
    ASSERT_TRUE(ack) << i;
    ASSERT_EQ(ack->status(), api::Ack::ACCEPTED) << ack->DebugString();
  }

  Received got;
  api::SessionResponse r;
  while (static_cast<int>(got.versions.size()) < kPatches && reader->Read(&r)) take(r, false, &got);
  ctx.TryCancel();

  EXPECT_TRUE(got.opened);
  EXPECT_EQ(got.versions, iota(1, kPatches));  // each once, in order, whether batched or not
  EXPECT_FALSE(got.nested);
  ASSERT_FALSE(got.batch_sizes.empty()) << "nothing came batched, though the reader read nothing for a while";
  for (int n : got.batch_sizes) EXPECT_GE(n, 2);

  // The writer did not ask for batches: its acks came one per message.
  for (const api::SessionResponse& each : writer.responses()) {
    EXPECT_NE(each.kind_case(), api::SessionResponse::kBatch);
  }
}

}  // namespace
}  // namespace syncd::testing
