#pragma once
// Presence and client positions in PostgreSQL (migration
// 20261202000002): the rows of this instance's connections, the instance's
// heartbeat, the sweep of dead instances' rows, and NOTIFY sync_presence so
// every instance re-reads a channel whose presence changed.
//
// One connection, used by one thread (engine::Presence's); it also LISTENs,
// so notifications arrive between its transactions. Every call throws
// std::exception on a database error; the caller drops the object and
// makes a new one.

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/presence_row.h"

namespace syncd::store {

inline constexpr const char* kPresenceNotifyChannel = "sync_presence";

struct PositionRow {
  std::string channel;
  std::string client_id;
  std::int64_t delivered = 0;
  std::int64_t applied = 0;
};

// What changed in a channel since a snapshot (PgPresence::changes).
struct ChannelChanges {
  std::vector<PresenceRow> rows;  // every row written since; ordered by connected_at
  std::size_t count = 0;          // the channel's rows now
  // Every connection id now, read only when the count is not what the
  // caller expected: some rows were deleted (connections left).
  std::optional<std::vector<std::string>> ids;
  std::string since;              // for the next call
  std::int64_t head = 0;          // the channel's head version
};

class PgPresence {
 public:
  // `ttl`: how long after its last heartbeat this instance counts as dead.
  PgPresence(const std::string& url, std::string instance, std::chrono::seconds ttl);
  ~PgPresence();

  // In one transaction: upserts `rows` as this instance's, deletes
  // `gone` (channel, connection id), saves named clients' positions,
  // refreshes the heartbeat, and notifies every channel touched. True when
  // the heartbeat row was gone: another instance took this one for dead
  // and removed its rows, which must then all be written again.
  bool write(const std::vector<PresenceRow>& rows,
             const std::vector<std::pair<std::string, std::string>>& gone,
             const std::vector<PositionRow>& positions);
  // Deletes the rows of instances not seen for their own ttl (and their
  // heartbeat rows) and notifies their channels, and forgets (a batch of)
  // named clients not seen for 30 days; returns how many presence rows went.
  std::size_t sweep();
  // Deletes every row of this instance (a clean shutdown) and notifies.
  void remove_all();

  // The channel's members, ordered by connected_at, and its head.
  std::vector<PresenceRow> members(const std::string& channel, std::int64_t* head);
  // The rows written since `since` (a value from the last call; empty:
  // every row), all read in one snapshot. `expected(rows)` is how many rows
  // the channel has if none was deleted since; when the count differs,
  // the result carries every id, so the caller can tell who left.
  ChannelChanges changes(const std::string& channel, const std::string& since,
                         const std::function<std::size_t(const std::vector<PresenceRow>&)>& expected);
  // The channels notified since the last call (waits at most `wait`).
  std::set<std::string> notified(std::chrono::milliseconds wait);
  // The saved positions of named clients (channel, client id), in one
  // statement; those with none are left out.
  std::vector<PositionRow> positions(const std::vector<std::pair<std::string, std::string>>& clients);

 private:
  class Receiver;
  pqxx::connection conn_;
  std::unique_ptr<Receiver> receiver_;
  const std::string instance_;
  const long long ttl_seconds_;
};

}  // namespace syncd::store
