#pragma once
// A socket's token over its life: whom it names, closing the socket when it
// expires (as syncd closes its own streams), and a refresh that replaces it
// with a token for the same subject once syncd accepts it for the channel.
//
// Runs on the socket's strand. Every pending wait holds `keep` (the
// socket), so the socket outlives it; cancel() ends the wait.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>

#include "api/grpc.h"
#include "delivery/feed_link.h"

namespace bridge {

class TokenWatch {
 public:
  using End = std::function<void(const grpc::Status&)>;

  // `authorization`: the socket's "Bearer <jwt>" (or empty), which a refresh
  // replaces. `end` closes the socket with a status.
  TokenWatch(const boost::asio::any_io_executor& ex, std::string& authorization, End end)
      : timer_(ex), authorization_(authorization), end_(std::move(end)) {}

  // Learns the token's subject and, when it expires, waits for that.
  void start(std::shared_ptr<void> keep);
  // The token's `sub`, or empty; a refresh must keep it.
  const std::string& subject() const { return subject_; }

  // A new token from the client: checked against `channel` by syncd, with
  // the answer posted back to the strand by `post`.
  void refresh(const std::string& token, const std::string& channel, api::Sync::Stub& stub, delivery::Post post,
               std::shared_ptr<void> keep);
  void cancel() { timer_.cancel(); }

 private:
  void watch(std::shared_ptr<void> keep);

  boost::asio::steady_timer timer_;
  std::string& authorization_;
  const End end_;
  std::string subject_;
};

}  // namespace bridge
