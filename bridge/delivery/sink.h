#pragma once
// Where a socket's delivery sends what the client should see; the socket
// encodes it in its dialect (dialect/dialect.h) and queues the frames.
// Called on the socket's strand only.

#include <grpcpp/support/status.h>

#include <cstddef>

#include "api/messages.h"
#include "delivery/sequencer.h"

namespace bridge::delivery {

class Sink {
 public:
  virtual ~Sink() = default;

  // Frames queued for the client and not yet written. Delivery reads the
  // log, rejoins the feed or serves a request only while this is under
  // half the queue limit, and falls behind the feed at the limit.
  virtual std::size_t backlog() const = 0;

  // Syncd has accepted the socket's token (its first answer). False: the
  // socket refuses the subject (a per-subject cap) and is closing.
  virtual bool admitted() = 0;

  // A join without history (since=head, /crdt): where the channel stands.
  virtual void joined(const api::ChannelInfo& info) = 0;
  // A page of history: the first join's pages, a snapshot's pages
  // (`snapshot` marks the first), a sync request's pages (`requested`), and
  // the empty page that closes a snapshot sent mid-stream. `continues`:
  // this request's next page follows.
  virtual void page(api::SyncState& state, bool continues) = 0;
  // The channel's next version for this client: a broadcast or an ack; or
  // an ack that holds no version (rejected, ignored), at once.
  virtual void deliver(const Sequencer::Out& out) = 0;

  // A sync request failed; the socket stays open.
  virtual void request_failed(const grpc::Status& status) = 0;
  // The channel cannot go on for this client: report `status` and close.
  virtual void failed(const grpc::Status& status) = 0;
  // The outbox went under half its limit: the client may be read again.
  virtual void outbox_room() = 0;
};

}  // namespace bridge::delivery
