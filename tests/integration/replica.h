#pragma once
// A client's copy of a channel, built the way a client must build it from
// what a stream delivers: patches applied in version order, a snapshot
// replacing everything. It checks the stream's promises as it goes: after
// a snapshot at V, patches at V are the state and the next one is V+1; no
// version is skipped, repeated or goes backwards.

#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <map>
#include <string>

#include "api/messages.h"
#include "graph/graph.h"

namespace syncd::testing {

class Replica {
 public:
  // The first sync_state page of a snapshot (or a Watch `reset` patch,
  // which says how many snapshot patches follow).
  void reset(std::int64_t version, std::int64_t patches = 0) {
    graph_ = graph::Graph();
    position_ = version;
    snapshot_ = version;
    owed_ = patches;
    ++snapshots_;
  }

  // One delivered patch; false (with error()) when it breaks the promises.
  bool apply(const api::Patch& p) {
    const std::int64_t v = p.server_version();
    const bool in_snapshot = snapshot_ >= 0 && v == snapshot_;
    if (!in_snapshot && v != position_ + 1) {
      error_ = "got version " + std::to_string(v) + " at position " + std::to_string(position_);
      return false;
    }
    if (!in_snapshot) snapshot_ = -1;  // the snapshot is over
    if (in_snapshot && owed_ > 0) --owed_;
    if (auto rej = graph_.apply(p, v, graph::ConflictPolicy::kLastWriterWins)) {
      error_ = "version " + std::to_string(v) + " does not apply: " + rej->reason;
      return false;
    }
    position_ = v;
    return true;
  }

  // A Session response (acks and heartbeats are ignored; own patches are
  // the caller's business).
  bool take(const api::SessionResponse& r) {
    if (r.has_sync_state()) {
      if (r.sync_state().requested()) return true;  // answers to sync requests are not the stream
      if (r.sync_state().snapshot()) reset(r.sync_state().version());
      for (const auto& p : r.sync_state().patches()) {
        if (!apply(p)) return false;
      }
      return true;
    }
    if (r.has_broadcast()) return apply(r.broadcast());
    return true;
  }

  // A Watch message.
  bool take(const api::Patch& p) {
    if (p.op() == "reset") {
      reset(p.server_version(), static_cast<std::int64_t>(p.data().fields().at("patches").number_value()));
      return true;
    }
    return apply(p);
  }

  std::int64_t position() const { return position_; }
  // Snapshot patches announced by a Watch `reset` and not yet received.
  std::int64_t owed() const { return owed_; }
  int snapshots() const { return snapshots_; }
  const std::string& error() const { return error_; }
  const graph::Graph& graph() const { return graph_; }

 private:
  graph::Graph graph_;
  std::int64_t position_ = 0;
  std::int64_t snapshot_ = -1;
  std::int64_t owed_ = 0;
  int snapshots_ = 0;
  std::string error_;
};

// "" when both graphs hold the same nodes and edges (labels, endpoints,
// properties); otherwise the first difference.
inline std::string graph_difference(const graph::Graph& want, const graph::Graph& got) {
  auto compare = [](const char* what, const auto& a, const auto& b) -> std::string {
    if (a.size() != b.size()) {
      return std::string(what) + ": " + std::to_string(b.size()) + " instead of " + std::to_string(a.size());
    }
    for (const auto& [id, e] : a) {
      auto it = b.find(id);
      if (it == b.end()) return std::string(what) + " " + id + " is missing";
      const graph::Element& f = it->second;
      if (e.label != f.label || e.from != f.from || e.to != f.to ||
          !google::protobuf::util::MessageDifferencer::Equals(e.properties, f.properties)) {
        return std::string(what) + " " + id + " differs";
      }
    }
    return "";
  };
  if (auto d = compare("nodes", want.nodes(), got.nodes()); !d.empty()) return d;
  return compare("edges", want.edges(), got.edges());
}

}  // namespace syncd::testing
