#pragma once
// A cap on how many streams or sockets one key (a token subject, a client
// address) holds open at once. syncd caps Session and Watch streams with
// it, sync-bridge its WebSockets. Thread-safe.
//
// A Hold counts one against its key until it is destroyed, so a stream
// that ends in any way gives its place back. Keys listed as uncapped (a
// sync-bridge's subject or address, which holds a stream per channel for
// many clients) are counted but never refused.

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace syncd::auth {

class KeyedCap {
 public:
  // `limit` 0: no limit.
  explicit KeyedCap(std::size_t limit, const std::vector<std::string>& uncapped = {})
      : limit_(limit), uncapped_(uncapped.begin(), uncapped.end()) {}
  KeyedCap(const KeyedCap&) = delete;
  KeyedCap& operator=(const KeyedCap&) = delete;

  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept { *this = std::move(other); }
    Hold& operator=(Hold&& other) noexcept;
    ~Hold() { release(); }
    explicit operator bool() const { return cap_ != nullptr; }

   private:
    friend class KeyedCap;
    Hold(KeyedCap* cap, std::string key) : cap_(cap), key_(std::move(key)) {}
    void release();
    KeyedCap* cap_ = nullptr;
    std::string key_;
  };

  // A place for one more of `key`; an empty Hold when `key` already holds
  // `limit` and is not uncapped.
  Hold take(std::string key);
  std::size_t limit() const { return limit_; }
  // Keys holding at least one place, sorted; at most `max` of them.
  std::vector<std::string> keys(std::size_t max) const;
  std::size_t key_count() const;

 private:
  void give_back(const std::string& key);

  const std::size_t limit_;
  const std::unordered_set<std::string> uncapped_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::size_t> open_;  // guarded by mu_; no zero entries
};

}  // namespace syncd::auth
