#pragma once
// A Delivery's place in its channel's feed: the FeedListener that carries
// the feed's calls, made on gRPC threads, to the socket's strand.
//
// `post` runs a function on the socket's strand, keeping the socket (and so
// the Delivery) alive until it has run, or drops it when the socket is gone;
// it must hold only a weak reference to the socket, since gRPC threads call
// it after the socket may have been destroyed.
// The socket subscribes a FeedLink through an aliasing pointer that owns the
// socket, so while the feed calls it the Delivery is alive too.

#include <functional>
#include <utility>

#include "delivery/delivery.h"
#include "upstream/feed.h"

namespace bridge::delivery {

using Post = std::function<void(std::function<void()>)>;

class FeedLink final : public upstream::FeedListener {
 public:
  FeedLink(Delivery& delivery, Post post) : delivery_(delivery), post_(std::move(post)) {}

  void on_feed_ready(std::int64_t) override {
    post_([&d = delivery_] { d.feed_ready(); });
  }
  void on_feed_item(upstream::Item item) override {
    switch (delivery_.inbox().offer(std::move(item))) {
      case FeedInbox::Offer::kFirst: return post_([&d = delivery_] { d.take_inbox(); });
      case FeedInbox::Offer::kOverflow: return post_([&d = delivery_] { d.fell_behind(); });
      case FeedInbox::Offer::kQueued:
      case FeedInbox::Offer::kDropped: return;
    }
  }
  void on_feed_done(const grpc::Status& status) override {
    post_([&d = delivery_, status] { d.feed_done(status); });
  }

 private:
  Delivery& delivery_;
  const Post post_;
};

}  // namespace bridge::delivery
