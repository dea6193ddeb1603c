// Per-address and per-subject socket caps: a place is given back whatever
// way its holder ends.

#include "ws/socket_caps.h"

#include <gtest/gtest.h>

#include <vector>

namespace bridge {
namespace {

TEST(SocketCap, RefusesPastTheLimitPerKeyAndGivesPlacesBack) {
  SocketCap cap(2);
  auto a1 = cap.take("10.0.0.1");
  auto a2 = cap.take("10.0.0.1");
  EXPECT_TRUE(a1);
  EXPECT_TRUE(a2);
  EXPECT_FALSE(cap.take("10.0.0.1"));
  EXPECT_TRUE(cap.take("10.0.0.2"));  // another key has its own places (and gives it back at once)
  a1 = {};
  auto a3 = cap.take("10.0.0.1");
  EXPECT_TRUE(a3);
  SocketCap::Hold moved = std::move(a3);
  EXPECT_TRUE(moved);
  EXPECT_FALSE(cap.take("10.0.0.1"));
  { auto gone = std::move(moved); }
  EXPECT_TRUE(cap.take("10.0.0.1"));
}

TEST(SocketCap, ZeroMeansNoLimit) {
  SocketCap cap(0);
  std::vector<SocketCap::Hold> holds;
  for (int i = 0; i < 10'000; ++i) holds.push_back(cap.take("k"));
  for (const auto& h : holds) EXPECT_TRUE(h);
}

}  // namespace
}  // namespace bridge
