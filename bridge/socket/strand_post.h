#pragma once
// delivery::Post for an object that lives in a shared_ptr and runs on a
// strand (`owner->strand()`): the function runs on the strand with the
// owner kept alive until it has run, or is dropped once the owner is gone.
// Only a weak reference is held, so gRPC threads may call it after the
// owner was destroyed. (Just the weak_ptr: small enough for std::function
// to keep without allocating, which matters per idle socket.)

#include <boost/asio/post.hpp>
#include <memory>

#include "delivery/feed_link.h"

namespace bridge {

template <class Owner>
delivery::Post strand_post(std::weak_ptr<Owner> owner) {
  return [owner = std::move(owner)](std::function<void()> fn) {
    auto self = owner.lock();
    if (!self) return;  // gone: nothing waits for this
    auto strand = self->strand();
    boost::asio::post(strand, [self = std::move(self), fn = std::move(fn)] { fn(); });
  };
}

}  // namespace bridge
