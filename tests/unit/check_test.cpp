// check_shape: what is refused before a patch is queued for commit.

#include "graph/check.h"

#include <gtest/gtest.h>

#include "patches.h"

namespace syncd::graph {
namespace {

using testing::create_node;
using testing::patch_from_json;

std::string code_of(const std::string& json, Limits limits = {}) {
  auto r = check_shape(patch_from_json(json), limits);
  return r ? r->code + ": " + r->reason : "ok";
}

TEST(Check, WellFormedPatchesPass) {
  EXPECT_EQ(code_of(R"({"id":"p1","clientId":"c","op":"create_node","nodeId":"n1","data":{"label":"Person","properties":{"name":"x"}}})"), "ok");
  EXPECT_EQ(code_of(R"({"id":"p1","op":"createEdge","edgeId":"e","data":{"label":"K","fromNodeId":"a","toNodeId":"b"}})"), "ok");
  EXPECT_EQ(code_of(R"({"id":"p1","op":"set_property","targetType":"edge","targetId":"e","propertyKey":"w","propertyValue":null})"), "ok");
  EXPECT_EQ(code_of(R"({"id":"p1","op":"opaque","data":{"anything":[1,{"x":"y"}]}})"), "ok");
}

TEST(Check, RefusesMissingOrBadIds) {
  EXPECT_EQ(code_of(R"({"op":"create_node","nodeId":"n","data":{"label":"L"}})").substr(0, 13), "invalid_patch");
  EXPECT_EQ(code_of(R"({"id":")" + std::string(129, 'x') + R"(","op":"opaque"})").substr(0, 13), "invalid_patch");
  EXPECT_EQ(code_of("{\"id\":\"a\\u0001b\",\"op\":\"opaque\"}").substr(0, 13), "invalid_patch");
  EXPECT_EQ(code_of(R"({"id":"p","op":"create_node","data":{"label":"L"}})").substr(0, 13), "invalid_patch");
  EXPECT_EQ(code_of(R"({"id":"p","op":"delete_edge"})").substr(0, 13), "invalid_patch");
}

TEST(Check, RefusesUnknownOps) {
  const std::string r = code_of(R"({"id":"p","op":"drop_database"})");
  EXPECT_EQ(r.substr(0, 13), "invalid_patch");
  EXPECT_NE(r.find("drop_database"), std::string::npos);
  EXPECT_EQ(code_of(R"({"id":"p","op":""})").substr(0, 13), "invalid_patch");
}

TEST(Check, LabelsAndKeysMustBeIdentifiers) {
  EXPECT_NE(code_of(R"({"id":"p","op":"create_node","nodeId":"n","data":{"label":"Person; DROP TABLE x"}})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"create_node","nodeId":"n","data":{"label":"1abc"}})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"create_node","nodeId":"n","data":{"label":"L","properties":{"bad key":1}}})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"set_property","targetType":"node","targetId":"n","propertyKey":"a-b","propertyValue":1})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"create_node","nodeId":"n","data":{"label":")" + std::string(65, 'a') + R"("}})"), "ok");
  EXPECT_EQ(code_of(R"({"id":"p","op":"create_node","nodeId":"n","data":{"label":"_a9"}})"), "ok");
}

TEST(Check, TargetTypeAndValueRequired) {
  EXPECT_NE(code_of(R"({"id":"p","op":"set_property","targetType":"graph","targetId":"n","propertyKey":"a","propertyValue":1})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"set_property","targetType":"node","targetId":"n","propertyKey":"a"})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"update_node","nodeId":"n","data":{}})"), "ok");
  EXPECT_NE(code_of(R"({"id":"p","op":"update_node","nodeId":"n","data":{"properties":[1]}})"), "ok");
}

TEST(Check, OversizedPatchIsTooLarge) {
  Limits limits;
  limits.max_patch_bytes = 1024;
  const std::string big(2000, 'x');
  EXPECT_EQ(code_of(R"({"id":"p","op":"opaque","data":{"blob":")" + big + R"("}})", limits).substr(0, 9), "too_large");
}

// Built in code: protobuf's own JSON parser stops at a depth below ours.
google::protobuf::Value nested(int depth, bool objects) {
  google::protobuf::Value v;
  v.set_number_value(1);
  for (int i = 0; i < depth; ++i) {
    google::protobuf::Value outer;
    if (objects) {
      (*outer.mutable_struct_value()->mutable_fields())["k"] = v;
    } else {
      *outer.mutable_list_value()->add_values() = v;
    }
    v = std::move(outer);
  }
  return v;
}

TEST(Check, DeepOrHugeDataIsRefused) {
  Limits limits;
  for (bool objects : {true, false}) {
    api::Patch ok = patch_from_json(R"({"id":"p","op":"opaque"})");
    (*ok.mutable_data()->mutable_fields())["x"] = nested(limits.max_data_depth - 2, objects);
    EXPECT_FALSE(check_shape(ok, limits)) << objects;
    api::Patch deep = patch_from_json(R"({"id":"p","op":"opaque"})");
    (*deep.mutable_data()->mutable_fields())["x"] = nested(limits.max_data_depth + 1, objects);
    auto r = check_shape(deep, limits);
    ASSERT_TRUE(r) << objects;
    EXPECT_EQ(r->code, "invalid_patch");
    EXPECT_NE(r->reason.find("deeper"), std::string::npos);
  }
  std::string many = "[";
  for (int i = 0; i < 11000; ++i) many += (i ? ",0" : "0");
  many += "]";
  Limits roomy;
  roomy.max_patch_bytes = 1 << 20;
  EXPECT_NE(code_of(R"({"id":"p","op":"opaque","data":{"x":)" + many + "}}", roomy), "ok");
}

TEST(Check, NonFiniteNumbersAreRefused) {
  api::Patch p = create_node("p", "n");
  (*p.mutable_data()->mutable_fields())["properties"].mutable_struct_value()->mutable_fields()->operator[]("x").set_number_value(
      std::numeric_limits<double>::infinity());
  auto r = check_shape(p, Limits{});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, "invalid_patch");
}

TEST(Check, ChannelNames) {
  EXPECT_TRUE(valid_channel_name("default"));
  EXPECT_TRUE(valid_channel_name("user-42:room.1_a"));
  EXPECT_TRUE(valid_channel_name(std::string(128, 'a')));
  EXPECT_FALSE(valid_channel_name(std::string(129, 'a')));
  EXPECT_FALSE(valid_channel_name(""));
  EXPECT_FALSE(valid_channel_name("a b"));
  EXPECT_FALSE(valid_channel_name("a/b"));
  EXPECT_FALSE(valid_channel_name("héllo"));
  EXPECT_FALSE(valid_channel_name("x'; DROP TABLE channels; --"));
}

}  // namespace
}  // namespace syncd::graph
