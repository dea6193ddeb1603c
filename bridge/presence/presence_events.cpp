// The incoming half of the presence link: syncd's events applied to each
// watched channel's list and passed on, as frames, to its listeners; and
// syncd's refusals, to the socket they concern.

#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec/presence_codec.h"
#include "observe/bridge_metrics.h"
#include "presence/presence_link.h"

namespace bridge::presence {

void PresenceLink::on_event(const api::PresenceEvent& e) {
  if (e.has_error()) return on_error(e);
  // Each channel's frames, in order, for its listeners: one call per
  // listener per message, however many events it holds.
  std::map<std::string, std::pair<std::vector<Frame>, std::vector<std::weak_ptr<Listener>>>> out;
  {
    std::lock_guard lock(mu_);
    const auto one = [&](const api::PresenceEvent& each) {
      auto it = channels_.find(each.channel());
      if (it == channels_.end()) return;  // unwatched since
      if (Frame frame = apply(each, it->second)) {
        auto& [frames, to] = out[each.channel()];
        frames.push_back(std::move(frame));
        to = it->second.listeners;
      }
    };
    if (e.has_batch()) {
      for (const api::PresenceEvent& each : e.batch().events()) {
        if (!each.has_batch() && !each.has_error()) one(each);
      }
    } else {
      one(e);
    }
  }
  for (auto& [channel, frames_to] : out) {
    send_to(frames_to.second, std::make_shared<const std::vector<Frame>>(std::move(frames_to.first)));
  }
}

Frame PresenceLink::apply(const api::PresenceEvent& e, Channel& ch) {
  auto* members = ch.list.mutable_members();
  const auto find = [&](const std::string& id) {
    return std::find_if(members->begin(), members->end(),
                        [&](const api::PresenceMember& m) { return m.connection_id() == id; });
  };
  switch (e.kind_case()) {
    case api::PresenceEvent::kState:
      ch.list = e.state();
      ch.known = true;
      break;
    case api::PresenceEvent::kJoin:
      *members->Add() = e.join();
      break;
    case api::PresenceEvent::kUpdate:
      if (auto m = find(e.update().connection_id()); m != members->end()) *m = e.update();
      break;
    case api::PresenceEvent::kLeave:
      if (auto m = find(e.leave().connection_id()); m != members->end()) members->erase(m);
      break;
    default:
      return nullptr;
  }
  if (!ch.known || ch.listeners.empty()) return nullptr;  // the whole list comes first
  return std::make_shared<const std::string>(codec::encode_presence(e));
}

void PresenceLink::on_error(const api::PresenceEvent& e) {
  std::shared_ptr<Listener> listener;
  {
    std::lock_guard lock(mu_);
    auto it = conns_.find({e.channel(), e.connection_id()});
    if (it == conns_.end()) {
      // A socket that has closed since (refused for its token, say) is no
      // news; anything else is the bridge's own request.
      if (e.connection_id().empty()) {
        spdlog::warn("syncd refused a presence request on channel {}: {}", e.channel(), e.error().message());
      }
      return;
    }
    listener = it->second.listener.lock();
    // A connect refused for its token never joined: forget it, so it is
    // not announced again. (Other refusals leave the entry as it was.)
    if (e.error().code() == "unauthenticated" || e.error().code() == "forbidden") {
      conns_.erase(it);
      observe::Metrics::get().presence_members.Set(static_cast<double>(conns_.size()));
    }
  }
  if (listener) listener->on_presence_error(e.error().code(), e.error().message());
}

void PresenceLink::send_to(const std::vector<std::weak_ptr<Listener>>& listeners, const Frames& frames) {
  for (const auto& w : listeners) {
    if (auto l = w.lock()) l->on_presence_frames(frames);
  }
}

}  // namespace bridge::presence
