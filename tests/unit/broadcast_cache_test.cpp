// A broadcast is serialized once per channel version.

#include "ws/broadcast_cache.h"

#include <gtest/gtest.h>

namespace bridge {
namespace {

api::Patch patch(std::int64_t version) {
  api::Patch p;
  p.set_id("p" + std::to_string(version));
  p.set_op("opaque");
  p.set_server_version(version);
  return p;
}

TEST(BroadcastCache, SameChannelVersionSharesOneBuffer) {
  BroadcastCache cache(4);
  auto a = cache.frame("room", patch(1));
  auto b = cache.frame("room", patch(1));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), cache.frame("other", patch(1)).get());
  EXPECT_NE(a.get(), cache.frame("room", patch(2)).get());
  EXPECT_NE(a->find("\"serverVersion\":1"), std::string::npos);
}

TEST(BroadcastCache, KeepsOnlyTheNewestEntries) {
  BroadcastCache cache(2);
  auto first = cache.frame("room", patch(1));
  cache.frame("room", patch(2));
  cache.frame("room", patch(3));
  auto again = cache.frame("room", patch(1));  // evicted: encoded anew, same bytes
  EXPECT_NE(first.get(), again.get());
  EXPECT_EQ(*first, *again);
}

}  // namespace
}  // namespace bridge
