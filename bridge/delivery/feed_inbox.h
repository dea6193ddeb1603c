#pragma once
// Feed items handed over by the feed's thread and not yet taken by the
// socket's strand. One post drains all of them, so under load a socket
// costs one post per batch, not per patch. At `limit` items the inbox
// overflows: it drops what it holds and every later item until resumed,
// and the socket catches up from the log instead. So a slow socket holds
// a bounded number of items.
//
// Thread-safe: offer() runs on the feed's thread, the rest on the strand.

#include <atomic>
#include <boost/container/deque.hpp>
#include <cstddef>
#include <mutex>

#include "upstream/feed.h"

namespace bridge::delivery {

class FeedInbox {
 public:
  explicit FeedInbox(std::size_t limit) : limit_(limit) {}

  enum class Offer {
    kFirst,     // the inbox was empty: post a take()
    kQueued,    // a take() is already posted
    kOverflow,  // the inbox just overflowed: post the socket's fell_behind()
    kDropped,   // skipping
  };
  Offer offer(upstream::Item item);

  boost::container::deque<upstream::Item> take();
  // Drop every item from now on (the socket reads the log later); resume
  // takes them again.
  void skip() { skipping_ = true; }
  void resume() { skipping_ = false; }

 private:
  const std::size_t limit_;
  std::mutex mu_;
  boost::container::deque<upstream::Item> items_;  // guarded by mu_
  std::atomic<bool> skipping_{false};
};

}  // namespace bridge::delivery
