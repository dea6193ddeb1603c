#pragma once
// What one client sees of one channel, whatever its transport and dialect:
// history, then every later version once and in order (others' patches as
// broadcasts, its own as acks), its patches pushed in the order sent, and
// its sync requests answered.
//
// Joining: the socket subscribes to the channel's shared feed
// (upstream/feed.h), buffering what it delivers, reads the log from `since`
// until a page says there is no more, then releases the buffered items
// after the last page and goes live. A client that does not read its frames
// falls behind: at the queue limit the delivery stops taking items from the
// feed and, once the queue has drained to half, joins again from its last
// version. Versions the log no longer holds come as the channel's state (a
// snapshot) followed by the log after it. So memory per client stays
// bounded whatever it does, and no other client waits for it.
//
// Not thread-safe: the socket's strand owns it, except inbox(), which the
// feed's thread fills (delivery/feed_link.h). Its socket owns it; answers
// to its calls reach it only while the socket lives (delivery/upstream.h).

#include <boost/container/deque.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "delivery/feed_inbox.h"
#include "delivery/pusher.h"
#include "delivery/sequencer.h"
#include "delivery/sink.h"
#include "delivery/sync_requests.h"
#include "delivery/upstream.h"

namespace bridge::delivery {

struct Options {
  std::string channel;
  std::int64_t since = 0;            // the client has every version up to this
  bool history = true;               // false (since=head, /crdt): start at the head, no history
  bool snapshots = true;             // false (/crdt): compacted history is skipped, from the horizon on
  std::size_t queue_limit = 1024;    // frames; at it, the client falls behind
  std::size_t max_patch_bytes = 0;   // larger patches are refused too_large; 0: no limit
};

class Delivery {
 public:
  Delivery(Options options, Upstream& upstream, Sink& sink);

  // The feed (delivery/feed_link.h posts these to the strand).
  FeedInbox& inbox() { return inbox_; }
  void feed_ready();  // every later version will come from the feed
  void take_inbox();
  void fell_behind();  // the inbox overflowed: items were dropped
  void feed_done(const grpc::Status& status);

  // The client.
  void submit(api::Patch patch) { pusher_.submit(std::move(patch)); }
  void reject_too_large(const std::string& id, const std::string& size) { pusher_.reject_too_large(id, size); }
  void sync_request(std::int64_t from, int limit) { requests_.request(from, limit); }
  bool outbox_full() const { return pusher_.outbox_full(); }

  // The client's queue went under half its limit.
  void drained();
  // Something waits for the queue to drain (so the socket calls drained()).
  bool waiting() const { return mode_ != Mode::kLive || requests_.waiting(); }
  // The last version the client has been sent.
  std::int64_t position() const { return seq_.cursor(); }
  // The socket is closing: nothing more is asked or sent.
  void stop();

  const std::string& channel() const { return options_.channel; }
  std::int64_t cursor() const { return seq_.cursor(); }

 private:
  enum class Mode { kJoining, kLive, kBehind };

  void on_item(upstream::Item item);
  void read_history();
  void on_info(const grpc::Status& status, const api::ChannelInfo& info);
  void on_page(const grpc::Status& status, api::GetChangesResponse& page);
  void read_snapshot();
  void on_snapshot(const grpc::Status& status, std::vector<api::SnapshotPage>& pages);
  void skip_compacted();
  void rejoin_if_drained();
  void go_live();
  void emit(std::vector<Sequencer::Out>& outs);
  void set_behind(bool behind);

  const Options options_;
  Upstream& upstream_;
  Sink& sink_;
  FeedInbox inbox_;
  Sequencer seq_;
  Pusher pusher_;
  SyncRequests requests_;

  Mode mode_ = Mode::kJoining;
  bool stopped_ = false;
  bool ready_ = false;          // the feed has said where it starts
  bool first_join_ = true;      // history still comes as sync_state pages
  bool snapshot_open_ = false;  // a mid-stream snapshot's closing page is still owed
  bool reading_history_ = false;
  bool reread_ = false;
  bool counted_behind_ = false;  // in the sync_bridge_subscribers_behind gauge         // items were dropped while joining: read the log once more
  // Feed items while joining. (Boost's deque allocates nothing until used,
  // which matters for idle sockets: std::deque allocates about 600 bytes.)
  boost::container::deque<upstream::Item> buffered_;
};

}  // namespace bridge::delivery
