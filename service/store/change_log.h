#pragma once
// The change log: where patches become durable. The engine talks to this
// interface; PgChangeLog implements it on PostgreSQL.
//
// An instance holds one database connection and is not thread-safe: give
// each thread its own (see ChangeLogFactory). No method throws; failures
// come back as absl::Status:
//   UNAVAILABLE  the database could not be reached or the transaction was
//                rolled back; nothing was stored, retrying is safe.
//   DEADLINE_EXCEEDED  the database did not answer in time (see
//                conninfo.h); the transaction was never committed and the
//                connection is dropped. Retrying soon would likely wait as
//                long again.
//   UNKNOWN      the connection broke during COMMIT: the outcome is not
//                known. Resending the same patch ids tells (duplicates are
//                answered `ignored` with their version).
//   INTERNAL     anything else; nothing was stored.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/messages.h"

namespace syncd::store {

using PatchPtr = std::shared_ptr<const api::Patch>;

// A patch bound for a channel. It has passed graph::check_shape.
struct Submission {
  std::string channel;
  api::Patch patch;
};

struct ChannelBatch {
  std::string channel;
  std::vector<PatchPtr> patches;  // accepted, in version order, server_version set
  std::int64_t head = 0;
};

struct CommitResult {
  std::vector<api::Ack> acks;         // one per submission, in submission order
  std::vector<ChannelBatch> accepted;  // channels with at least one accepted patch
};

// A patch as the log stores it: its encoded bytes (a Patch without
// server_version), so readers can pass them on without decoding them, and
// what a reader needs to know without decoding.
struct StoredPatch {
  std::int64_t version = 0;
  std::string id;
  std::string client_id;
  std::string body;
  // The Patch with server_version set; false when the body does not decode.
  bool decode(api::Patch* out) const {
    if (!out->ParseFromString(body)) return false;
    out->set_server_version(version);
    return true;
  }
};

struct Page {
  std::vector<StoredPatch> patches;  // consecutive versions after the requested one
  std::int64_t head = 0;          // the channel head when the page was read
  bool has_more = false;          // versions past the page's last, up to head
};

struct ChannelState {
  std::string channel;
  std::int64_t head = 0;
  std::string conflict_policy;
  std::string server_id;  // the service's stable id (server_identity)
};

class ChangeLog {
 public:
  virtual ~ChangeLog() = default;

  // Stores a batch in one transaction: versions assigned per channel in
  // submission order under a lock on the channel row, each patch validated
  // against the state left by the ones before it, duplicates answered
  // `ignored`, the peer clock of accepted patches recorded. Acks in the
  // result are true once this returns OK.
  virtual absl::StatusOr<CommitResult> commit(const std::vector<Submission>& batch) = 0;

  // Up to `limit` patches (and about `max_bytes`, at least one patch) after
  // version `after`. An unknown channel reads as empty with head 0.
  virtual absl::StatusOr<Page> read(const std::string& channel, std::int64_t after,
                                    std::size_t limit, std::size_t max_bytes) = 0;

  // An unknown channel reads as head 0 with the default policy.
  virtual absl::StatusOr<ChannelState> channel_state(const std::string& channel) = 0;

  // Creates the channel if needed and sets its conflict policy.
  virtual absl::StatusOr<ChannelState> configure(const std::string& channel,
                                                 const std::string& conflict_policy) = 0;
};

using ChangeLogFactory = std::function<std::unique_ptr<ChangeLog>()>;

}  // namespace syncd::store
