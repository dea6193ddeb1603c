#include "server/session_presence.h"

#include <algorithm>

namespace syncd::server {

bool UpdateRate::admit() {
  const auto now = std::chrono::steady_clock::now();
  tokens_ = std::min(kBurst, tokens_ + std::chrono::duration<double>(now - last_).count() * kPerSecond);
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

SessionPresence::SessionPresence(engine::Presence& presence, std::string channel, std::string connection_id,
                                 std::weak_ptr<ChannelStream> stream)
    : presence_(presence),
      channel_(std::move(channel)),
      connection_id_(std::move(connection_id)),
      stream_(std::move(stream)) {}

void SessionPresence::applied(std::int64_t version) {
  std::int64_t seen = applied_.load();
  while (version > seen && !applied_.compare_exchange_weak(seen, version)) {
  }
}

void SessionPresence::tick(std::int64_t delivered) {
  // Nobody has applied what it was not sent.
  presence_.position(channel_, connection_id_, delivered, std::min(applied_.load(), delivered));
}

void SessionPresence::watch() {
  std::lock_guard lock(mu_);
  if (!left_) presence_.watch(channel_, shared_from_this());
}

void SessionPresence::leave() {
  std::lock_guard lock(mu_);
  left_ = true;
  presence_.unwatch(channel_, this);
  presence_.disconnect(channel_, connection_id_);
}

void SessionPresence::on_presence(const std::string& channel, const std::shared_ptr<const api::PresenceList>& full,
                                  const std::vector<engine::PresenceChange>& changes) {
  auto stream = stream_.lock();
  if (!stream) return;
  bool room = true;
  if (full) {
    api::SessionResponse msg;
    *msg.mutable_presence_state() = *full;
    room = stream->offer(std::move(msg));
  }
  for (const auto& change : changes) {
    if (!room) break;
    api::SessionResponse msg;
    switch (change.kind) {
      case engine::PresenceChange::Kind::kJoin: *msg.mutable_presence_join() = change.member; break;
      case engine::PresenceChange::Kind::kUpdate: *msg.mutable_presence_update() = change.member; break;
      case engine::PresenceChange::Kind::kLeave: *msg.mutable_presence_leave() = change.member; break;
    }
    room = stream->offer(std::move(msg));
  }
  // Events were lost: the whole list replaces them at a later round, asked
  // for at most once a second (a client that reads nothing costs no more).
  const auto now = std::chrono::steady_clock::now();
  if (!room && now - last_resend_ >= std::chrono::seconds(1)) {
    last_resend_ = now;
    presence_.resend(channel, this);
  }
}

}  // namespace syncd::server
