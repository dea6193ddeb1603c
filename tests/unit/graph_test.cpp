// Graph::apply: every op's validation and effect, conflict policies, and
// the dirty sets the store writes back.

#include "graph/graph.h"

#include <gtest/gtest.h>

#include "graph/check.h"
#include "patches.h"

namespace syncd::graph {
namespace {

using testing::create_edge;
using testing::create_node;
using testing::patch_from_json;
using testing::set_property;
using testing::simple;

constexpr auto kLww = ConflictPolicy::kLastWriterWins;
constexpr auto kStale = ConflictPolicy::kRejectStale;

std::string prop(const Element* e, const std::string& key) {
  auto it = e->properties.fields().find(key);
  if (it == e->properties.fields().end()) return "<absent>";
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(it->second, &out);
  return out;
}

TEST(Graph, CreateNodeStoresLabelPropertiesAndStamp) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "n1", "Person", R"({"name":"Ada","age":36})"), 1, kLww));
  const Element* n = g.node("n1");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->label, "Person");
  EXPECT_EQ(prop(n, "name"), "\"Ada\"");
  EXPECT_EQ(prop(n, "age"), "36");
  EXPECT_EQ(n->stamp, (Stamp{1, "c1"}));
  EXPECT_EQ(n->stamps.at("name"), (Stamp{1, "c1"}));
}

TEST(Graph, CreateNodeTwiceIsAConflict) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "n1"), 1, kLww));
  auto r = g.apply(create_node("p2", "n1", "Other"), 2, kLww);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, "conflict");
  EXPECT_EQ(g.node("n1")->label, "Person");  // untouched
}

TEST(Graph, UpdateNodeMergesPropertiesAndMayRelabel) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "n1", "Person", R"({"a":1,"b":2})"), 1, kLww));
  ASSERT_FALSE(g.apply(patch_from_json(R"({"id":"p2","clientId":"c2","op":"update_node","nodeId":"n1",
      "data":{"label":"Robot","properties":{"b":3,"c":null}}})"), 2, kLww));
  const Element* n = g.node("n1");
  EXPECT_EQ(n->label, "Robot");
  EXPECT_EQ(prop(n, "a"), "1");
  EXPECT_EQ(prop(n, "b"), "3");
  EXPECT_EQ(prop(n, "c"), "null");
  EXPECT_EQ(n->stamp, (Stamp{2, "c2"}));
  EXPECT_EQ(n->stamps.at("a"), (Stamp{1, "c1"}));
}

TEST(Graph, UpdateMissingNodeIsNotFound) {
  Graph g;
  auto r = g.apply(patch_from_json(R"({"id":"p","op":"update_node","nodeId":"ghost","data":{"properties":{"a":1}}})"),
                   1, kLww);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, "not_found");
  EXPECT_NE(r->reason.find("ghost"), std::string::npos);
}

TEST(Graph, DeleteNodeDeletesItsEdges) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "a"), 1, kLww));
  ASSERT_FALSE(g.apply(create_node("p2", "b"), 2, kLww));
  ASSERT_FALSE(g.apply(create_node("p3", "c"), 3, kLww));
  ASSERT_FALSE(g.apply(create_edge("p4", "ab", "a", "b"), 4, kLww));
  ASSERT_FALSE(g.apply(create_edge("p5", "ca", "c", "a"), 5, kLww));
  ASSERT_FALSE(g.apply(create_edge("p6", "bc", "b", "c"), 6, kLww));
  g.take_dirty();
  ASSERT_FALSE(g.apply(simple("p7", "delete_node", "nodeId", "a"), 7, kLww));
  EXPECT_EQ(g.node("a"), nullptr);
  EXPECT_EQ(g.edge("ab"), nullptr);
  EXPECT_EQ(g.edge("ca"), nullptr);
  EXPECT_NE(g.edge("bc"), nullptr);
  const Graph::Dirty d = g.take_dirty();
  EXPECT_EQ(d.nodes, (std::set<std::string>{"a"}));
  EXPECT_EQ(d.edges, (std::set<std::string>{"ab", "ca"}));
}

TEST(Graph, DeleteMissingNodeOrEdgeIsNotFound) {
  Graph g;
  EXPECT_EQ(g.apply(simple("p1", "delete_node", "nodeId", "x"), 1, kLww)->code, "not_found");
  EXPECT_EQ(g.apply(simple("p2", "delete_edge", "edgeId", "x"), 1, kLww)->code, "not_found");
}

TEST(Graph, CreateEdgeNeedsBothEndpointsAndAFreshId) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "a"), 1, kLww));
  auto missing = g.apply(create_edge("p2", "e", "a", "nope"), 2, kLww);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->code, "not_found");
  EXPECT_EQ(g.edge("e"), nullptr);
  ASSERT_FALSE(g.apply(create_node("p3", "b"), 2, kLww));
  ASSERT_FALSE(g.apply(create_edge("p4", "e", "a", "b"), 3, kLww));
  EXPECT_EQ(g.edge("e")->from, "a");
  EXPECT_EQ(g.edge("e")->to, "b");
  EXPECT_EQ(g.apply(create_edge("p5", "e", "b", "a"), 4, kLww)->code, "conflict");
}

