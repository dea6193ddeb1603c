#include "upstream/feed.h"

#include "auth/token_format.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "upstream/calls.h"

namespace bridge::upstream {

Item make_item(api::Patch patch) {
  auto item = std::make_shared<FeedItem>();
  item->version = patch.server_version();
  item->patch = std::move(patch);
  return item;
}

namespace {
using Listeners = std::vector<std::weak_ptr<FeedListener>>;
}  // namespace

// One channel's Watch and its subscribers. Owned by the Feeds registry
// (while it has subscribers), its Subscriptions and its running Watch.
class ChannelFeed : public std::enable_shared_from_this<ChannelFeed> {
 public:
  ChannelFeed(std::string channel, std::shared_ptr<api::Sync::Stub> stub)
      : channel_(std::move(channel)), stub_(std::move(stub)) {}

  // False when the feed has ended and takes no one new.
  bool add(std::uint64_t id, std::weak_ptr<FeedListener> listener) {
    std::lock_guard lock(mu_);
    if (state_ == State::kDone) return false;
    if (state_ == State::kLive) {
      // Under the lock: no item after last_ can reach this listener first.
      if (auto l = listener.lock()) l->on_feed_ready(last_);
    }
    listeners_.emplace(id, std::move(listener));
    rebuild();
    return true;
  }

  // Returns the subscribers left.
  std::size_t remove(std::uint64_t id) {
    std::lock_guard lock(mu_);
    listeners_.erase(id);
    rebuild();
    return listeners_.size();
  }

  const std::string& channel() const { return channel_; }
  void start(const std::string& authorization);
  void cancel();

 private:
  class Watch;
  enum class State { kStarting, kLive, kDone };

  // The copy deliveries iterate is made again only when one needs it: a
  // socket joining or leaving costs O(1), not a copy of every listener.
  void rebuild() { snapshot_.reset(); }
  // Requires mu_.
  const std::shared_ptr<const Listeners>& listeners() {
    if (!snapshot_) {
      auto out = std::make_shared<Listeners>();
      out->reserve(listeners_.size());
      for (const auto& [id, l] : listeners_) out->push_back(l);
      snapshot_ = std::move(out);
    }
    return snapshot_;
  }
  void watch_from(std::int64_t head, const std::string& authorization);
  void deliver(api::Patch&& patch);
  void end(const grpc::Status& status);

  const std::string channel_;
  std::shared_ptr<api::Sync::Stub> stub_;
  std::mutex mu_;
  State state_ = State::kStarting;                        // guarded by mu_
  bool cancelled_ = false;                                // guarded by mu_
  std::int64_t last_ = 0;                                 // guarded by mu_; last version delivered
  std::map<std::uint64_t, std::weak_ptr<FeedListener>> listeners_;  // guarded by mu_
  std::shared_ptr<const Listeners> snapshot_;             // guarded by mu_; null when stale
  Watch* watch_ = nullptr;                                // guarded by mu_; while the Watch runs
};

// The gRPC side of a feed. Deletes itself in OnDone.
class ChannelFeed::Watch final : public grpc::ClientReadReactor<api::Patch> {
 public:
  Watch(std::shared_ptr<ChannelFeed> feed, std::int64_t from, const std::string& authorization)
      : feed_(std::move(feed)) {
    request_.set_channel(feed_->channel_);
    request_.set_from_version(from);
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
  }

  void begin() {
    feed_->stub_->async()->Watch(&ctx, &request_, this);
    StartRead(&patch_);
    StartCall();
  }

  grpc::ClientContext ctx;

  void OnReadDone(bool ok) override {
    if (!ok) return;  // ending; OnDone has the status
    if (patch_.snapshot()) {
      // syncd restarted the watch from a snapshot: it fell behind the log's
      // horizon. The feed ends; its sockets reconnect from their own
      // versions and get a snapshot if they need one.
      compacted_ = true;
      ctx.TryCancel();
      return;
    }
    feed_->deliver(std::move(patch_));
    patch_.Clear();
    StartRead(&patch_);
  }

  void OnDone(const grpc::Status& status) override {
    if (compacted_) {
      feed_->end(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the channel's log was compacted past this bridge's "
                                                             "position; reconnect from your last version"));
    } else {
      feed_->end(status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "syncd ended the channel's watch")
                             : status);
    }
    delete this;
  }

 private:
  std::shared_ptr<ChannelFeed> feed_;
  api::WatchRequest request_;
  api::Patch patch_;
  bool compacted_ = false;  // only gRPC's reactor thread touches it
};

