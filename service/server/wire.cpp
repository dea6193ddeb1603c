#include "server/wire.h"

#include <google/protobuf/wire_format_lite.h>

#include <vector>

#include "api/messages.h"

namespace syncd::server::wire {
namespace {

using google::protobuf::internal::WireFormatLite;

void put_varint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Tag and length of a length-delimited field holding `size` bytes.
void put_header(std::string* out, int field, std::size_t size) {
  put_varint(out, WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  put_varint(out, size);
}

// A slice over `bytes` that keeps them alive as long as gRPC holds it.
grpc::Slice shared_slice(const Bytes& bytes) {
  auto* owner = new Bytes(bytes);
  return grpc::Slice(const_cast<char*>(bytes->data()), bytes->size(),
                     [](void* p) { delete static_cast<Bytes*>(p); }, owner);
}

grpc::Slice owned_slice(std::string bytes) {
  auto* owner = new std::string(std::move(bytes));
  return grpc::Slice(owner->data(), owner->size(), [](void* p) { delete static_cast<std::string*>(p); }, owner);
}

}  // namespace

grpc::ByteBuffer message(const google::protobuf::MessageLite& m) {
  grpc::Slice s = owned_slice(m.SerializeAsString());
  return grpc::ByteBuffer(&s, 1);
}

bool parse(const grpc::ByteBuffer& buffer, google::protobuf::MessageLite* m) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  if (slices.size() == 1) return m->ParseFromArray(slices[0].begin(), static_cast<int>(slices[0].size()));
  std::string joined;
  for (const auto& s : slices) joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return m->ParseFromString(joined);
}

grpc::ByteBuffer session_broadcast(const Bytes& patch) {
  std::string header;
  put_header(&header, api::SessionResponse::kBroadcastFieldNumber, patch->size());
  grpc::Slice slices[] = {grpc::Slice(header), shared_slice(patch)};
  return grpc::ByteBuffer(slices, 2);
}

bool BatchBuilder::add(const grpc::ByteBuffer& response, std::size_t max_bytes) {
  std::string header;
  put_header(&header, api::ResponseBatch::kResponsesFieldNumber, response.Length());
  const std::size_t grown = bytes_ + header.size() + response.Length();
  if (count_ > 0 && grown > max_bytes) return false;
  std::vector<grpc::Slice> body;
  if (!response.Dump(&body).ok()) return false;
  slices_.emplace_back(header);
  for (grpc::Slice& s : body) slices_.push_back(std::move(s));
  bytes_ = grown;
  ++count_;
  return true;
}

grpc::ByteBuffer BatchBuilder::finish() {
  std::string header;
  put_header(&header, api::SessionResponse::kBatchFieldNumber, bytes_);
  std::vector<grpc::Slice> all;
  all.reserve(slices_.size() + 1);
  all.emplace_back(header);
  for (grpc::Slice& s : slices_) all.push_back(std::move(s));
  slices_.clear();
  bytes_ = 0;
  count_ = 0;
  return grpc::ByteBuffer(all.data(), all.size());
}

grpc::ByteBuffer watch_patch(const Bytes& patch) {
  grpc::Slice s = shared_slice(patch);
  return grpc::ByteBuffer(&s, 1);
}

namespace {

// The server_version field, as appended to a stored body.
std::string version_field(std::int64_t version) {
  std::string out;
  put_varint(&out, WireFormatLite::MakeTag(api::Patch::kServerVersionFieldNumber, WireFormatLite::WIRETYPE_VARINT));
  put_varint(&out, static_cast<std::uint64_t>(version));
  return out;  // at most 11 bytes: no allocation
}

}  // namespace

std::string with_version(std::string_view body, std::int64_t version) {
  const std::string field = version_field(version);
  std::string out;
  out.reserve(body.size() + field.size());
  out.append(body);
  out.append(field);
  return out;
}

std::string snapshot_patch(std::string_view body, std::int64_t version) {
  std::string out = with_version(body, version);
  put_varint(&out, WireFormatLite::MakeTag(api::Patch::kSnapshotFieldNumber, WireFormatLite::WIRETYPE_VARINT));
  put_varint(&out, 1);
  return out;
}

std::string snapshot_reset(std::int64_t version, std::size_t patches) {
  api::Patch reset;
  reset.set_op("reset");
  reset.set_server_version(version);
  reset.set_snapshot(true);
  (*reset.mutable_data()->mutable_fields())["patches"].set_number_value(static_cast<double>(patches));
  return reset.SerializeAsString();
}

void PageBuilder::add(std::string_view body, std::int64_t version) {
  const std::string field = version_field(version);
  put_header(&patches_, api::SyncState::kPatchesFieldNumber, body.size() + field.size());
  patches_.append(body);
  patches_.append(field);
}

grpc::ByteBuffer PageBuilder::finish(std::int64_t version, bool has_more, bool requested, bool snapshot) {
  // SyncState: version (1), patches (2), has_more (3), requested (4),
  // snapshot (5); proto3
  // leaves out fields at their default values.
  std::string state;
  if (version != 0) {
    put_varint(&state, WireFormatLite::MakeTag(api::SyncState::kVersionFieldNumber, WireFormatLite::WIRETYPE_VARINT));
    put_varint(&state, static_cast<std::uint64_t>(version));
  }
  std::string tail;
  if (has_more) {
    put_varint(&tail, WireFormatLite::MakeTag(api::SyncState::kHasMoreFieldNumber, WireFormatLite::WIRETYPE_VARINT));
    put_varint(&tail, 1);
  }
  if (requested) {
    put_varint(&tail, WireFormatLite::MakeTag(api::SyncState::kRequestedFieldNumber, WireFormatLite::WIRETYPE_VARINT));
    put_varint(&tail, 1);
  }
  if (snapshot) {
    put_varint(&tail, WireFormatLite::MakeTag(api::SyncState::kSnapshotFieldNumber, WireFormatLite::WIRETYPE_VARINT));
    put_varint(&tail, 1);
  }
  std::string head;
  put_header(&head, api::SessionResponse::kSyncStateFieldNumber, state.size() + patches_.size() + tail.size());
  head.append(state);
  grpc::Slice slices[] = {owned_slice(std::move(head)), owned_slice(std::move(patches_)), owned_slice(std::move(tail))};
  patches_.clear();
  return grpc::ByteBuffer(slices, 3);
}

}  // namespace syncd::server::wire
