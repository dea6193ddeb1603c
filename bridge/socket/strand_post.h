#pragma once
// delivery::Post for an object that lives in a shared_ptr and runs on a
// strand: the function runs on the strand with the owner kept alive until
// it has run, or is dropped once the owner is gone. Only a weak reference
// is held, so gRPC threads may call it after the owner was destroyed.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <memory>

#include "delivery/feed_link.h"

namespace bridge {

template <class Owner>
delivery::Post strand_post(std::weak_ptr<Owner> owner, boost::asio::any_io_executor strand) {
  return [owner = std::move(owner), strand = std::move(strand)](std::function<void()> fn) {
    auto self = owner.lock();
    if (!self) return;  // gone: nothing waits for this
    boost::asio::post(strand, [self = std::move(self), fn = std::move(fn)] { fn(); });
  };
}

}  // namespace bridge
