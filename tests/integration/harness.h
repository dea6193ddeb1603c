#pragma once
// Real parts for integration tests: a fresh PostgreSQL database per test
// (on the server scripts/test starts, SYNC_TEST_DATABASE_URL), syncd
// processes started from SYNCD_BIN, and gRPC clients.

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/grpc.h"

namespace syncd::testing {

// A database created for one test, migrated, dropped afterwards.
class TestDatabase {
 public:
  explicit TestDatabase(bool migrate = true);
  ~TestDatabase();
  const std::string& url() const { return url_; }
  // One value from a SQL query, as text ("" for NULL or no row).
  std::string query_value(const std::string& sql) const;
  std::vector<std::vector<std::string>> query(const std::string& sql) const;
  void exec(const std::string& sql) const;
  // An outage as syncd sees it: false drops every connection to the
  // database and refuses new ones; true lets them in again.
  void set_allow_connections(bool allow) const;

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// A syncd process.
class Syncd {
 public:
  // `grpc_port` 0 picks a free port; a given one lets a test restart an
  // instance where its clients expect it.
  explicit Syncd(const std::string& database_url, std::vector<std::string> extra_args = {}, int grpc_port = 0);
  ~Syncd();  // SIGKILL if still running

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::unique_ptr<api::Sync::Stub> stub() const;
  std::shared_ptr<grpc::Channel> channel() const;

  int terminate();  // SIGTERM; returns the exit status
  void kill9();
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int grpc_port_ = 0;
  int http_port_ = 0;
};

// GET `path` from 127.0.0.1:`port`: the whole HTTP response ("" when the
// connection is refused).
std::string http_get(int port, const std::string& path);

// The value of an unlabelled counter or gauge in `s`'s /metrics (-1 when
// it is missing).
double metric_value(const Syncd& s, const std::string& name);

// Runs a syncd subcommand to completion; returns exit status and output.
struct CommandResult {
  int status;
  std::string output;
};
CommandResult run_syncd(const std::vector<std::string>& args);

// Returns once every patch syncd took for `channel` before this call has
// been answered: it pushes a marker patch (id `marker_id`) and waits for
// its ack, which comes after theirs, since a channel's submissions commit
// in the order they arrive. A stream that ended early (e.g. on a commit
// whose outcome is unknown) may leave patches queued that still commit.
// False if syncd never answered.
bool wait_idle(const Syncd& s, const std::string& channel, const std::string& marker_id);

// A Session stream read by a background thread.
class SessionClient {
 public:
  // `token`: a JWT sent as `authorization: Bearer <token>` (none when empty).
  SessionClient(const Syncd& server, const std::string& channel, std::int64_t from_version = 0,
                bool no_history = false, const std::string& client_id = "", const std::string& token = "");
  ~SessionClient();

  // Waits for `opened`; false on timeout or failure.
  bool wait_opened(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool send(const api::Patch& patch);
  bool send(const api::SessionRequest& request);
  void finish_writes();

  // Waits for the ack of `patch_id`.
  std::optional<api::Ack> ack(const std::string& patch_id,
                              std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits until `pred` holds over the responses received so far. `pred`
  // runs with the client's lock held: it must use only its argument.
  bool wait_for(const std::function<bool(const std::vector<api::SessionResponse>&)>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::vector<api::SessionResponse> responses();
  // Versions delivered by sync_state pages and broadcasts, in arrival order.
  std::vector<std::int64_t> delivered_versions();
  // Waits for the stream to end; its status.
  grpc::Status finish(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  bool ended();

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<api::Sync::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<api::SessionRequest, api::SessionResponse>> stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<api::SessionResponse> responses_;
  bool ended_ = false;
  std::thread reader_;
  std::mutex write_mu_;
};

// from, from+1, ..., to.
std::vector<std::int64_t> iota(std::int64_t from, std::int64_t to);

// Versions delivered by sync_state pages and broadcasts in `responses`, in
// arrival order (for wait_for predicates, which must not call back into
// the client).
std::vector<std::int64_t> versions_in(const std::vector<api::SessionResponse>& responses);

// Writes `patch` into the log of `channel` (an existing row) as version
// `version` and moves the head there, as another writer would, without
// announcing it or touching the state tables.
void store_patch_directly(const TestDatabase& db, const std::string& channel, const api::Patch& patch,
                          std::int64_t version);

// Checks the stored log and state of `channel`, read in one REPEATABLE
// READ snapshot: versions 1..head with no gap, and the state tables equal
// to the fold of the log. Returns a description of the first difference,
// or "" when all holds.
std::string verify_log_and_state(const TestDatabase& db, const std::string& channel);

}  // namespace syncd::testing
