#include "socketio/registry.h"

#include <boost/asio/strand.hpp>
#include <random>
#include <vector>

#include "socketio/eio_session.h"

namespace bridge::socketio {

std::string random_id() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;  // the kernel's CSPRNG on Linux
  std::string sid(20, ' ');
  for (char& c : sid) c = kAlphabet[rd() % 64];
  return sid;
}

std::shared_ptr<EioSession> Registry::create(BridgeContext& ctx, Handshake handshake,
                                             boost::asio::any_io_executor strand) {
  std::string sid = random_id();
  if (!strand) strand = boost::asio::make_strand(ioc_);
  auto session = std::make_shared<EioSession>(std::move(strand), ctx, sid, std::move(handshake));
  std::lock_guard lock(mu_);
  sessions_.emplace(std::move(sid), session);
  return session;
}

std::shared_ptr<EioSession> Registry::find(const std::string& sid) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(sid);
  return it == sessions_.end() ? nullptr : it->second;
}

void Registry::remove(const std::string& sid) {
  std::shared_ptr<EioSession> gone;  // released outside the lock
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(sid); it != sessions_.end()) {
    gone = std::move(it->second);
    sessions_.erase(it);
  }
}

void Registry::close_all() {
  std::vector<std::shared_ptr<EioSession>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [sid, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) s->close("the bridge is shutting down");
}

}  // namespace bridge::socketio
