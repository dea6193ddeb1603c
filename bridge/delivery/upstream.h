#pragma once
// What a socket's delivery asks of syncd: the unary sync.v1 calls, made
// with the socket's own token (upstream/calls.h), for one channel.
//
// Contract for implementations: every `done` runs later, on the socket's
// strand, never inside the call, and only while the socket (which owns the
// Delivery that made the call) is alive: once the socket is gone, answers
// are dropped (see delivery::Post).

#include <vector>

#include "api/messages.h"
#include "upstream/calls.h"

namespace bridge::delivery {

template <class Response>
using Done = upstream::Done<Response>;

class Upstream {
 public:
  virtual ~Upstream() = default;
  virtual void channel_info(api::GetChannelInfoRequest request, Done<api::ChannelInfo> done) = 0;
  virtual void get_changes(api::GetChangesRequest request, Done<api::GetChangesResponse> done) = 0;
  // Every page of the channel's state, once the stream has ended.
  virtual void get_snapshot(api::GetSnapshotRequest request, Done<std::vector<api::SnapshotPage>> done) = 0;
  virtual void push(api::PushRequest request, Done<api::PushResponse> done) = 0;
};

}  // namespace bridge::delivery
