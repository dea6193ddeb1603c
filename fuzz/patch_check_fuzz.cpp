// libFuzzer target: the patch validator on arbitrary encoded Patch messages.
// check_shape must never crash; a patch it passes is applied to a small
// graph under both conflict policies, which must not crash either.

#include <cstdint>

#include "graph/check.h"
#include "graph/graph.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  syncapi::v1::Patch patch;
  if (!patch.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (syncd::graph::check_shape(patch, syncd::graph::Limits{})) return 0;
  for (auto policy : {syncd::graph::ConflictPolicy::kLastWriterWins, syncd::graph::ConflictPolicy::kRejectStale}) {
    syncd::graph::Graph g;
    syncd::graph::Element a;
    a.label = "Person";
    g.load_node("a", a);
    g.load_node("b", a);
    syncd::graph::Element e;
    e.label = "KNOWS", e.from = "a", e.to = "b";
    g.load_edge("e", e);
    (void)g.apply(patch, 1, policy);
    (void)g.apply(patch, 2, policy);  // again: duplicates and conflicts
    (void)g.take_dirty();
  }
  return 0;
}
