#pragma once
// A C++ client of sync.v1 with the semantics of clients/js: an optimistic
// local graph, a pending queue, rollback on rejection, reconnection with
// exponential backoff and jitter, and resumption from the last confirmed
// version with pending patches resent under their ids. When that version
// is older than the channel's compacted history, the server's snapshot
// replaces the confirmed state (pending patches stay on top).
//
// The local graph is the confirmed state (the server's patches applied in
// version order) plus the unacknowledged patches, in the order they were
// made; the rules are syncd's own (graph::Graph). Thread-safe: edits and
// reads from any thread; callbacks run on the client's stream thread and
// must not call back into the client.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/grpc.h"
#include "graph/graph.h"

namespace syncd::client {

struct ClientOptions {
  std::string server = "localhost:50051";
  std::string channel = "default";
  std::string client_id;  // random when empty
  std::chrono::milliseconds reconnect_initial{500};
  std::chrono::milliseconds reconnect_max{30'000};
  std::chrono::milliseconds heartbeat{15'000};
};

struct Rejection {
  api::Patch patch;
  std::string code;
  std::string reason;
};

class SyncClient {
 public:
  explicit SyncClient(ClientOptions options);  // connects in the background
  ~SyncClient();                               // closes the stream and joins

  // Edits: applied locally at once, sent, kept pending until acknowledged.
  // Return the new element's id where there is one.
  std::string create_node(const std::string& label, const google::protobuf::Struct& properties = {},
                          std::string node_id = {});
  void update_node(const std::string& node_id, const google::protobuf::Struct& properties);
  void delete_node(const std::string& node_id);
  std::string create_edge(const std::string& label, const std::string& from, const std::string& to,
                          const google::protobuf::Struct& properties = {}, std::string edge_id = {});
  void delete_edge(const std::string& edge_id);
  void set_property(const std::string& target_type, const std::string& target_id, const std::string& key,
                    const google::protobuf::Value& value);
  void remove_property(const std::string& target_type, const std::string& target_id, const std::string& key);
  // Any patch (id, client id, timestamp and base version are filled in).
  void submit(api::Patch patch);

  // Reads of the local graph.
  std::optional<graph::Element> node(const std::string& id) const;
  std::optional<graph::Element> edge(const std::string& id) const;
  std::size_t node_count() const;
  std::int64_t server_version() const;
  std::size_t pending_count() const;
  bool connected() const;

  void on_change(std::function<void()> fn);
  void on_rejected(std::function<void(const Rejection&)> fn);

  // Waits until `pred` holds (checked after every change) or `timeout`.
  bool wait_until(const std::function<bool(const SyncClient&)>& pred, std::chrono::milliseconds timeout) const;

 private:
  void run();
  void session(std::unique_lock<std::mutex>& lock);
  void receive(const api::SessionResponse& msg);  // requires mu_
  void arrive(const api::Patch& p);               // requires mu_
  void rebuild();                                 // requires mu_
  // The live stream. Writes never hold mu_: a Write that waits on flow
  // control must not stop the reader from taking the acks that end the wait.
  struct Link;
  void send(const std::shared_ptr<Link>& link, const api::Patch& p);

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<api::Sync::Stub> stub_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  graph::Graph confirmed_;                  // the server's state at version_
  std::int64_t snapshot_at_ = -1;           // receiving a snapshot at this version
  std::int64_t version_ = 0;
  std::map<std::int64_t, api::Patch> arrived_;  // stored, after a gap
  std::vector<api::Patch> pending_;         // ours, unacknowledged, oldest first
  graph::Graph view_;                       // confirmed_ + arrived_ + pending_
  bool connected_ = false;
  std::uint64_t changes_ = 0;               // bumped on every change, for wait_until
  bool stopping_ = false;
  grpc::ClientContext* ctx_ = nullptr;      // the live stream's, to cancel it
  std::shared_ptr<Link> link_;              // null while offline
  std::function<void()> on_change_;
  std::function<void(const Rejection&)> on_rejected_;
  std::thread thread_;
};

}  // namespace syncd::client
