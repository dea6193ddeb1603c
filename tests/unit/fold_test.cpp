// State is the fold of the log: applying a random log in one go equals
// applying it in batches, each on a graph reloaded from the stored form
// (JSON rows) of the previous state, the way the store commits batches.

#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include <random>

#include "graph/check.h"
#include "graph/graph.h"
#include "graph/json.h"
#include "patches.h"

namespace syncd::graph {
namespace {

using namespace syncd::testing;

// A random but mostly valid patch over a small id space, so that ops collide.
api::Patch random_patch(std::mt19937& rng, int i) {
  const std::string id = "p" + std::to_string(i);
  const std::string client = "c" + std::to_string(rng() % 3);
  auto node = [&] { return "n" + std::to_string(rng() % 8); };
  auto edge = [&] { return "e" + std::to_string(rng() % 8); };
  auto key = [&] { return std::string(1, static_cast<char>('a' + rng() % 4)); };
  switch (rng() % 9) {
    case 0: return create_node(id, node(), "L" + std::to_string(rng() % 2), R"({")" + key() + R"(":1})", client);
    case 1: return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client + R"(","op":"update_node","nodeId":")" +
                                   node() + R"(","data":{"properties":{")" + key() + R"(":)" + std::to_string(rng() % 100) + "}}}");
    case 2: return simple(id, "delete_node", "nodeId", node(), client);
    case 3: return create_edge(id, edge(), node(), node(), client);
    case 4: return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client + R"(","op":"update_edge","edgeId":")" +
                                   edge() + R"(","data":{"label":"R","properties":{")" + key() + R"(":"v"}}})");
    case 5: return simple(id, "delete_edge", "edgeId", edge(), client);
    case 6: return set_property(id, rng() % 2 ? "node" : "edge", rng() % 2 ? node() : edge(), key(),
                                R"({"deep":[1,2,{"x":null}]})", client);
    case 7: return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client +
                                   R"(","op":"removeProperty","targetType":"node","targetId":")" + node() +
                                   R"(","propertyKey":")" + key() + R"("})");
    default: return patch_from_json(R"({"id":")" + id + R"(","op":"opaque","data":{"n":)" + std::to_string(i) + "}}");
  }
}

// An element as stored: JSON columns, compared by content (key order in
// JSON text is not significant, as in jsonb).
struct Row {
  std::string label, from, to, properties, stamps;
  Stamp stamp;
  bool operator==(const Row& o) const {
    return label == o.label && from == o.from && to == o.to && stamp == o.stamp &&
           stamps_from_json(stamps) == stamps_from_json(o.stamps) &&
           google::protobuf::util::MessageDifferencer::Equals(*struct_from_json(properties),
                                                              *struct_from_json(o.properties));
  }
};
using Rows = std::map<std::string, Row>;

Row row_of(const Element& e) {
  return {e.label, e.from, e.to, to_json(e.properties), stamps_to_json(e.stamps), e.stamp};
}

Element element_of(const Row& r) {
  Element e;
  e.label = r.label;
  e.from = r.from;
  e.to = r.to;
  e.properties = *struct_from_json(r.properties);
  e.stamps = stamps_from_json(r.stamps);
  e.stamp = r.stamp;
  return e;
}

void dump(const Graph& g, Rows& nodes, Rows& edges) {
  nodes.clear();
  edges.clear();
  for (const auto& [id, e] : g.nodes()) nodes[id] = row_of(e);
  for (const auto& [id, e] : g.edges()) edges[id] = row_of(e);
}

TEST(Fold, BatchedApplicationOnStoredStateEqualsTheFold) {
  for (unsigned seed = 1; seed <= 30; ++seed) {
    std::mt19937 rng(seed);
    const auto policy = seed % 2 ? ConflictPolicy::kLastWriterWins : ConflictPolicy::kRejectStale;
    std::vector<api::Patch> log;
    for (int i = 0; i < 400; ++i) {
      api::Patch p = random_patch(rng, i);
      if (rng() % 4 == 0) p.set_base_version(rng() % (i + 1));
      ASSERT_FALSE(check_shape(p, Limits{})) << p.DebugString();
      log.push_back(p);
    }

    Graph whole;
    std::vector<bool> accepted_whole;
    std::int64_t v = 0;
    for (const auto& p : log) {
      const bool ok = !whole.apply(p, v + 1, policy);
      accepted_whole.push_back(ok);
      v += ok;
    }

    Rows nodes, edges;
    std::size_t i = 0;
    v = 0;
    while (i < log.size()) {
      Graph g;  // reloaded from rows, as a batch transaction does
      for (const auto& [id, r] : nodes) g.load_node(id, element_of(r));
      for (const auto& [id, r] : edges) g.load_edge(id, element_of(r));
      const std::size_t end = std::min(log.size(), i + 1 + rng() % 40);
      for (; i < end; ++i) {
        const bool ok = !g.apply(log[i], v + 1, policy);
        ASSERT_EQ(ok, accepted_whole[i]) << "seed " << seed << " patch " << i;
        v += ok;
      }
      dump(g, nodes, edges);
    }
    Rows whole_nodes, whole_edges;
    dump(whole, whole_nodes, whole_edges);
    EXPECT_EQ(nodes, whole_nodes) << "seed " << seed;
    EXPECT_EQ(edges, whole_edges) << "seed " << seed;
    EXPECT_GT(whole_nodes.size() + whole_edges.size(), 0u);
  }
}

}  // namespace
}  // namespace syncd::graph
