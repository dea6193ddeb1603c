#include "ws/context.h"
#include "ws/ws_session.h"

namespace bridge {

void Sessions::add(const std::shared_ptr<WsSession>& s) {
  std::lock_guard lock(mu_);
  sessions_.emplace(s.get(), s);
}

void Sessions::remove(const WsSession* s) {
  std::lock_guard lock(mu_);
  sessions_.erase(s);
}

void Sessions::close_all() {
  std::vector<std::shared_ptr<WsSession>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [address, w] : sessions_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (auto& s : all) s->close(boost::beast::websocket::close_code::going_away, "the bridge is shutting down");
}

}  // namespace bridge
