#pragma once
// Who listens to which channel in this process.
//
// The committer publishes every committed batch here, in commit order, and
// the head listener reports commits made by other syncd instances. Both
// calls fan out to the channel's subscribers without blocking: a subscriber
// that cannot take a patch now falls behind and reads the log later.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/change_log.h"

namespace syncd::engine {

// A committed patch and the subscriber that sent it (0: none), which must
// not get it back as a broadcast. `encoded` is the patch serialized once
// (server_version set): a thousand subscribers send the same bytes, not a
// thousand copies or encodings of the patch.
struct Published {
  store::PatchPtr patch;
  std::uint64_t origin = 0;
  std::shared_ptr<const std::string> encoded;
};

class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // Consecutive committed patches of the channel, in version order.
  // Runs on the channel's committer thread: must not block.
  virtual void on_commit(const std::vector<Published>& patches) = 0;
  // Another instance committed up to `head`. Must not block.
  virtual void on_remote_head(std::int64_t head) = 0;
  // Periodic: heartbeats and idle timeouts. Must not block.
  virtual void tick(std::chrono::steady_clock::time_point now) = 0;
  // The server is stopping: finish once what is queued is written.
  virtual void shut_down() = 0;
  // The channel was deleted: end now. Must not block.
  virtual void on_deleted() = 0;
  // Reading the log because it fell behind the live feed (for metrics).
  virtual bool behind() const = 0;
};

class Hub {
 public:
  void add(const std::string& channel, std::shared_ptr<Subscriber> s);
  void remove(const std::string& channel, const Subscriber* s);

  void publish(const std::string& channel, const std::vector<Published>& patches);
  void remote_head(const std::string& channel, std::int64_t head);
  void deleted(const std::string& channel);

  int subscriber_count(const std::string& channel) const;
  // Channels with at least one subscriber.
  std::vector<std::string> channels() const;
  // Every subscriber of every channel, for ticks and shutdown.
  std::vector<std::shared_ptr<Subscriber>> all() const;

 private:
  std::vector<std::shared_ptr<Subscriber>> of(const std::string& channel) const;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Subscriber>>> channels_;  // guarded by mu_
};

}  // namespace syncd::engine
