#include "ws/context.h"
#include "ws/ws_session.h"

namespace bridge {

void Sessions::add(const std::shared_ptr<WsSession>& s) {
  std::lock_guard lock(mu_);
  sessions_.insert(s);
}

void Sessions::remove(const WsSession* s) {
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (auto p = it->lock(); !p || p.get() == s) {
      sessions_.erase(it);
      return;
    }
  }
}

void Sessions::close_all() {
  std::vector<std::shared_ptr<WsSession>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : sessions_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (auto& s : all) s->close(boost::beast::websocket::close_code::going_away, "the bridge is shutting down");
}

}  // namespace bridge
