#pragma once
// Counters behind GET /stats. Thread-safe.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace bridge {

class Stats {
 public:
  void socket_opened(const std::string& channel);
  void socket_closed(const std::string& channel);
  void message_in() { messages_in_.fetch_add(1, std::memory_order_relaxed); }
  void message_out() { messages_out_.fetch_add(1, std::memory_order_relaxed); }
  void error_sent() { errors_.fetch_add(1, std::memory_order_relaxed); }

  // {"connections":N,"channels":{...},"messagesIn":N,"messagesOut":N,"errors":N,"upstream":"..."}
  std::string to_json(const std::string& upstream_state) const;

 private:
  std::atomic<std::uint64_t> messages_in_{0};
  std::atomic<std::uint64_t> messages_out_{0};
  std::atomic<std::uint64_t> errors_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> per_channel_;  // guarded by mu_
  int connections_ = 0;                     // guarded by mu_
};

}  // namespace bridge
