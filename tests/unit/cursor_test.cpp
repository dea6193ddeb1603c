// engine::Cursor: the gate every delivered patch passes.

#include "engine/cursor.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace syncd::engine {
namespace {

TEST(Cursor, TakesOnlyTheNextVersion) {
  Cursor c(10);
  EXPECT_FALSE(c.behind());
  EXPECT_FALSE(c.advance(10));  // already had it
  EXPECT_FALSE(c.advance(12));  // gap: behind now
  EXPECT_TRUE(c.behind());
  EXPECT_EQ(c.known_head(), 12);
  EXPECT_TRUE(c.advance(11));
  EXPECT_TRUE(c.advance(12));
  EXPECT_FALSE(c.behind());
  EXPECT_EQ(c.position(), 12);
}

TEST(Cursor, NoteHeadNeverMovesBack) {
  Cursor c(5);
  c.note_head(9);
  c.note_head(7);
  EXPECT_EQ(c.known_head(), 9);
  EXPECT_TRUE(c.behind());
}

// Live patches and log pages arrive interleaved, duplicated and out of
// order; whatever passes the gate is exactly start+1..head, in order.
TEST(Cursor, MixedLiveAndLogDeliveryIsGapFreeAndOnce) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    const std::int64_t head = 1 + rng() % 300;
    Cursor c(0);
    std::vector<std::int64_t> delivered;
    std::int64_t published = 0;
    while (c.position() < head) {
      if (published < head && rng() % 2) {
        ++published;                          // a live commit
        if (rng() % 3) {
          if (c.advance(published)) delivered.push_back(published);
        } else {
          c.note_head(published);             // queue full: dropped
        }
      } else if (c.behind()) {
        // A page from the log: from position+1, some length, maybe stale.
        const std::int64_t from = c.position() + 1 - static_cast<std::int64_t>(rng() % 3);
        const std::int64_t to = std::min<std::int64_t>(c.known_head(), from + rng() % 20);
        for (std::int64_t v = std::max<std::int64_t>(from, 1); v <= to; ++v) {
          if (c.advance(v)) delivered.push_back(v);
        }
      } else if (published == head) {
        c.note_head(head);
      }
    }
    ASSERT_EQ(static_cast<std::int64_t>(delivered.size()), head);
    for (std::size_t i = 0; i < delivered.size(); ++i) ASSERT_EQ(delivered[i], static_cast<std::int64_t>(i + 1));
  }
}

}  // namespace
}  // namespace syncd::engine
