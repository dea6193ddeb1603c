#pragma once
// Hears other syncd instances' commits (LISTEN on the channel every commit
// NOTIFYs, see store/pg_change_log.h) and tells the hub, whose subscribers
// then read the new versions from the log. Reconnects by itself.
//
// A commit is announced in a transaction of its own just after it (see
// store/pg_batch.cpp), so an instance that dies between the two never
// announces it. Every `kHeadPoll` the listener therefore also reads the
// heads of the channels this instance has subscribers on, and announces
// them one poll later: such a commit reaches them within two polls, and a
// LISTEN connection that silently stopped working is found and replaced.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engine/hub.h"

namespace syncd::engine {

inline constexpr std::chrono::seconds kHeadPoll{2};

class HeadListener {
 public:
  // `instance` is this process's id in NOTIFY payloads: its own commits
  // are already published in memory and are skipped.
  HeadListener(std::string database_url, std::string instance, Hub& hub);
  ~HeadListener();  // stop()
  void stop();
  // Drops the LISTEN connection and opens a new one, announcing the current
  // heads. For after a database outage: notifications sent meanwhile are
  // lost, and after a failover the old connection may still point at the
  // old primary, which no longer hears any commit.
  void reconnect() { reconnect_ = true; }

 private:
  void run();

  const std::string url_;
  const std::string instance_;
  Hub& hub_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> reconnect_{false};
  std::thread thread_;
};

struct HeadNotice {
  std::string channel;
  std::int64_t head = 0;
};

// Parses a NOTIFY payload: a first line naming the instance that committed,
// then lines "<channel> <head>". Returns nothing for `skip_instance`'s own
// payloads and skips malformed lines.
std::vector<HeadNotice> parse_heads(const std::string& payload, const std::string& skip_instance);

}  // namespace syncd::engine
