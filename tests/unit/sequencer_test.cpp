// The sequencer puts a socket's feed and its Push answers into one order:
// every version once, others' patches as broadcasts, its own as acks.

#include "delivery/sequencer.h"

#include <gtest/gtest.h>

namespace bridge {
namespace {

upstream::Item item(std::int64_t version, const std::string& id) {
  api::Patch p;
  p.set_id(id);
  p.set_op("create_node");
  p.set_node_id("n" + id);
  p.set_server_version(version);
  return upstream::make_item(std::move(p));
}

api::Ack ack(const std::string& id, api::Ack::Status status, std::int64_t version) {
  api::Ack a;
  a.set_patch_id(id);
  a.set_status(status);
  a.set_server_version(version);
  return a;
}

// "b3" for a broadcast of version 3, "a:x@3" for an ack of x at 3 (status initial).
std::vector<std::string> names(const std::vector<Sequencer::Out>& outs) {
  std::vector<std::string> out;
  for (const auto& o : outs) {
    if (o.broadcast) {
      out.push_back("b" + std::to_string(o.broadcast->version));
    } else {
      const char* s = o.ack.status() == api::Ack::ACCEPTED ? "a" : o.ack.status() == api::Ack::IGNORED ? "i" : "r";
      out.push_back(std::string(s) + ":" + o.ack.patch_id() + "@" + std::to_string(o.ack.server_version()));
    }
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Sequencer, OthersPatchesPassInOrderAndOldOnesAreDropped) {
  Sequencer seq(2);
  std::vector<Sequencer::Out> out;
  seq.patch(item(1, "x"), out);
  seq.patch(item(2, "y"), out);
  seq.patch(item(3, "z"), out);
  seq.patch(item(3, "z"), out);
  seq.patch(item(4, "w"), out);
  EXPECT_EQ(names(out), (V{"b3", "b4"}));
  EXPECT_EQ(seq.cursor(), 4);
}

TEST(Sequencer, AnAckThatArrivesFirstWaitsForItsTurnAndReplacesTheBroadcast) {
  Sequencer seq(0);
  std::vector<Sequencer::Out> out;
  seq.sent("mine");
  seq.answered(ack("mine", api::Ack::ACCEPTED, 2), out);
  EXPECT_TRUE(out.empty());  // version 1 has not been seen yet
  seq.patch(item(1, "other"), out);
  seq.patch(item(2, "mine"), out);
  seq.patch(item(3, "later"), out);
  EXPECT_EQ(names(out), (V{"b1", "a:mine@2", "b3"}));
}

TEST(Sequencer, APatchOfOursThatArrivesFirstIsHeldWithWhatFollowsUntilTheAnswer) {
  Sequencer seq(0);
  std::vector<Sequencer::Out> out;
  seq.sent("mine");
  seq.patch(item(1, "mine"), out);
  seq.patch(item(2, "other"), out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(seq.cursor(), 0);
  seq.answered(ack("mine", api::Ack::ACCEPTED, 1), out);
  EXPECT_EQ(names(out), (V{"a:mine@1", "b2"}));
  EXPECT_EQ(seq.cursor(), 2);
  EXPECT_EQ(seq.unanswered(), 0u);
}

TEST(Sequencer, ADuplicateAnsweredIgnoredIsSomeoneElsesPatch) {
  // Another connection sent the same id first: its patch is a broadcast here.
  Sequencer seq(0);
  std::vector<Sequencer::Out> out;
  seq.sent("dup");
  seq.patch(item(1, "dup"), out);
  EXPECT_TRUE(out.empty());
  seq.answered(ack("dup", api::Ack::IGNORED, 1), out);
  EXPECT_EQ(names(out), (V{"i:dup@1", "b1"}));
}

TEST(Sequencer, RejectedAcksGoOutAtOnce) {
  Sequencer seq(5);
  std::vector<Sequencer::Out> out;
  seq.sent("bad");
  seq.answered(ack("bad", api::Ack::REJECTED, 5), out);
  seq.patch(item(6, "bad"), out);  // someone else's patch with that id later
  EXPECT_EQ(names(out), (V{"r:bad@5", "b6"}));
}

TEST(Sequencer, AnAbandonedPatchReleasesWhatWasHeld) {
  Sequencer seq(0);
  std::vector<Sequencer::Out> out;
  seq.sent("lost");
  seq.patch(item(1, "lost"), out);
  seq.patch(item(2, "next"), out);
  seq.abandoned("lost", out);
  EXPECT_EQ(names(out), (V{"b1", "b2"}));
}

TEST(Sequencer, TheSameIdSentTwiceNeedsTwoAnswers) {
  Sequencer seq(0);
  std::vector<Sequencer::Out> out;
  seq.sent("p");
  seq.sent("p");
  seq.answered(ack("p", api::Ack::ACCEPTED, 1), out);
  seq.patch(item(1, "p"), out);
  EXPECT_EQ(names(out), (V{"a:p@1"}));
  seq.patch(item(2, "q"), out);
  EXPECT_EQ(names(out), (V{"a:p@1", "b2"}));
  seq.answered(ack("p", api::Ack::IGNORED, 1), out);
  EXPECT_EQ(names(out), (V{"a:p@1", "b2", "i:p@1"}));
}

TEST(Sequencer, ManyInterleavedWritesComeOutAsOneGapFreeOrder) {
  // Ours are the even versions; answers arrive in batches, some before the
  // feed and some after. Every version appears exactly once, in order.
  Sequencer seq(0);
  std::vector<Sequencer::Out> out;
  for (int v = 1; v <= 200; ++v) {
    if (v % 2 == 0) seq.sent("m" + std::to_string(v));
  }
  int answered = 0;
  for (int v = 1; v <= 200; ++v) {
    if (v % 20 == 0) {
      for (; answered < std::min(v + 10, 200); ++answered) {
        const int w = answered + 1;
        if (w % 2 == 0) seq.answered(ack("m" + std::to_string(w), api::Ack::ACCEPTED, w), out);
      }
    }
    seq.patch(item(v, (v % 2 == 0 ? "m" : "o") + std::to_string(v)), out);
  }
  ASSERT_EQ(out.size(), 200u);
  for (int v = 1; v <= 200; ++v) {
    const auto& o = out[v - 1];
    if (v % 2 == 0) {
      EXPECT_FALSE(o.broadcast) << v;
      EXPECT_EQ(o.ack.server_version(), v);
    } else {
      ASSERT_TRUE(o.broadcast) << v;
      EXPECT_EQ(o.broadcast->version, v);
    }
  }
  EXPECT_EQ(seq.unanswered(), 0u);
}

}  // namespace
}  // namespace bridge
