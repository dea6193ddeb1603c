// syncbench join: how long a new client takes to reach the head of a
// long-lived channel, by full replay against by snapshot.
//
// For each history length H, two channels get the same data, written
// straight to PostgreSQL: `state` create_node patches, then H - state
// set_property patches on one node, so the state has `state` nodes
// whatever H is. One channel is then compacted through its head with the
// Compact RPC (timed, with the log's bytes before and after). A client
// opens a Session from version 0 on each and reads until the last history
// page (has_more false): the whole log on the first, the snapshot on the
// second. Like catchup, the client walks the bytes and builds no objects.

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <iostream>
#include <pqxx/pqxx>

#include "api/grpc.h"
#include "commands.h"
#include "raw_session.h"
#include "report.h"

namespace syncbench {
namespace {

using google::protobuf::internal::WireFormatLite;

// Fills `channel` as described above; returns its row id.
std::int64_t fill(const std::string& url, const std::string& channel, std::int64_t history, std::int64_t state) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  const std::int64_t id =
      tx.exec1("INSERT INTO channels (name) VALUES (" + tx.quote(channel) + ") RETURNING id")[0].as<std::int64_t>();
  const std::string cid = std::to_string(id);
  api::Patch create;
  create.set_client_id("syncbench");
  create.set_op("create_node");
  (*create.mutable_data()->mutable_fields())["label"].set_string_value("Person");
  (*(*create.mutable_data()->mutable_fields())["properties"].mutable_struct_value()->mutable_fields())["name"]
      .set_string_value("Ada Lovelace");
  // The creates, 1,000 rows per statement.
  for (std::int64_t from = 1; from <= state; from += 1000) {
    std::string values;
    for (std::int64_t v = from; v < from + 1000 && v <= state; ++v) {
      create.set_id("c" + std::to_string(v));
      create.set_node_id("n" + std::to_string(v));
      const std::string body = create.SerializeAsString();
      if (!values.empty()) values += ',';
      values += "(" + cid + "," + std::to_string(v) + ",'c" + std::to_string(v) + "','syncbench','create_node'," +
                tx.quote_raw(reinterpret_cast<const unsigned char*>(body.data()), body.size()) + ")";
    }
    tx.exec("INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) VALUES " + values);
  }
  api::Patch set;
  set.set_id("s");
  set.set_client_id("syncbench");
  set.set_op("set_property");
  set.set_target_type("node");
  set.set_target_id("n1");
  set.set_property_key("clicks");
  set.mutable_property_value()->set_number_value(1);
  const std::string body = set.SerializeAsString();
  tx.exec("INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) SELECT " + cid +
          ", g, 's' || g, 'syncbench', 'set_property', " +
          tx.quote_raw(reinterpret_cast<const unsigned char*>(body.data()), body.size()) + " FROM generate_series(" +
          std::to_string(state + 1) + ", " + std::to_string(history) + ") AS g");
  tx.exec("INSERT INTO nodes (channel_id, node_id, label, properties, version, client_id) SELECT " + cid +
          ", 'n' || g, 'Person', CASE WHEN g = 1 AND " + std::to_string(history) + " > " + std::to_string(state) +
          " THEN '{\"name\":\"Ada Lovelace\",\"clicks\":1}' ELSE '{\"name\":\"Ada Lovelace\"}' END::jsonb, g, "
          "'syncbench' FROM generate_series(1, " + std::to_string(state) + ") AS g");
  tx.exec("UPDATE channels SET head = " + std::to_string(history) + " WHERE id = " + cid);
  tx.commit();
  return id;
}

std::int64_t log_bytes(const std::string& url, bool vacuum_full = false) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  if (vacuum_full) tx.exec("VACUUM FULL patches");  // this benchmark's own database only
  tx.exec("VACUUM ANALYZE patches");
  return tx.exec1("SELECT pg_total_relation_size('patches') + pg_total_relation_size('compacted_ids')")[0]
      .as<std::int64_t>();
}

// Counts the patches of one encoded SessionResponse's sync_state; sets
// *last when it is the last history page (has_more false).
void scan(const std::string& bytes, std::int64_t* patches, bool* last) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (std::uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) != api::SessionResponse::kSyncStateFieldNumber) {
      if (!WireFormatLite::SkipField(&in, tag)) return;
      continue;
    }
    std::uint32_t len;
    if (!in.ReadVarint32(&len)) return;
    const auto limit = in.PushLimit(static_cast<int>(len));
    bool more = false;
    while (std::uint32_t t = in.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(t);
      if (field == api::SyncState::kPatchesFieldNumber) ++*patches;
      if (field == api::SyncState::kHasMoreFieldNumber) {
        std::uint64_t v;
        if (!in.ReadVarint64(&v)) return;
        more = v != 0;
        continue;
      }
      if (!WireFormatLite::SkipField(&in, t)) return;
    }
    in.PopLimit(limit);
    if (!more) *last = true;
  }
}

