#pragma once
// Decode and serialize a broadcast once: every socket of a channel that
// receives version v sends the same bytes, and only the first one decodes
// the patch. Keeps the most recent entries only. Thread-safe.

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "api/messages.h"

namespace bridge {

class BroadcastCache {
 public:
  explicit BroadcastCache(std::size_t capacity = 8192) : capacity_(capacity) {}

  // The patch_broadcast frame for version `version` of `channel`, whose
  // encoded Patch is `patch`; null when those bytes do not decode.
  std::shared_ptr<const std::string> frame(const std::string& channel, std::int64_t version, std::string_view patch);

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> frames_;  // guarded by mu_
  std::deque<std::string> order_;                                             // guarded by mu_
};

}  // namespace bridge
