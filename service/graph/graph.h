#pragma once
// The property graph of one channel and the rules that change it.
//
// `Graph::apply` is the single place where a patch meets state: the commit
// path runs it on the rows a batch touches (loaded from PostgreSQL), tests
// run it on a whole log to check that state is the fold of the log.
// Not thread-safe; one owner at a time.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "api/messages.h"
#include "graph/rejection.h"

namespace syncd::graph {

// Who changed something last, and at which channel version.
struct Stamp {
  std::int64_t version = 0;
  std::string client_id;
  bool operator==(const Stamp&) const = default;
};

// A node (from/to empty) or an edge.
struct Element {
  std::string label;
  std::string from;
  std::string to;
  google::protobuf::Struct properties;
  Stamp stamp;                          // last change to anything in the element
  std::map<std::string, Stamp> stamps;  // last change per property key, kept after removal
};

enum class ConflictPolicy { kLastWriterWins, kRejectStale };

std::optional<ConflictPolicy> parse_conflict_policy(std::string_view name);
std::string_view conflict_policy_name(ConflictPolicy policy);

class Graph {
 public:
  // Applies `patch` as channel version `version`. On success the graph
  // changes and nullopt is returned; on rejection the graph is untouched.
  // The patch must have passed check_shape.
  std::optional<Rejection> apply(const api::Patch& patch, std::int64_t version,
                                 ConflictPolicy policy);

  const Element* node(const std::string& id) const;
  const Element* edge(const std::string& id) const;
  const std::unordered_map<std::string, Element>& nodes() const { return nodes_; }
  const std::unordered_map<std::string, Element>& edges() const { return edges_; }

  // Loading existing state (no stamps are changed, nothing is marked dirty).
  void load_node(const std::string& id, Element e);
  void load_edge(const std::string& id, Element e);

  // Ids changed by apply() since the last take_dirty(): each either exists
  // now (write it) or not (delete it).
  struct Dirty {
    std::set<std::string> nodes;
    std::set<std::string> edges;
  };
  Dirty take_dirty();

 private:
  void erase_edge(const std::string& id);

  std::unordered_map<std::string, Element> nodes_;
  std::unordered_map<std::string, Element> edges_;
  // node id -> ids of edges that start or end there
  std::unordered_map<std::string, std::set<std::string>> incident_;
  Dirty dirty_;
};

}  // namespace syncd::graph
