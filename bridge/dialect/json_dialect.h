#pragma once
// The JSON protocol of /sync (PROTOCOL.md; codec/json_codec.h).

#include "codec/json_parse.h"
#include "dialect/dialect.h"

namespace bridge::dialect {

class JsonDialect final : public Dialect {
 public:
  explicit JsonDialect(const codec::ParseLimits& limits) : limits_(limits) {}

  bool history() const override { return true; }
  bool snapshots() const override { return true; }
  std::variant<codec::ClientMessage, codec::Error> decode(std::string_view text) override;
  Frame joined(const api::ChannelInfo& info) override;
  Frame page(const api::SyncState& state, bool continues) override;
  Frame broadcast(const upstream::FeedItem& item) override;
  Frame ack(const api::Ack& ack) override;
  Frame error(std::string_view code, std::string_view message) override;

 private:
  const codec::ParseLimits& limits_;
};

}  // namespace bridge::dialect