void ChannelFeed::start(const std::string& authorization) {
  api::GetChannelInfoRequest req;
  req.set_channel(channel_);
  channel_info(*stub_, authorization, std::move(req),
               [self = shared_from_this(), authorization](const grpc::Status& status, api::ChannelInfo&& info) {
                 if (!status.ok()) {
                   self->end(status);
                 } else {
                   self->watch_from(info.head_version(), authorization);
                 }
               });
}

void ChannelFeed::watch_from(std::int64_t head, const std::string& authorization) {
  std::shared_ptr<const Listeners> ready;
  auto* watch = new Watch(shared_from_this(), head, authorization);
  {
    std::lock_guard lock(mu_);
    if (cancelled_ || state_ == State::kDone) {
      delete watch;
      return;
    }
    state_ = State::kLive;
    last_ = head;
    watch_ = watch;
    ready = listeners();
  }
  // Before the first read starts, so ready precedes every item.
  for (const auto& w : *ready) {
    if (auto l = w.lock()) l->on_feed_ready(head);
  }
  watch->begin();
}

void ChannelFeed::deliver(api::Patch&& patch) {
  Item item = make_item(std::move(patch));
  std::shared_ptr<const Listeners> to;
  {
    std::lock_guard lock(mu_);
    if (item->version != last_ + 1) {
      // syncd's Watch is gap-free; anything else is a bug worth hearing about.
      spdlog::error("channel {}: the watch jumped from version {} to {}", channel_, last_, item->version);
    }
    last_ = item->version;
    to = listeners();
  }
  for (const auto& w : *to) {
    if (auto l = w.lock()) l->on_feed_item(item);
  }
}

void ChannelFeed::end(const grpc::Status& status) {
  std::shared_ptr<const Listeners> to;
  {
    std::lock_guard lock(mu_);
    state_ = State::kDone;
    watch_ = nullptr;
    if (cancelled_) return;  // no one is left to tell
    to = listeners();
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    spdlog::error("syncd refused the bridge's own token for channel {}: {} (set --upstream-token-file to a "
                  "token that can read every channel)",
                  channel_, status.error_message());
  }
  for (const auto& w : *to) {
    if (auto l = w.lock()) l->on_feed_done(status);
  }
}

void ChannelFeed::cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (watch_ != nullptr) watch_->ctx.TryCancel();
}

Subscription::~Subscription() { feeds_.leave(feed_, id_); }

Feeds::Feeds(std::shared_ptr<api::Sync::Stub> stub, std::string token_file)
    : stub_(std::move(stub)), token_file_(std::move(token_file)) {}

Feeds::~Feeds() {
  std::lock_guard lock(mu_);
  for (auto& [channel, feed] : feeds_) feed->cancel();
}

std::unique_ptr<Subscription> Feeds::subscribe(const std::string& channel, std::weak_ptr<FeedListener> listener) {
  std::shared_ptr<ChannelFeed> start;
  std::unique_ptr<Subscription> sub;
  {
    std::lock_guard lock(mu_);
    const std::uint64_t id = next_id_++;
    auto& feed = feeds_[channel];
    if (!feed || !feed->add(id, listener)) {
      feed = std::make_shared<ChannelFeed>(channel, stub_);
      feed->add(id, std::move(listener));
      start = feed;
    }
    sub.reset(new Subscription(*this, feed, id));
  }
  // Outside the lock: start() may call back (a failed call) at once.
  if (start) start->start(authorization());
  return sub;
}

void Feeds::leave(const std::shared_ptr<ChannelFeed>& feed, std::uint64_t id) {
  std::lock_guard lock(mu_);
  if (feed->remove(id) > 0) return;
  feed->cancel();
  if (auto it = feeds_.find(feed->channel()); it != feeds_.end() && it->second == feed) feeds_.erase(it);
}

std::string Feeds::authorization() const {
  if (token_file_.empty()) return {};
  std::ifstream in(token_file_);
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) {
    spdlog::error("--upstream-token-file {} is missing or empty", token_file_);
    return {};
  }
  const auto bearer = syncd::auth::bearer_token(token);
  if (!bearer.ok()) {
    // Never into gRPC metadata (an illegal value aborts the process), nor into the log.
    spdlog::error("--upstream-token-file {} does not hold a JWT ({}); watching without a token", token_file_,
                  bearer.error);
    return {};
  }
  return syncd::auth::authorization_value(bearer.token);
}

}  // namespace bridge::upstream
