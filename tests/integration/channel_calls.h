#pragma once
// Channel-level calls to a running syncd that the compaction and channel
// tests share, and a random workload whose whole history is recorded from
// its acks (what a client must end up holding, once folded).

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "harness.h"
#include "patches.h"
#include "replica.h"

namespace syncd::testing {

inline api::ChannelInfo info(const Syncd& s, const std::string& channel) {
  api::GetChannelInfoRequest req;
  req.set_channel(channel);
  api::ChannelInfo out;
  grpc::ClientContext ctx;
  const grpc::Status st = s.stub()->GetChannelInfo(&ctx, req, &out);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return out;
}

inline grpc::Status compact(const Syncd& s, const std::string& channel, std::int64_t through, bool force = false,
                     api::CompactResponse* out = nullptr) {
  api::CompactRequest req;
  req.set_channel(channel);
  req.set_through_version(through);
  req.set_force(force);
  api::CompactResponse resp;
  grpc::ClientContext ctx;
  const grpc::Status st = s.stub()->Compact(&ctx, req, &resp);
  if (out) *out = resp;
  return st;
}

inline std::vector<api::SnapshotPage> snapshot(const Syncd& s, const std::string& channel, int limit = 0) {
  api::GetSnapshotRequest req;
  req.set_channel(channel);
  req.set_limit(limit);
  grpc::ClientContext ctx;
  auto reader = s.stub()->GetSnapshot(&ctx, req);
  std::vector<api::SnapshotPage> pages;
  for (api::SnapshotPage page; reader->Read(&page);) pages.push_back(page);
  EXPECT_TRUE(reader->Finish().ok());
  return pages;
}

inline api::PushResponse push(const Syncd& s, const std::string& channel, const std::vector<api::Patch>& patches) {
  api::PushRequest req;
  req.set_channel(channel);
  for (const auto& p : patches) *req.add_patches() = p;
  api::PushResponse resp;
  grpc::ClientContext ctx;
  const grpc::Status st = s.stub()->Push(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp;
}

// A random graph operation on a small id space, so that creates, updates,
// deletes and edges keep running into each other (some are rejected, as a
// real client's would be).
inline api::Patch random_op(std::mt19937& rng, const std::string& id) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::string node = "n" + std::to_string(pick(24));
  const std::string other = "n" + std::to_string(pick(24));
  const std::string edge = "e" + std::to_string(pick(12));
  const std::string value = std::to_string(pick(1000));
  const std::string head = R"({"id":")" + id + R"(","clientId":"w",)";
  switch (pick(9)) {
    case 0:
    case 1:
      return patch_from_json(head + R"("op":"create_node","nodeId":")" + node + R"(","data":{"label":"L)" +
                             std::to_string(pick(3)) + R"(","properties":{"a":)" + value + "}}}");
    case 2:
      return patch_from_json(head + R"("op":"update_node","nodeId":")" + node +
                             R"(","data":{"properties":{"b":")" + value + R"("}}})");
    case 3:
      return patch_from_json(head + R"("op":"delete_node","nodeId":")" + node + R"("})");
    case 4:
      return patch_from_json(head + R"("op":"create_edge","edgeId":")" + edge + R"(","data":{"label":"R",)" +
                             R"("fromNodeId":")" + node + R"(","toNodeId":")" + other + R"(","properties":{"w":)" +
                             value + "}}}");
    case 5:
      return patch_from_json(head + R"("op":"delete_edge","edgeId":")" + edge + R"("})");
    case 6:
      return patch_from_json(head + R"("op":"set_property","targetType":"node","targetId":")" + node +
                             R"(","propertyKey":"k)" + std::to_string(pick(4)) + R"(","propertyValue":)" + value + "}");
    case 7:
      return patch_from_json(head + R"("op":"set_property","targetType":"edge","targetId":")" + edge +
                             R"(","propertyKey":"k)" + std::to_string(pick(4)) + R"(","propertyValue":)" + value + "}");
    default:
      return patch_from_json(head + R"("op":"remove_property","targetType":"node","targetId":")" + node +
                             R"(","propertyKey":"a"})");
  }
}

// Every accepted patch of a channel, by version, from the writers' acks.
struct History {
  std::mutex mu;
  std::map<std::int64_t, api::Patch> accepted;

  void record(const api::Patch& p, const api::Ack& a) {
    if (a.status() != api::Ack::ACCEPTED) return;
    std::lock_guard lock(mu);
    api::Patch stored = p;
    stored.set_server_version(a.server_version());
    accepted.emplace(a.server_version(), std::move(stored));
  }
  // A client that saw versions 1..through.
  Replica replica_at(std::int64_t through) {
    std::lock_guard lock(mu);
    Replica r;
    for (std::int64_t v = 1; v <= through; ++v) {
      auto it = accepted.find(v);
      if (it == accepted.end() || !r.apply(it->second)) ADD_FAILURE() << "no history at " << v;
    }
    return r;
  }
  // The fold of versions 1..through; "" in *error unless they are all there.
  graph::Graph fold(std::int64_t through, std::string* error) {
    std::lock_guard lock(mu);
    graph::Graph g;
    for (std::int64_t v = 1; v <= through; ++v) {
      auto it = accepted.find(v);
      if (it == accepted.end()) {
        *error = "version " + std::to_string(v) + " was never acknowledged";
        return g;
      }
      g.apply(it->second, v, graph::ConflictPolicy::kLastWriterWins);
    }
    return g;
  }
};

}  // namespace syncd::testing
