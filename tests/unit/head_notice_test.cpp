// NOTIFY payloads between syncd instances.

#include <gtest/gtest.h>

#include "engine/head_listener.h"

namespace syncd::engine {
namespace {

TEST(HeadNotice, ParsesOtherInstancesLines) {
  const auto n = parse_heads("abc\nroom-1 42\nuser:7 9000000000", "me");
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].channel, "room-1");
  EXPECT_EQ(n[0].head, 42);
  EXPECT_EQ(n[1].channel, "user:7");
  EXPECT_EQ(n[1].head, 9000000000);
}

TEST(HeadNotice, SkipsOwnAndMalformed) {
  EXPECT_TRUE(parse_heads("me\nroom 1", "me").empty());
  EXPECT_TRUE(parse_heads("no newline", "me").empty());
  const auto n = parse_heads("x\nroom\nroom 1x\n 5\nok 3", "me");
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].channel, "ok");
}

}  // namespace
}  // namespace syncd::engine
