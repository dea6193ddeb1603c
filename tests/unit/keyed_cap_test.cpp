// Per-key caps on streams and sockets: a place is given back whatever way
// its holder ends, and uncapped keys are never refused.

#include "auth/keyed_cap.h"

#include <gtest/gtest.h>

#include <vector>

namespace syncd::auth {
namespace {

TEST(KeyedCap, RefusesPastTheLimitPerKeyAndGivesPlacesBack) {
  KeyedCap cap(2);
  auto a1 = cap.take("10.0.0.1");
  auto a2 = cap.take("10.0.0.1");
  EXPECT_TRUE(a1);
  EXPECT_TRUE(a2);
  EXPECT_FALSE(cap.take("10.0.0.1"));
  EXPECT_TRUE(cap.take("10.0.0.2"));  // another key has its own places (and gives it back at once)
  a1 = {};
  auto a3 = cap.take("10.0.0.1");
  EXPECT_TRUE(a3);
  KeyedCap::Hold moved = std::move(a3);
  EXPECT_TRUE(moved);
  EXPECT_FALSE(cap.take("10.0.0.1"));
  { auto gone = std::move(moved); }
  EXPECT_TRUE(cap.take("10.0.0.1"));
}

TEST(KeyedCap, ZeroMeansNoLimitAndUncappedKeysAreNeverRefused) {
  KeyedCap none(0);
  KeyedCap one(1, {"sync-bridge"});
  std::vector<KeyedCap::Hold> holds;
  for (int i = 0; i < 10'000; ++i) {
    holds.push_back(none.take("k"));
    holds.push_back(one.take("sync-bridge"));
  }
  for (const auto& h : holds) EXPECT_TRUE(h);
  EXPECT_TRUE(one.take("alice"));
  auto alice = one.take("alice");
  EXPECT_FALSE(one.take("alice"));
}

}  // namespace
}  // namespace syncd::auth
