// A broadcast is serialized once per channel version.

#include "ws/broadcast_cache.h"

#include <gtest/gtest.h>

namespace bridge {
namespace {

// The cache's arguments for an encoded patch at `version`.
struct Encoded {
  std::int64_t version;
  std::string bytes;
};
Encoded patch(std::int64_t version) {
  api::Patch p;
  p.set_id("p" + std::to_string(version));
  p.set_op("opaque");
  p.set_server_version(version);
  return {version, p.SerializeAsString()};
}
std::shared_ptr<const std::string> frame(BroadcastCache& cache, const std::string& channel, const Encoded& e) {
  return cache.frame(channel, e.version, e.bytes);
}

TEST(BroadcastCache, SameChannelVersionSharesOneBuffer) {
  BroadcastCache cache(4);
  auto a = frame(cache, "room", patch(1));
  auto b = frame(cache, "room", patch(1));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), frame(cache, "other", patch(1)).get());
  EXPECT_NE(a.get(), frame(cache, "room", patch(2)).get());
  EXPECT_NE(a->find("\"serverVersion\":1"), std::string::npos);
}

TEST(BroadcastCache, KeepsOnlyTheNewestEntries) {
  BroadcastCache cache(2);
  auto first = frame(cache, "room", patch(1));
  frame(cache, "room", patch(2));
  frame(cache, "room", patch(3));
  auto again = frame(cache, "room", patch(1));  // evicted: encoded anew, same bytes
  EXPECT_NE(first.get(), again.get());
  EXPECT_EQ(*first, *again);
}

TEST(BroadcastCache, BytesThatDoNotDecodeGiveNoFrame) {
  BroadcastCache cache(2);
  EXPECT_EQ(cache.frame("room", 1, "\xff\xff\xff"), nullptr);
}

}  // namespace
}  // namespace bridge
