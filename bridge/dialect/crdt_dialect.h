#pragma once
// The CRDT change-relay dialect of /crdt (codec/crdt_codec.h): only opaque
// patches mean anything to it; a client starts at the head (it pulls what
// it misses), and a pull is answered by one update holding every change
// after the pulled version.

#include <string>

#include "codec/json_parse.h"
#include "dialect/dialect.h"

namespace bridge::dialect {

class CrdtDialect final : public Dialect {
 public:
  CrdtDialect(std::string channel, const codec::ParseLimits& limits) : channel_(std::move(channel)), limits_(limits) {}

  bool history() const override { return false; }
  bool snapshots() const override { return false; }
  std::variant<codec::ClientMessage, codec::Error> decode(std::string_view text) override;
  Frame joined(const api::ChannelInfo& info) override;
  Frame page(const api::SyncState& state, bool continues) override;
  // The server's site id is the service's stable id, the same for every
  // socket, so one frame serves them all.
  Frame broadcast(const upstream::FeedItem& item) override;
  Frame ack(const api::Ack& ack) override;
  Frame error(std::string_view code, std::string_view message) override;

 private:
  const std::string channel_;
  const codec::ParseLimits& limits_;
  std::string server_id_;                     // from joined()
  google::protobuf::ListValue pull_changes_;  // a pull's pages so far
};

}  // namespace bridge::dialect
