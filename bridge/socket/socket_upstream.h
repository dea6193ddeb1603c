#pragma once
// delivery::Upstream for a socket: the unary calls of upstream/calls.h with
// the socket's current token, their answers posted to its strand.

#include <string>

#include "api/grpc.h"
#include "delivery/feed_link.h"
#include "delivery/upstream.h"

namespace bridge {

class SocketUpstream final : public delivery::Upstream {
 public:
  // `authorization` is the socket's, read at each call (a refresh replaces it).
  SocketUpstream(api::Sync::Stub& stub, const std::string& authorization, delivery::Post post)
      : stub_(stub), authorization_(authorization), post_(std::move(post)) {}

  void channel_info(api::GetChannelInfoRequest request, delivery::Done<api::ChannelInfo> done) override;
  void get_changes(api::GetChangesRequest request, delivery::Done<api::GetChangesResponse> done) override;
  void get_snapshot(api::GetSnapshotRequest request, delivery::Done<std::vector<api::SnapshotPage>> done) override;
  void push(api::PushRequest request, delivery::Done<api::PushResponse> done) override;

 private:
  template <class Response>
  delivery::Done<Response> on_strand(delivery::Done<Response> done);

  api::Sync::Stub& stub_;
  const std::string& authorization_;
  const delivery::Post post_;
};

}  // namespace bridge
