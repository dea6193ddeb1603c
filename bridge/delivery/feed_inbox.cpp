#include "delivery/feed_inbox.h"

namespace bridge::delivery {

FeedInbox::Offer FeedInbox::offer(upstream::Item item) {
  if (skipping_.load(std::memory_order_relaxed)) return Offer::kDropped;
  std::lock_guard lock(mu_);
  if (items_.size() >= limit_) {
    // The strand is this far behind the feed: stop taking it.
    items_.clear();
    return skipping_.exchange(true) ? Offer::kDropped : Offer::kOverflow;
  }
  const bool first = items_.empty();
  items_.push_back(std::move(item));
  return first ? Offer::kFirst : Offer::kQueued;
}

boost::container::deque<upstream::Item> FeedInbox::take() {
  boost::container::deque<upstream::Item> items;
  std::lock_guard lock(mu_);
  items.swap(items_);
  return items;
}

}  // namespace bridge::delivery
