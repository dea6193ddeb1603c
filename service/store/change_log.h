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

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
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
  // Why the commit could not be announced to other instances ("" when it
  // was): they find its versions by their head poll instead.
  std::string unannounced;
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
  // The log's horizon when the page was read. When it is past the version
  // asked for, those versions are gone: `patches` is empty and the reader
  // needs a snapshot (see snapshot()).
  std::int64_t compacted_through = 0;
  bool compacted(std::int64_t after) const { return after < compacted_through; }
};

// A channel's state at one version, as create_node patches then
// create_edge patches (bodies without server_version; `version` is V on
// each), read in one database snapshot.
struct Snapshot {
  std::int64_t version = 0;  // V: the head the state was read at
  std::int64_t compacted_through = 0;
  std::vector<StoredPatch> patches;
};

// Retention: a patch stays in the log while it is among the newest
// `versions` or younger than `seconds`; 0 turns a rule off, and with both
// off the log keeps everything.
struct Retention {
  std::int64_t versions = 0;
  std::int64_t seconds = 0;
  bool keeps_everything() const { return versions == 0 && seconds == 0; }
};

struct ChannelState {
  std::string channel;
  std::int64_t head = 0;
  std::string conflict_policy;
  std::string server_id;  // the service's stable id (server_identity)
  std::int64_t compacted_through = 0;
  // The channel's own retention; unset fields follow the server's defaults.
  std::optional<std::int64_t> retain_versions;
  std::optional<std::int64_t> retain_seconds;
};

// What ConfigureChannel changes; unset fields stay as they are.
struct ChannelSettings {
  std::optional<std::string> conflict_policy;
  std::optional<std::int64_t> retain_versions;
  std::optional<std::int64_t> retain_seconds;
};

struct CompactRequest {
  std::string channel;
  std::int64_t through = 0;    // >= 0, checked by the caller
  bool force = false;          // drop opaque patches too
  std::int64_t dedup_seconds;  // keep the ids of patches younger than this
  std::size_t batch_rows;      // log rows deleted per transaction
  // When it turns true, the compaction stops after the current transaction
  // (the horizon stays where that left it). Optional.
  const std::atomic<bool>* cancel = nullptr;
  // After each transaction, wait as long as it took: a compaction takes at
  // most half the time it could from the database, and commits the rest.
  bool paced = true;
};

struct CompactResult {
  std::int64_t compacted_through = 0;
  std::int64_t head = 0;
  // The horizon this call started from: it removed versions
  // (previous, compacted_through], none when they are equal.
  std::int64_t previous = 0;
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

  // Creates the channel if needed and applies `settings`.
  virtual absl::StatusOr<ChannelState> configure(const std::string& channel,
                                                 const ChannelSettings& settings) = 0;

  // The channel's state at its current head. An unknown channel is an
  // empty snapshot at version 0.
  virtual absl::StatusOr<Snapshot> snapshot(const std::string& channel) = 0;

  // Drops the log through `through` in transactions of `batch_rows` rows,
  // moving the ids of patches younger than the dedup window to
  // compacted_ids; each transaction moves the horizon. Commits are never
  // blocked for longer than one of them. One compactor per channel across
  // every instance (an advisory lock): when `wait` is false and another
  // holds it, returns ABORTED at once. Errors: NOT_FOUND (no such channel),
  // OUT_OF_RANGE (past the head), FAILED_PRECONDITION (opaque patches in
  // the range and not `force`), and the database errors above.
  virtual absl::StatusOr<CompactResult> compact(const CompactRequest& request, bool wait) = 0;

  // Channels whose retention (theirs, or `defaults` for unset fields)
  // allows compacting now, with the version to compact through.
  virtual absl::StatusOr<std::vector<std::pair<std::string, std::int64_t>>> retention_due(
      const Retention& defaults) = 0;

  // Forgets up to `limit` compacted ids older than `seconds`; returns how many.
  virtual absl::StatusOr<std::int64_t> expire_ids(std::int64_t seconds, std::size_t limit) = 0;

  // Deletes the channel (log, state, settings) and announces it to every
  // instance. Returns the head it had, or nothing when there was none.
  virtual absl::StatusOr<std::optional<std::int64_t>> delete_channel(const std::string& channel) = 0;
};

using ChangeLogFactory = std::function<std::unique_ptr<ChangeLog>()>;

}  // namespace syncd::store