struct Join {
  double ms = 0;
  std::int64_t patches = 0;
};

// A Session from version 0 until its last history page.
Join join(const std::shared_ptr<grpc::Channel>& channel, const std::string& name) {
  const auto t0 = Clock::now();
  RawSession session(channel, name);
  Join result;
  bool last = false;
  std::string bytes;
  while (!last && session.next(&bytes)) scan(bytes, &result.patches, &last);
  result.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!last) result.patches = -1;
  return result;
}

}  // namespace

int join(const JoinOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto grpc_channel = grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args);
  auto stub = api::Sync::NewStub(grpc_channel);
  const std::string stamp = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  bool ok = true;
  for (const std::int64_t history : o.histories) {
    const std::string full = "join-full-" + std::to_string(history) + "-" + stamp;
    const std::string compacted = "join-snap-" + std::to_string(history) + "-" + stamp;
    std::cerr << "join: filling two channels with " << history << " patches (state: " << o.state << " nodes)..."
              << std::endl;
    fill(o.database_url, full, history, o.state);
    fill(o.database_url, compacted, history, o.state);

    std::cerr << "join: compacting " << compacted << "..." << std::endl;
    const std::int64_t bytes_before = log_bytes(o.database_url);
    api::CompactRequest req;
    req.set_channel(compacted);
    req.set_through_version(history);
    api::CompactResponse resp;
    grpc::ClientContext ctx;
    const auto c0 = Clock::now();
    const grpc::Status st = stub->Compact(&ctx, req, &resp);
    const double compact_s = std::chrono::duration<double>(Clock::now() - c0).count();
    if (!st.ok()) {
      std::cerr << "join: Compact failed: " << st.error_message() << "\n";
      return 1;
    }
    const std::int64_t bytes_after = log_bytes(o.database_url);
    const std::int64_t bytes_reclaimed = log_bytes(o.database_url, true);

    // Alternately, o.repeat times each; the medians are reported.
    std::cerr << "join: reading both from version 0, " << o.repeat << " times each..." << std::endl;
    std::vector<double> replays, snaps;
    Join replay, snap;
    for (int i = 0; i < o.repeat; ++i) {
      replay = join(grpc_channel, full);
      snap = join(grpc_channel, compacted);
      ok &= replay.patches == history && snap.patches == o.state;
      replays.push_back(replay.ms);
      snaps.push_back(snap.ms);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    replay.ms = median(replays);
    snap.ms = median(snaps);
    runs.push_back({{"history", history},
                    {"replay_ms", std::round(replay.ms)},
                    {"replay_patches", replay.patches},
                    {"snapshot_ms", std::round(snap.ms)},
                    {"snapshot_patches", snap.patches},
                    {"speedup", std::round(replay.ms / snap.ms * 10) / 10},
                    {"compact_s", std::round(compact_s * 10) / 10},
                    {"compact_rows_per_s", std::round(static_cast<double>(history) / compact_s)},
                    {"log_bytes_before", bytes_before},
                    {"log_bytes_after", bytes_after},
                    {"log_bytes_after_vacuum_full", bytes_reclaimed},
                    {"replay_ms_all", replays},
                    {"snapshot_ms_all", snaps}});
    if (!o.json) {
      std::cout << "join: history " << history << ", state " << o.state << " nodes: full replay "
                << std::llround(replay.ms) << " ms (" << replay.patches << " patches), by snapshot "
                << std::llround(snap.ms) << " ms (" << snap.patches << " patches): " << runs.back()["speedup"]
                << "x; compacting " << history << " rows took " << runs.back()["compact_s"]
                << " s; log and ids " << bytes_before / (1 << 20) << " MiB -> " << bytes_after / (1 << 20)
                << " MiB (" << bytes_reclaimed / (1 << 20) << " MiB after VACUUM FULL)\n";
    }
  }
  if (o.json) {
    std::cout << nlohmann::ordered_json{{"command", "join"},
                                        {"runs", runs},
                                        {"parameters", {{"state", o.state}, {"repeat", o.repeat}, {"server", o.server}}},
                                        {"machine", machine()}}
                     .dump()
              << std::endl;
  }
  return ok ? 0 : 1;
}

}  // namespace syncbench
