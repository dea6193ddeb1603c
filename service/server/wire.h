#pragma once
// Encoded messages for the raw (ByteBuffer) Session and Watch methods.
//
// A committed patch is serialized once and the same bytes go to every
// subscriber; a history page is assembled from the log's stored bytes with
// no parse and no re-encode. Protobuf makes that possible: an embedded
// message is its bytes behind a tag and a length, and a field appended to a
// message's bytes is read as part of it (the stored body gets its
// server_version that way). What comes out is exactly what serializing the
// equivalent SessionResponse / Patch would produce, up to field order.

#include <grpcpp/support/byte_buffer.h>
#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace syncd::server::wire {

using Bytes = std::shared_ptr<const std::string>;

// Serializes `m`.
grpc::ByteBuffer message(const google::protobuf::MessageLite& m);
// Parses `buffer` into `m`; false when it does not decode.
bool parse(const grpc::ByteBuffer& buffer, google::protobuf::MessageLite* m);

// The encoded Patch `patch`, sent as SessionResponse{broadcast} (Session)
// or as itself (Watch). The bytes are shared, not copied.
grpc::ByteBuffer session_broadcast(const Bytes& patch);
grpc::ByteBuffer watch_patch(const Bytes& patch);

// SessionResponse{batch{responses...}} of encoded SessionResponses, which
// are shared, not copied (a session opened with `batch`).
class BatchBuilder {
 public:
  // Adds `response` when the batch stays within `max_bytes` (or is empty);
  // false when it did not fit.
  bool add(const grpc::ByteBuffer& response, std::size_t max_bytes);
  std::size_t size() const { return count_; }
  // The batch, which must hold two or more responses; the builder is empty again.
  grpc::ByteBuffer finish();

 private:
  std::vector<grpc::Slice> slices_;  // after the batch's own header, which finish() puts first
  std::size_t bytes_ = 0;            // of slices_
  std::size_t count_ = 0;
};

// A stored patch body (an encoded Patch) with server_version = `version`.
std::string with_version(std::string_view body, std::int64_t version);

// For Watch: a snapshot patch (a stored body with server_version and
// snapshot set), and the Patch {op: "reset", data: {patches: N}} that
// opens a snapshot of N patches.
std::string snapshot_patch(std::string_view body, std::int64_t version);
std::string snapshot_reset(std::int64_t version, std::size_t patches);

// SessionResponse{sync_state{...}} built from stored patch bodies.
class PageBuilder {
 public:
  // Adds `body` with server_version = `version`, copied once.
  void add(std::string_view body, std::int64_t version);
  bool empty() const { return patches_.empty(); }
  grpc::ByteBuffer finish(std::int64_t version, bool has_more, bool requested, bool snapshot = false);

 private:
  std::string patches_;  // field 2 of SyncState, repeated
};

}  // namespace syncd::server::wire
