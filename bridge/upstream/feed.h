#pragma once
// One shared Watch per channel: however many sockets read a channel, syncd
// sends each patch to the bridge once, and the bridge decodes it once and
// builds its frame once per dialect (upstream/frame_cache.h).
//
// A feed starts with the channel's first subscriber: it asks syncd for the
// head, then watches from that version, so it delivers every later version
// in order with no gap. Before its first item, each subscriber learns its
// origin (on_feed_ready): every version after it will follow; anything older
// the subscriber reads from the log itself. A feed ends when its last
// subscriber leaves, or when syncd ends the Watch; then every subscriber
// hears on_feed_done and should close (clients resume with `since`).
//
// The Watch uses the bridge's own token (--upstream-token-file): it needs
// read access to every channel clients may open. Clients' own tokens are
// checked by syncd on the calls made for them (upstream/calls.h).
//
// Listener callbacks run on gRPC threads or inside subscribe(); they must
// only post work elsewhere, never block or call back into the feed.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "api/grpc.h"
#include "upstream/frame_cache.h"

namespace bridge::upstream {

struct FeedItem {
  std::int64_t version = 0;
  api::Patch patch;   // as stored, server_version set
  FrameCache frames;  // its frames, built as sockets send them
};
using Item = std::shared_ptr<const FeedItem>;

// An item for `patch` (server_version set).
Item make_item(api::Patch patch);

class FeedListener {
 public:
  virtual ~FeedListener() = default;
  // Every version after `origin` follows, in order. Called once.
  virtual void on_feed_ready(std::int64_t origin) = 0;
  virtual void on_feed_item(Item item) = 0;
  // The feed ended (never OK); nothing more follows.
  virtual void on_feed_done(const grpc::Status& status) = 0;
};

class ChannelFeed;
class Feeds;

// A listener's place in a feed; leaving is destroying it.
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

 private:
  friend class Feeds;
  Subscription(Feeds& feeds, std::shared_ptr<ChannelFeed> feed, std::uint64_t id)
      : feeds_(feeds), feed_(std::move(feed)), id_(id) {}
  Feeds& feeds_;
  std::shared_ptr<ChannelFeed> feed_;
  std::uint64_t id_;
};

// The feeds of all channels. Must outlive every Subscription.
class Feeds {
 public:
  // `token_file`: holds the bridge's JWT, read again at each feed start so it
  // can be rotated in place; empty when syncd runs without authentication.
  Feeds(std::shared_ptr<api::Sync::Stub> stub, std::string token_file);
  ~Feeds();

  std::unique_ptr<Subscription> subscribe(const std::string& channel, std::weak_ptr<FeedListener> listener);

  // "Bearer <the bridge's JWT>" read from the token file now; empty without one.
  std::string authorization() const;

 private:
  friend class Subscription;
  void leave(const std::shared_ptr<ChannelFeed>& feed, std::uint64_t id);

  std::shared_ptr<api::Sync::Stub> stub_;
  const std::string token_file_;
  std::mutex mu_;  // taken before any feed's own lock
  std::map<std::string, std::shared_ptr<ChannelFeed>> feeds_;  // guarded by mu_
  std::uint64_t next_id_ = 1;                                  // guarded by mu_
};

}  // namespace bridge::upstream
