// syncctl: the sync service from a shell.
//
//   syncctl push CHANNEL --op create_node --node-id n1 --data '{"label":"Person"}'
//   echo '{"id":"p1","op":"opaque","data":{"x":1}}' | syncctl push CHANNEL
//   syncctl tail CHANNEL --from 0            # patches as JSON lines, then live
//   syncctl changes CHANNEL --from 10        # the log after version 10
//   syncctl info CHANNEL

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "api/grpc.h"
#include "codec/json_codec.h"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage = R"(syncctl - talk to syncd from a shell

Usage:
  syncctl push CHANNEL [patch flags]   store patches (flags, or JSON lines on stdin); prints acks
  syncctl tail CHANNEL [--from N]      print patches as JSON lines, then live ones as they come
  syncctl changes CHANNEL [--from N]   print the log after version N, then exit
  syncctl info CHANNEL                 head version, horizon, patch count, clients, settings
  syncctl snapshot CHANNEL             print the channel's state as create_node/create_edge lines
  syncctl configure CHANNEL [flags]    set the conflict policy and retention (--retain-versions N,
                                       --retain-seconds S, --policy P)
  syncctl compact CHANNEL --through N  drop the log up to version N (--force: opaque history too)
  syncctl delete CHANNEL --yes         delete the channel: log, state and settings

Every command takes --server HOST:PORT (default $SYNC_SERVER or localhost:50051)
and --help. Exit status: 0 ok, 1 the server failed the call, 2 bad usage,
3 push: at least one patch was rejected.
)";

std::string default_server() {
  const char* s = std::getenv("SYNC_SERVER");
  return s != nullptr && *s != '\0' ? s : "localhost:50051";
}

void print_info(const api::ChannelInfo& info) {
  nlohmann::ordered_json j;
  j["channel"] = info.channel();
  j["headVersion"] = info.head_version();
  j["compactedThrough"] = info.compacted_through();
  j["patchCount"] = info.patch_count();
  j["connectedClients"] = info.connected_clients();
  j["conflictPolicy"] = info.conflict_policy();
  j["retainVersions"] = info.retain_versions();
  j["retainSeconds"] = info.retain_seconds();
  std::cout << j.dump() << "\n";
}

int fail(const grpc::Status& st, const char* what) {
  std::cerr << "syncctl " << what << ": " << st.error_message() << " (" << st.error_code() << ")\n";
  return 1;
}

// Parses flags shared by every command plus `extra`; returns 0 to go on,
// otherwise the exit status.
int parse(int argc, char** argv, const char* usage, po::options_description extra, po::variables_map& vm,
          std::string& server, std::string& channel) {
  po::options_description flags(usage);
  flags.add_options()("help,h", "show this help")(
      "server", po::value<std::string>(&server)->default_value(default_server(), "$SYNC_SERVER or localhost:50051"),
      "syncd's gRPC address");
  flags.add(extra);
  po::options_description all;
  all.add(flags).add_options()("channel", po::value<std::string>(&channel));
  po::positional_options_description pos;
  pos.add("channel", 1);
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "syncctl: " << e.what() << "\n\n" << flags << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return -1;
  }
  if (channel.empty()) {
    std::cerr << "syncctl: name a channel\n\n" << flags << "\n";
    return 2;
  }
  return 0;
}

