#pragma once
// Counters behind GET /stats; the totals also go to the Prometheus metrics
// (observe/bridge_metrics.h). Thread-safe.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "auth/keyed_cap.h"

namespace bridge {

class Stats {
 public:
  void socket_opened(const std::string& channel);
  void socket_closed(const std::string& channel);
  void message_in();
  void message_out(std::size_t bytes);
  void error_sent();

  // {"connections":N,"activeConnections":N,"channels":{...},"messagesIn":N,
  //  "messagesOut":N,"errors":N,"totalChanges":N,"activeUsers":[...],"upstream":"..."}
  // `users`: the token subjects with open sockets (at most 1000 listed).
  std::string to_json(const std::string& upstream_state, const syncd::auth::KeyedCap& users) const;
  int connections() const;

 private:
  std::atomic<std::uint64_t> messages_in_{0};
  std::atomic<std::uint64_t> messages_out_{0};
  std::atomic<std::uint64_t> errors_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> per_channel_;  // guarded by mu_
  int connections_ = 0;                     // guarded by mu_
};

}  // namespace bridge
