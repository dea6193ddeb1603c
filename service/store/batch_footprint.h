#pragma once
// Which stored rows a batch's patches may read: validating and applying a
// patch needs the node or edge it targets (and, for a new edge, both ends;
// for a deleted node, its incident edges), so the committer loads all of
// them for a channel with one query per table before validating anything.

#include <set>
#include <string>

#include "api/messages.h"

namespace syncd::store {

struct Footprint {
  std::set<std::string> nodes;
  std::set<std::string> edges;
  std::set<std::string> deleted_nodes;  // their incident edges are needed too

  // Adds what `p` may read. `p` has passed the checks on its shape, so its
  // op is one the graph knows.
  void add(const api::Patch& p);
};

}  // namespace syncd::store
