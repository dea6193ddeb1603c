#pragma once
// Serialize a broadcast once: every socket of a channel that receives
// version v sends the same bytes. Keeps the most recent entries only.
// Thread-safe.

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/messages.h"

namespace bridge {

class BroadcastCache {
 public:
  explicit BroadcastCache(std::size_t capacity = 8192) : capacity_(capacity) {}

  // The patch_broadcast frame for `patch` of `channel`.
  std::shared_ptr<const std::string> frame(const std::string& channel, const api::Patch& patch);

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> frames_;  // guarded by mu_
  std::deque<std::string> order_;                                             // guarded by mu_
};

}  // namespace bridge
