#include "ws/stats.h"

#include <nlohmann/json.hpp>

#include "observe/bridge_metrics.h"

namespace bridge {

void Stats::message_in() {
  messages_in_.fetch_add(1, std::memory_order_relaxed);
  observe::Metrics::get().messages_received.Increment();
}

void Stats::message_out(std::size_t bytes) {
  messages_out_.fetch_add(1, std::memory_order_relaxed);
  auto& m = observe::Metrics::get();
  m.messages_sent.Increment();
  m.sent_bytes.Increment(static_cast<double>(bytes));
}

void Stats::error_sent() {
  errors_.fetch_add(1, std::memory_order_relaxed);
  observe::Metrics::get().errors_sent.Increment();
}

void Stats::socket_opened(const std::string& channel) {
  std::lock_guard lock(mu_);
  ++connections_;
  ++per_channel_[channel];
}

void Stats::socket_closed(const std::string& channel) {
  std::lock_guard lock(mu_);
  --connections_;
  if (--per_channel_[channel] <= 0) per_channel_.erase(channel);
}

int Stats::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

std::string Stats::to_json(const std::string& upstream_state, const syncd::auth::KeyedCap& users) const {
  nlohmann::ordered_json j;
  {
    std::lock_guard lock(mu_);
    j["connections"] = connections_;
    j["activeConnections"] = connections_;
    j["channels"] = per_channel_;
  }
  j["messagesIn"] = messages_in_.load();
  j["messagesOut"] = messages_out_.load();
  j["errors"] = errors_.load();
  j["totalChanges"] = static_cast<std::uint64_t>(observe::Metrics::get().patches_accepted.Value());
  j["activeUsers"] = users.keys(1000);
  j["activeUserCount"] = users.key_count();
  j["upstream"] = upstream_state;
  return j.dump();
}

}  // namespace bridge
