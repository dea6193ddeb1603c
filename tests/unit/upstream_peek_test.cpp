// The bridge recognises a broadcast in syncd's bytes without decoding it.

#include "upstream/peek.h"

#include <gtest/gtest.h>

#include "api/messages.h"

namespace bridge::upstream {
namespace {

TEST(PeekBroadcast, FindsThePatchBytesAndVersion) {
  api::SessionResponse msg;
  api::Patch* p = msg.mutable_broadcast();
  p->set_id("p1");
  p->set_op("create_node");
  (*p->mutable_data()->mutable_fields())["label"].set_string_value("Person");
  p->set_server_version(4242);
  const std::string bytes = msg.SerializeAsString();
  auto peeked = peek_broadcast(bytes);
  ASSERT_TRUE(peeked);
  EXPECT_EQ(peeked->version, 4242);
  api::Patch back;
  ASSERT_TRUE(back.ParseFromArray(peeked->patch.data(), static_cast<int>(peeked->patch.size())));
  EXPECT_EQ(back.SerializeAsString(), p->SerializeAsString());
}

TEST(PeekBroadcast, IgnoresOtherMessagesAndBadBytes) {
  api::SessionResponse ack;
  ack.mutable_ack()->set_patch_id("p1");
  ack.mutable_ack()->set_server_version(3);
  EXPECT_FALSE(peek_broadcast(ack.SerializeAsString()));
  api::SessionResponse unversioned;
  unversioned.mutable_broadcast()->set_id("p1");
  EXPECT_FALSE(peek_broadcast(unversioned.SerializeAsString())) << "a broadcast always has its version";
  std::string truncated = [] {
    api::SessionResponse m;
    m.mutable_broadcast()->set_id("p1");
    m.mutable_broadcast()->set_server_version(9);
    return m.SerializeAsString();
  }();
  truncated.pop_back();
  EXPECT_FALSE(peek_broadcast(truncated));
  EXPECT_FALSE(peek_broadcast(""));
  EXPECT_FALSE(peek_broadcast("\x1a\x05\xff\xff"));
}

}  // namespace
}  // namespace bridge::upstream
