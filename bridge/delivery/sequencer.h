#pragma once
// What one socket sees of its channel, in version order: other
// connections' patches as broadcasts, its own as acks, each version once.
//
// The channel's patches reach a socket from the shared feed (or from log
// pages while it catches up), and the answers to its own patches from its
// Push calls; the two race. The sequencer puts them in one order:
//
// - an accepted ack waits for its version's turn, and takes the place of
//   that version's broadcast, so the sender never sees its own patch echoed;
// - a patch whose id this socket has sent and not yet had answered is held,
//   with everything after it, until the answer says whose it is: accepted
//   there, it becomes the ack; otherwise (a duplicate, answered `ignored`)
//   it is someone else's and goes out as a broadcast;
// - rejected and ignored acks go out at once: they hold no new version.
//
// Not thread-safe: one socket's strand owns it.

#include <cstdint>
#include <boost/container/deque.hpp>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/messages.h"
#include "upstream/feed.h"

namespace bridge {

class Sequencer {
 public:
  // One thing for the client: a broadcast (item set) or an ack.
  struct Out {
    upstream::Item broadcast;
    api::Ack ack;
  };

  // Versions up to `cursor` are already the client's.
  explicit Sequencer(std::int64_t cursor = 0) : cursor_(cursor) {}

  std::int64_t cursor() const { return cursor_; }
  // The client now has everything up to `version` (history it got as pages).
  void skip_to(std::int64_t version);

  // The client was sent the channel's state at `version` (a snapshot),
  // which replaces everything it had: the cursor moves there (even back,
  // for a client that claimed a version the channel never reached), and
  // acks parked for versions it covers go out now.
  void restart_at(std::int64_t version, std::vector<Out>& out);

  // A patch with id `id` went upstream.
  void sent(const std::string& id);
  // The channel's next patch; older versions are dropped.
  void patch(upstream::Item item, std::vector<Out>& out);
  // Syncd's answer to a patch this socket sent.
  void answered(const api::Ack& ack, std::vector<Out>& out);
  // A sent patch whose answer was lost (the call failed): whatever arrives
  // with its id is treated as someone else's.
  void abandoned(const std::string& id, std::vector<Out>& out);

  std::size_t unanswered() const { return in_flight_; }

 private:
  // Emits `item` or its ack; false when it must wait for an answer.
  bool step(const upstream::Item& item, std::vector<Out>& out);
  void forget(const std::string& id);
  void release(std::vector<Out>& out);

  std::int64_t cursor_;
  std::unordered_map<std::string, int> sent_;   // ids in flight, with a count
  std::size_t in_flight_ = 0;
  std::map<std::int64_t, api::Ack> parked_;     // accepted acks ahead of the cursor
  boost::container::deque<upstream::Item> held_;             // from the first patch that may be ours
};

}  // namespace bridge
