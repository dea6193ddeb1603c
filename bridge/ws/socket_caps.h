#pragma once
// Caps on the sockets one client may hold open: per address, and per token
// subject once syncd has accepted the token. Thread-safe.
//
// A Hold counts one socket against its key until it is destroyed, so a
// session that ends in any way gives its place back.

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace bridge {

class SocketCap {
 public:
  explicit SocketCap(std::size_t limit) : limit_(limit) {}  // 0: no limit
  SocketCap(const SocketCap&) = delete;
  SocketCap& operator=(const SocketCap&) = delete;

  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept { *this = std::move(other); }
    Hold& operator=(Hold&& other) noexcept;
    ~Hold() { release(); }
    explicit operator bool() const { return cap_ != nullptr; }

   private:
    friend class SocketCap;
    Hold(SocketCap* cap, std::string key) : cap_(cap), key_(std::move(key)) {}
    void release();
    SocketCap* cap_ = nullptr;
    std::string key_;
  };

  // A place for one more socket of `key`; an empty Hold when `key` already
  // holds `limit` sockets.
  Hold take(std::string key);
  std::size_t limit() const { return limit_; }

 private:
  void give_back(const std::string& key);

  const std::size_t limit_;
  std::mutex mu_;
  std::unordered_map<std::string, std::size_t> open_;  // guarded by mu_; no zero entries
};

}  // namespace bridge
