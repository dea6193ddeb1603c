#pragma once
// Presence: who is connected to each channel, on every syncd instance and
// through every bridge, kept exact across instances and crashes.
//
// PostgreSQL is the one source of truth (store/pg_presence.h). Each
// instance writes the rows of the connections it holds, in one transaction
// every `interval` in which something changed, and refreshes its heartbeat
// with every write and at least every ttl/10; any instance deletes the rows
// of an instance silent for `ttl` (it died: its connections leave
// everyone's list). Every write NOTIFYs the channels it touched; an
// instance with watchers of a channel then reads the channel's rows written
// since its last read (and, when the count fell, the ids, to find who
// left) and sends each watcher the difference from what it had: joins,
// updates and leaves. An instance's own changes take the same path, so
// every watcher everywhere sees one order per connection.
//
// Bounded: a connection's state is written at most `updates_per_second`
// times a second (the latest wins); a round whose changes in a channel
// outnumber both `max_events` and half its members sends the whole list
// instead (it is then the smaller message); in a channel of more than
// `large_channel` members, joins and leaves still go out every round but
// each member's state is written and sent at most once a second, the
// latest (so a watcher of N members gets at most about N updates a second
// however often they change, spread over the rounds); and positions (versions delivered and
// applied) are written at most once a second and never raise events (read
// them with list()).
//
// Thread-safe. One thread of its own, with its own database connection;
// watcher callbacks run on it and must not block.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "api/messages.h"
#include "store/presence_row.h"

namespace syncd::store {
class PgPresence;
}

namespace syncd::engine {

struct PresenceOptions {
  std::chrono::seconds ttl{30};                // a dead instance's connections leave within this
  std::chrono::milliseconds interval{50};      // how often changes are written and read
  double updates_per_second = 10;              // state writes per connection
  std::size_t max_events = 64;                 // per channel per round; more (and > members/2): the whole list
  std::size_t large_channel = 100;             // members; above, each one's state goes at most once a second
};

struct PresenceChange {
  enum class Kind { kJoin, kUpdate, kLeave };
  Kind kind;
  api::PresenceMember member;
};

class PresenceWatcher {
 public:
  virtual ~PresenceWatcher() = default;
  // `full`, when set, replaces the watcher's list (the first call always
  // has it); `changes` then apply in order. On the presence thread: must
  // not block.
  virtual void on_presence(const std::string& channel, const std::shared_ptr<const api::PresenceList>& full,
                           const std::vector<PresenceChange>& changes) = 0;
};

class Presence {
 public:
  Presence(std::string database_url, std::string instance, PresenceOptions options);
  ~Presence();
  // Deletes this instance's rows (its connections leave at once), then
  // joins the thread. Idempotent.
  void stop();

  const PresenceOptions& options() const { return options_; }

  // A connection id no other connection anywhere has.
  std::string next_id();

  // `member.connection_id` from next_id() (or a proxy's own stable id);
  // connected_at is set here. A named client (client_id set) starts at its
  // saved position. Connecting an id again replaces its entry and owner.
  void connect(const std::string& channel, api::PresenceMember member, const void* owner = nullptr);
  void set_state(const std::string& channel, const std::string& connection_id, google::protobuf::Struct state);
  void position(const std::string& channel, const std::string& connection_id, std::int64_t delivered,
                std::int64_t applied);
  // Only the entry's current owner (the one that connected it last) removes it.
  void disconnect(const std::string& channel, const std::string& connection_id, const void* owner = nullptr);

  // The watcher hears the channel's whole list at the next round, then
  // changes. A watcher may watch many channels.
  void watch(const std::string& channel, std::shared_ptr<PresenceWatcher> watcher);
  void unwatch(const std::string& channel, const PresenceWatcher* watcher);
  // The whole list again at the next round (the watcher lost events).
  void resend(const std::string& channel, const PresenceWatcher* watcher);

  // Reads the channel's list now, with each member's lag (on the presence
  // thread, where `done` runs). Beyond kMaxWaitingLists waiting reads,
  // `done` runs at once with RESOURCE_EXHAUSTED, so a flood of reads
  // cannot hold up the heartbeat.
  void list(const std::string& channel, std::function<void(absl::StatusOr<api::PresenceList>)> done);

  static constexpr std::size_t kMaxWaitingLists = 1000;

  // For the metrics.
  std::size_t local_members() const;
  std::size_t known_members() const { return known_.load(std::memory_order_relaxed); }

 private:
  struct Local {
    std::string channel;
    api::PresenceMember member;
    bool dirty = true;           // the row needs writing
    bool written = false;        // a row exists (so leaving must delete it)
    bool position_dirty = false;
    bool load_position = false;  // a named client: start from its saved position
    std::chrono::steady_clock::time_point last_write{};
    const void* owner = nullptr;
  };
  struct Watch {
    std::shared_ptr<PresenceWatcher> watcher;
    bool needs_full = true;
  };
  using Key = std::pair<std::string, std::string>;  // channel, connection id

  void run();
  void round(store::PgPresence& db, bool rewrite);
  void read_channel(store::PgPresence& db, const std::string& channel);

  const std::string url_;
  const std::string instance_;
  const PresenceOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                                  // guarded by mu_
  std::map<Key, Local> locals_;                            // guarded by mu_
  std::vector<Key> gone_;                                  // guarded by mu_
  std::map<std::string, std::vector<Watch>> watchers_;     // guarded by mu_
  std::vector<std::pair<std::string, std::function<void(absl::StatusOr<api::PresenceList>)>>> lists_;  // guarded by mu_
  std::uint64_t next_id_ = 0;                              // guarded by mu_

  // What this instance last read of a watched channel.
  struct View {
    std::map<std::string, store::PresenceRow> rows;  // by connection id
    std::string since;                               // PgPresence::changes' watermark; empty: read everything
    std::int64_t head = 0;                           // the channel's head at the last read
    std::set<std::string> held;                      // members whose latest update is not yet sent
    std::map<std::string, std::chrono::steady_clock::time_point> told;  // when each member's state last went out
    std::chrono::steady_clock::time_point next_due{};  // when the first held update may go
  };

  // The presence thread's own.
  std::map<std::string, View> views_;
  std::chrono::steady_clock::time_point last_sweep_{};
  std::chrono::steady_clock::time_point last_write_{};  // of this instance's rows or heartbeat
  std::atomic<std::size_t> known_{0};
  std::thread thread_;
};

}  // namespace syncd::engine