std::string ack_json(const api::Ack& a) {
  nlohmann::ordered_json j;
  j["patchId"] = a.patch_id();
  j["status"] = bridge::codec::status_word(a.status());
  j["serverVersion"] = a.server_version();
  if (!a.code().empty()) j["code"] = a.code();
  if (!a.reason().empty()) j["reason"] = a.reason();
  return j.dump();
}


}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  std::string server, channel;
  po::variables_map vm;

  if (command == "push") {
    std::string op, id, client_id, node_id, edge_id, target_type, target_id, key, value, data;
    po::options_description f("Patch (without --op, JSON patches are read from stdin, one per line)");
    f.add_options()("op", po::value<std::string>(&op), "create_node, update_node, delete_node, create_edge, ...")(
        "id", po::value<std::string>(&id), "patch id (default: random)")(
        "client-id", po::value<std::string>(&client_id)->default_value("syncctl"), "client id")(
        "node-id", po::value<std::string>(&node_id), "")("edge-id", po::value<std::string>(&edge_id), "")(
        "target-type", po::value<std::string>(&target_type), "node or edge (set/remove_property)")(
        "target-id", po::value<std::string>(&target_id), "")("key", po::value<std::string>(&key), "property key")(
        "value", po::value<std::string>(&value), "property value, as JSON")(
        "data", po::value<std::string>(&data), "data, as a JSON object");
    if (int rc = parse(argc - 1, argv + 1, "Usage: syncctl push CHANNEL [flags]\n\nFlags", f, vm, server, channel)) {
      return rc < 0 ? 0 : rc;
    }
    std::vector<api::Patch> patches;
    auto add = [&](const std::string& json, std::size_t line) -> bool {
      auto r = bridge::codec::patch_from_json(json);
      if (auto* e = std::get_if<bridge::codec::Error>(&r)) {
        std::cerr << "syncctl push: " << (line ? "line " + std::to_string(line) + ": " : "") << e->message << "\n";
        return false;
      }
      patches.push_back(std::get<api::Patch>(std::move(r)));
      return true;
    };
    if (!op.empty()) {
      nlohmann::json j = {{"op", op}, {"clientId", client_id}};
      if (id.empty()) id = "syncctl-" + std::to_string(std::random_device{}()) + std::to_string(std::random_device{}());
      j["id"] = id;
      for (auto [k, v] : {std::pair{"nodeId", &node_id}, {"edgeId", &edge_id}, {"targetType", &target_type},
                          {"targetId", &target_id}, {"propertyKey", &key}}) {
        if (!v->empty()) j[k] = *v;
      }
      for (auto [k, v] : {std::pair{"propertyValue", &value}, {"data", &data}}) {
        if (v->empty()) continue;
        auto parsed = nlohmann::json::parse(*v, nullptr, false);
        if (parsed.is_discarded()) {
          std::cerr << "syncctl push: --" << (std::string(k) == "data" ? "data" : "value") << " is not valid JSON\n";
          return 2;
        }
        j[k] = parsed;
      }
      if (!add(j.dump(), 0)) return 2;
    } else {
      std::string line;
      for (std::size_t n = 1; std::getline(std::cin, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        if (!add(line, n)) return 2;
      }
    }
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    bool rejected = false;
    for (std::size_t start = 0; start < patches.size(); start += 500) {
      api::PushRequest req;
      req.set_channel(channel);
      for (std::size_t i = start; i < std::min(patches.size(), start + 500); ++i) *req.add_patches() = patches[i];
      api::PushResponse resp;
      grpc::ClientContext ctx;
      if (auto st = stub->Push(&ctx, req, &resp); !st.ok()) return fail(st, "push");
      for (const auto& a : resp.acks()) {
        std::cout << ack_json(a) << "\n";
        rejected |= a.status() == api::Ack::REJECTED;
      }
    }
    std::cout.flush();
    return rejected ? 3 : 0;
  }

  if (command == "tail" || command == "changes") {
    std::int64_t from = 0, limit = 0;
    bool no_history = false;
    po::options_description f("Reading");
    f.add_options()("from", po::value<std::int64_t>(&from)->default_value(0), "start after this version")(
        "limit", po::value<std::int64_t>(&limit)->default_value(0), "stop after this many patches (0: no limit)");
    if (command == "tail") f.add_options()("head", po::bool_switch(&no_history), "skip the history: live patches only");
    const std::string usage = "Usage: syncctl " + command + " CHANNEL [flags]\n\nFlags";
    if (int rc = parse(argc - 1, argv + 1, usage.c_str(), f, vm, server, channel)) return rc < 0 ? 0 : rc;
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    std::int64_t printed = 0;
    if (command == "tail") {
      grpc::ClientContext ctx;
      api::WatchRequest req;
      req.set_channel(channel);
      req.set_from_version(from);
      req.set_no_history(no_history);
      auto reader = stub->Watch(&ctx, req);
      api::Patch p;
      while (reader->Read(&p)) {
        std::cout << bridge::codec::patch_to_json(p) << std::endl;
        if (limit > 0 && ++printed >= limit) {
          ctx.TryCancel();
          return 0;
        }
      }
      return fail(reader->Finish(), "tail");
    }
    for (;;) {
      api::GetChangesRequest req;
      req.set_channel(channel);
      req.set_from_version(from);
      api::GetChangesResponse resp;
      grpc::ClientContext ctx;
      if (auto st = stub->GetChanges(&ctx, req, &resp); !st.ok()) return fail(st, "changes");
      for (const auto& p : resp.patches()) {
        std::cout << bridge::codec::patch_to_json(p) << "\n";
        if (limit > 0 && ++printed >= limit) return 0;
      }
      from = resp.version();
      if (!resp.has_more()) return 0;
    }
  }

  if (command == "snapshot") {
    std::int64_t limit = 0;
    po::options_description f("Reading");
    f.add_options()("page-size", po::value<std::int64_t>(&limit)->default_value(0), "patches per page (0: the server's)");
    if (int rc = parse(argc - 1, argv + 1, "Usage: syncctl snapshot CHANNEL [flags]\n\nPrints one JSON line per "
                                           "patch; the version on stderr.\n\nFlags", f, vm, server, channel)) {
      return rc < 0 ? 0 : rc;
    }
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    api::GetSnapshotRequest req;
    req.set_channel(channel);
    req.set_limit(static_cast<std::int32_t>(std::clamp<std::int64_t>(limit, 0, INT32_MAX)));
    auto reader = stub->GetSnapshot(&ctx, req);
    api::SnapshotPage page;
    bool first = true;
    while (reader->Read(&page)) {
      if (first) std::cerr << "snapshot of " << channel << " at version " << page.version() << "\n";
      first = false;
      for (const auto& p : page.patches()) std::cout << bridge::codec::patch_to_json(p) << "\n";
    }
    std::cout.flush();
    if (auto st = reader->Finish(); !st.ok()) return fail(st, "snapshot");
    return 0;
  }

  if (command == "configure") {
    std::string policy;
    std::int64_t versions = -1, seconds = -1;
    po::options_description f("Settings (unset ones stay as they are)");
    f.add_options()("policy", po::value<std::string>(&policy), "last_writer_wins or reject_stale")(
        "retain-versions", po::value<std::int64_t>(&versions), "keep at least the newest N patches (0: no limit)")(
        "retain-seconds", po::value<std::int64_t>(&seconds), "keep patches younger than this (0: no limit)");
    if (int rc = parse(argc - 1, argv + 1, "Usage: syncctl configure CHANNEL [flags]\n\nFlags", f, vm, server, channel)) {
      return rc < 0 ? 0 : rc;
    }
    api::ConfigureChannelRequest req;
    req.set_channel(channel);
    req.set_conflict_policy(policy);
    if (vm.count("retain-versions")) req.set_retain_versions(versions);
    if (vm.count("retain-seconds")) req.set_retain_seconds(seconds);
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    api::ChannelInfo info;
    grpc::ClientContext ctx;
    if (auto st = stub->ConfigureChannel(&ctx, req, &info); !st.ok()) return fail(st, "configure");
    print_info(info);
    return 0;
  }

  if (command == "compact") {
    std::int64_t through = -1;
    bool force = false;
    po::options_description f("Compaction");
    f.add_options()("through", po::value<std::int64_t>(&through)->required(), "the last version to drop (at most the head)")(
        "force", po::bool_switch(&force), "also drop opaque (CRDT) patches, which no snapshot can rebuild");
    if (int rc = parse(argc - 1, argv + 1, "Usage: syncctl compact CHANNEL --through N [flags]\n\nFlags", f, vm, server,
                       channel)) {
      return rc < 0 ? 0 : rc;
    }
    api::CompactRequest req;
    req.set_channel(channel);
    req.set_through_version(through);
    req.set_force(force);
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    api::CompactResponse resp;
    grpc::ClientContext ctx;
    std::cerr << "compacting " << channel << " through version " << through << "...\n";
    if (auto st = stub->Compact(&ctx, req, &resp); !st.ok()) return fail(st, "compact");
    nlohmann::ordered_json j;
    j["channel"] = channel;
    j["compactedThrough"] = resp.compacted_through();
    j["headVersion"] = resp.head_version();
    std::cout << j.dump() << "\n";
    return 0;
  }

  if (command == "delete") {
    bool yes = false;
    po::options_description f("Deletion");
    f.add_options()("yes", po::bool_switch(&yes), "really delete: the log, the state and the settings");
    if (int rc = parse(argc - 1, argv + 1, "Usage: syncctl delete CHANNEL --yes\n\nFlags", f, vm, server, channel)) {
      return rc < 0 ? 0 : rc;
    }
    if (!yes) {
      std::cerr << "syncctl delete: this removes channel \"" << channel << "\" for good; add --yes to go ahead\n";
      return 2;
    }
    api::DeleteChannelRequest req;
    req.set_channel(channel);
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    api::DeleteChannelResponse resp;
    grpc::ClientContext ctx;
    if (auto st = stub->DeleteChannel(&ctx, req, &resp); !st.ok()) return fail(st, "delete");
    std::cout << "deleted " << channel << " (it was at version " << resp.head_version() << ")\n";
    return 0;
  }

  if (command == "info") {
    if (int rc = parse(argc - 1, argv + 1, "Usage: syncctl info CHANNEL [flags]\n\nFlags", {}, vm, server, channel)) {
      return rc < 0 ? 0 : rc;
    }
    auto stub = api::Sync::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    api::GetChannelInfoRequest req;
    req.set_channel(channel);
    api::ChannelInfo info;
    grpc::ClientContext ctx;
    if (auto st = stub->GetChannelInfo(&ctx, req, &info); !st.ok()) return fail(st, "info");
    print_info(info);
    return 0;
  }

  std::cerr << "syncctl: unknown command \"" << command << "\"\n\n" << kUsage;
  return 2;
}