TEST(Graph, UpdateAndDeleteEdge) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "a"), 1, kLww));
  ASSERT_FALSE(g.apply(create_edge("p2", "e", "a", "a"), 2, kLww));  // self-loop is fine
  ASSERT_FALSE(g.apply(patch_from_json(R"({"id":"p3","op":"update_edge","edgeId":"e","data":{"properties":{"w":0.5}}})"), 3, kLww));
  EXPECT_EQ(prop(g.edge("e"), "w"), "0.5");
  EXPECT_EQ(g.apply(patch_from_json(R"({"id":"p4","op":"update_edge","edgeId":"zz","data":{"properties":{"w":1}}})"), 4, kLww)->code,
            "not_found");
  ASSERT_FALSE(g.apply(simple("p5", "delete_edge", "edgeId", "e"), 4, kLww));
  EXPECT_EQ(g.edge("e"), nullptr);
  // Deleting the node afterwards must not trip over the gone edge.
  ASSERT_FALSE(g.apply(simple("p6", "delete_node", "nodeId", "a"), 5, kLww));
}

TEST(Graph, SetAndRemoveProperty) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "n"), 1, kLww));
  ASSERT_FALSE(g.apply(set_property("p2", "node", "n", "skills", R"(["C++","SQL"])"), 2, kLww));
  EXPECT_EQ(prop(g.node("n"), "skills"), R"(["C++","SQL"])");
  ASSERT_FALSE(g.apply(patch_from_json(R"({"id":"p3","op":"remove_property","targetType":"node","targetId":"n","propertyKey":"skills"})"), 3, kLww));
  EXPECT_EQ(prop(g.node("n"), "skills"), "<absent>");
  EXPECT_EQ(g.node("n")->stamps.at("skills").version, 3);  // kept after removal
  EXPECT_EQ(g.apply(set_property("p4", "edge", "n", "k", "1"), 4, kLww)->code, "not_found");
  EXPECT_EQ(g.apply(set_property("p5", "node", "gone", "k", "1"), 4, kLww)->code, "not_found");
}

TEST(Graph, CamelCaseOpsAreTheSameOps) {
  Graph g;
  ASSERT_FALSE(g.apply(patch_from_json(R"({"id":"p1","op":"createNode","nodeId":"n","data":{"label":"L"}})"), 1, kLww));
  ASSERT_FALSE(g.apply(patch_from_json(R"({"id":"p2","op":"setProperty","targetType":"node","targetId":"n","propertyKey":"k","propertyValue":7})"), 2, kLww));
  EXPECT_EQ(prop(g.node("n"), "k"), "7");
}

TEST(Graph, OpaqueChangesNothing) {
  Graph g;
  ASSERT_FALSE(g.apply(patch_from_json(R"({"id":"p1","op":"opaque","data":{"changes":[[1,2,"x"]]}})"), 1, kLww));
  EXPECT_TRUE(g.nodes().empty());
  EXPECT_TRUE(g.take_dirty().nodes.empty());
}

TEST(Graph, RejectStaleRefusesWhatAnotherClientChangedSinceBase) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "n", "Person", R"({"a":1,"b":1})", "alice"), 1, kStale));
  ASSERT_FALSE(g.apply(set_property("p2", "node", "n", "a", "2", "bob"), 2, kStale));

  // Carol saw version 1: property a changed since, by someone else.
  auto stale = set_property("p3", "node", "n", "a", "3", "carol");
  stale.set_base_version(1);
  auto r = g.apply(stale, 3, kStale);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, "conflict");
  EXPECT_EQ(prop(g.node("n"), "a"), "2");

  // Property b did not change since 1: fine.
  auto other_key = set_property("p4", "node", "n", "b", "9", "carol");
  other_key.set_base_version(1);
  EXPECT_FALSE(g.apply(other_key, 3, kStale));

  // Bob's own change is no conflict for Bob.
  auto own = set_property("p5", "node", "n", "a", "4", "bob");
  own.set_base_version(1);
  EXPECT_FALSE(g.apply(own, 4, kStale));

  // Deleting needs the whole node unchanged by others since base.
  auto del = simple("p6", "delete_node", "nodeId", "n", "carol");
  del.set_base_version(2);
  EXPECT_EQ(g.apply(del, 5, kStale)->code, "conflict");
  del.set_base_version(4);
  EXPECT_FALSE(g.apply(del, 5, kStale));
}

TEST(Graph, LastWriterWinsIgnoresBaseVersion) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "n", "Person", R"({"a":1})", "alice"), 1, kLww));
  ASSERT_FALSE(g.apply(set_property("p2", "node", "n", "a", "2", "bob"), 2, kLww));
  auto late = set_property("p3", "node", "n", "a", "3", "carol");
  late.set_base_version(1);
  EXPECT_FALSE(g.apply(late, 3, kLww));
  EXPECT_EQ(prop(g.node("n"), "a"), "3");
}

TEST(Graph, RejectionLeavesNoDirtyMarks) {
  Graph g;
  ASSERT_FALSE(g.apply(create_node("p1", "a"), 1, kLww));
  g.take_dirty();
  ASSERT_TRUE(g.apply(create_edge("p2", "e", "a", "missing"), 2, kLww));
  ASSERT_TRUE(g.apply(create_node("p3", "a"), 2, kLww));
  const Graph::Dirty d = g.take_dirty();
  EXPECT_TRUE(d.nodes.empty());
  EXPECT_TRUE(d.edges.empty());
}

TEST(ConflictPolicy, Names) {
  EXPECT_EQ(parse_conflict_policy("reject_stale"), ConflictPolicy::kRejectStale);
  EXPECT_EQ(parse_conflict_policy("last_writer_wins"), ConflictPolicy::kLastWriterWins);
  EXPECT_FALSE(parse_conflict_policy("first_writer_wins"));
  EXPECT_EQ(conflict_policy_name(ConflictPolicy::kRejectStale), "reject_stale");
}

}  // namespace
}  // namespace syncd::graph
