#include "engine/presence.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>

#include "engine/presence_rows.h"
#include "observe/metrics.h"
#include "store/pg_presence.h"

namespace syncd::engine {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Presence::Presence(std::string database_url, std::string instance, PresenceOptions options)
    : url_(std::move(database_url)), instance_(std::move(instance)), options_(options), thread_([this] { run(); }) {}

Presence::~Presence() { stop(); }

void Presence::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::string Presence::next_id() {
  std::lock_guard lock(mu_);
  return instance_ + "." + std::to_string(++next_id_);
}

void Presence::connect(const std::string& channel, api::PresenceMember member, const void* owner) {
  member.set_connected_at(now_ms());
  std::lock_guard lock(mu_);
  Local& l = locals_[{channel, member.connection_id()}];
  l.channel = channel;
  l.owner = owner;
  l.dirty = true;
  l.load_position = !member.client_id().empty();
  l.member = std::move(member);
  wake_.notify_all();
}

void Presence::set_state(const std::string& channel, const std::string& connection_id,
                         google::protobuf::Struct state) {
  std::lock_guard lock(mu_);
  auto it = locals_.find({channel, connection_id});
  if (it == locals_.end()) return;
  *it->second.member.mutable_state() = std::move(state);
  it->second.dirty = true;
}

void Presence::position(const std::string& channel, const std::string& connection_id, std::int64_t delivered,
                        std::int64_t applied) {
  std::lock_guard lock(mu_);
  auto it = locals_.find({channel, connection_id});
  if (it == locals_.end()) return;
  api::PresenceMember& m = it->second.member;
  if (delivered <= m.delivered_version() && applied <= m.applied_version()) return;
  m.set_delivered_version(std::max(delivered, m.delivered_version()));
  m.set_applied_version(std::max(applied, m.applied_version()));
  it->second.position_dirty = true;
}

void Presence::disconnect(const std::string& channel, const std::string& connection_id, const void* owner) {
  std::lock_guard lock(mu_);
  auto it = locals_.find({channel, connection_id});
  if (it == locals_.end() || it->second.owner != owner) return;
  if (it->second.written) gone_.emplace_back(channel, connection_id);
  locals_.erase(it);
  wake_.notify_all();
}

void Presence::watch(const std::string& channel, std::shared_ptr<PresenceWatcher> watcher) {
  std::lock_guard lock(mu_);
  watchers_[channel].push_back(Watch{std::move(watcher), true});
  wake_.notify_all();
}

void Presence::unwatch(const std::string& channel, const PresenceWatcher* watcher) {
  std::lock_guard lock(mu_);
  auto it = watchers_.find(channel);
  if (it == watchers_.end()) return;
  auto& list = it->second;
  list.erase(std::remove_if(list.begin(), list.end(), [&](const Watch& w) { return w.watcher.get() == watcher; }),
             list.end());
  if (list.empty()) watchers_.erase(it);
}

void Presence::resend(const std::string& channel, const PresenceWatcher* watcher) {
  std::lock_guard lock(mu_);
  auto it = watchers_.find(channel);
  if (it == watchers_.end()) return;
  for (Watch& w : it->second) w.needs_full = w.needs_full || w.watcher.get() == watcher;
  wake_.notify_all();
}

void Presence::list(const std::string& channel, std::function<void(absl::StatusOr<api::PresenceList>)> done) {
  {
    std::lock_guard lock(mu_);
    if (lists_.size() < kMaxWaitingLists) {
      lists_.emplace_back(channel, std::move(done));
      wake_.notify_all();
      return;
    }
  }
  done(absl::ResourceExhaustedError("too many presence reads are waiting; retry"));
}

std::size_t Presence::local_members() const {
  std::lock_guard lock(mu_);
  return locals_.size();
}

void Presence::run() {
  std::unique_ptr<store::PgPresence> db;
  int failures = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) break;
    }
    bool fresh = false;
    try {
      if (!db) {
        db = std::make_unique<store::PgPresence>(url_, instance_, options_.ttl);
        fresh = true;
        if (failures > 0) spdlog::info("presence: connected to the database again");
        failures = 0;
      }
      round(*db, fresh);
    } catch (const std::exception& e) {
      observe::Metrics::get().database_errors.Increment();
      if (failures++ == 0) spdlog::warn("presence: database error ({}); retrying", e.what());
      db.reset();
      std::unique_lock lock(mu_);
      // Everything is written again on the next connection.
      wake_.wait_for(lock, std::min(std::chrono::milliseconds(100) * failures, std::chrono::milliseconds(2000)),
                     [this] { return stopping_; });
    }
  }
  // A clean stop: this instance's connections leave everyone's list now.
  try {
    if (!db) db = std::make_unique<store::PgPresence>(url_, instance_, options_.ttl);
    db->remove_all();
  } catch (const std::exception& e) {
    spdlog::warn("presence: could not remove this instance's connections ({}); they leave within {} s", e.what(),
                 options_.ttl.count());
  }
  std::vector<std::pair<std::string, std::function<void(absl::StatusOr<api::PresenceList>)>>> lists;
  {
    std::lock_guard lock(mu_);
    lists.swap(lists_);
  }
  for (auto& [channel, done] : lists) done(absl::UnavailableError("the server is stopping"));
}

// One round: write what changed here, sweep the dead, read what changed
// anywhere, tell the watchers. `rewrite`: a new connection, which must
// write every local row again (the database may have lost them).
void Presence::round(store::PgPresence& db, bool rewrite) {
  const auto now = Clock::now();
  const auto min_gap = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(options_.updates_per_second, 0.1)));

  std::vector<store::PresenceRow> rows;
  std::vector<Key> gone;
  std::vector<store::PositionRow> positions;
  // Named clients starting from their saved position: read in one
  // statement for all of them (one round trip per round however many
  // joined: under load each round trip waits for both processes to run).
  std::vector<std::pair<std::string, std::string>> to_load;  // channel, client id
  {
    std::lock_guard lock(mu_);
    for (auto& [key, l] : locals_) {
      if (l.load_position) to_load.emplace_back(key.first, l.member.client_id());
    }
  }
  if (!to_load.empty()) {
    std::sort(to_load.begin(), to_load.end());
    to_load.erase(std::unique(to_load.begin(), to_load.end()), to_load.end());
    std::map<std::pair<std::string, std::string>, store::PositionRow> saved;
    for (auto& p : db.positions(to_load)) saved.emplace(std::make_pair(p.channel, p.client_id), std::move(p));
    std::lock_guard lock(mu_);
    for (auto& [key, l] : locals_) {
      if (!l.load_position) continue;
      // A client not in the read (it connected since): read next round.
      if (!std::binary_search(to_load.begin(), to_load.end(), std::make_pair(key.first, l.member.client_id()))) continue;
      l.load_position = false;
      const auto it = saved.find({key.first, l.member.client_id()});
      if (it == saved.end()) continue;
      api::PresenceMember& m = l.member;
      if (it->second.delivered <= m.delivered_version() && it->second.applied <= m.applied_version()) continue;
      m.set_delivered_version(std::max(m.delivered_version(), it->second.delivered));
      m.set_applied_version(std::max(m.applied_version(), it->second.applied));
      l.position_dirty = true;  // a row written before the read shows it within a second
    }
  }
  {
    std::lock_guard lock(mu_);
    // Taken only now, after the reads above, which may throw: from here on
    // a failure puts them back (below).
    gone.swap(gone_);
    // A large channel's members are told of a state at most once a second,
    // so it is written no more often. Large as this instance sees it: its
    // own connections there, or the members it last read.
    std::map<std::string, std::size_t> sizes;
    for (const auto& [key, l] : locals_) ++sizes[key.first];
    for (const auto& [channel, view] : views_) sizes[channel] = std::max(sizes[channel], view.rows.size());
    for (auto& [key, l] : locals_) {
      const auto gap = sizes[key.first] > options_.large_channel ? Clock::duration(std::chrono::seconds(1)) : min_gap;
      const bool state_due = l.dirty && (!l.written || now - l.last_write >= gap);
      const bool position_due = l.position_dirty && now - l.last_write >= std::chrono::seconds(1);
      if (!(rewrite || state_due || position_due)) continue;
      rows.push_back(row_of(key.first, l.member));
      rows.back().quiet = !rewrite && !state_due && l.written;
      if (!l.member.client_id().empty()) {
        positions.push_back({key.first, l.member.client_id(), l.member.delivered_version(), l.member.applied_version()});
      }
      l.dirty = l.position_dirty = false;
      l.written = true;
      l.last_write = now;
    }
  }
  // One row per named client: two connections of one client report the furthest position.
  std::sort(positions.begin(), positions.end(), [](const store::PositionRow& a, const store::PositionRow& b) {
    return std::tie(a.channel, a.client_id) < std::tie(b.channel, b.client_id);
  });
  std::vector<store::PositionRow> merged;
  for (auto& p : positions) {
    if (!merged.empty() && merged.back().channel == p.channel && merged.back().client_id == p.client_id) {
      merged.back().delivered = std::max(merged.back().delivered, p.delivered);
      merged.back().applied = std::max(merged.back().applied, p.applied);
    } else {
      merged.push_back(std::move(p));
    }
  }
  // A round with nothing to write writes only a due heartbeat: an idle
  // instance is then a transaction every ttl/10 (3 s by default), not one
  // a round, and a machine may still hold up its rounds for 9/10 of the
  // ttl before its connections are taken for gone.
  const auto beat_every = std::max<Clock::duration>(Clock::duration(options_.ttl) / 10, options_.interval);
  const bool write = rewrite || !rows.empty() || !gone.empty() || !merged.empty() || now - last_write_ >= beat_every;
  try {
    bool revived = false;
    if (write) {
      last_write_ = now;
      revived = db.write(rows, gone, merged);  // also the heartbeat
    }
    if (revived && !rewrite) {
      spdlog::warn("presence: this instance was taken for dead (no heartbeat for {} s); listing its connections again",
                   options_.ttl.count());
      std::lock_guard lock(mu_);
      for (auto& [key, l] : locals_) l.dirty = true, l.written = false;
    }
  } catch (...) {
    // Rows are all written again on the next connection; removals must be kept.
    std::lock_guard lock(mu_);
    gone_.insert(gone_.end(), gone.begin(), gone.end());
    throw;
  }
  // Often enough for the shortest ttl any instance may have (3 s).
  if (now - last_sweep_ >= std::chrono::seconds(1)) {
    last_sweep_ = now;
    db.sweep();
  }

  // Channels to read: notified ones that someone here watches, those with
  // a watcher owed the whole list, and list() requests.
  std::set<std::string> channels = db.notified(options_.interval);
  for (const auto& [channel, view] : views_) {
    if (!view.held.empty() && now >= view.next_due) channels.insert(channel);
  }
  std::vector<std::pair<std::string, std::function<void(absl::StatusOr<api::PresenceList>)>>> lists;
  {
    std::lock_guard lock(mu_);
    for (auto it = channels.begin(); it != channels.end();) {
      it = watchers_.count(*it) != 0 ? std::next(it) : channels.erase(it);
    }
    for (const auto& [channel, watches] : watchers_) {
      for (const Watch& w : watches) {
        if (w.needs_full || rewrite) channels.insert(channel);
      }
    }
    lists.swap(lists_);
    // Views of channels nobody here watches any more are dropped.
    for (auto it = views_.begin(); it != views_.end();) {
      it = watchers_.count(it->first) != 0 ? std::next(it) : views_.erase(it);
    }
  }
  // A new connection may be to another server (a failover): every view is
  // read whole again, and diffed as usual.
  if (rewrite) {
    for (auto& [channel, view] : views_) view.since.clear();
  }
  try {
    for (const std::string& channel : channels) read_channel(db, channel);
  } catch (...) {
    std::lock_guard lock(mu_);  // answered on the next connection
    for (auto& l : lists) lists_.push_back(std::move(l));
    throw;
  }
  // Every request is answered, even when the database fails midway.
  std::optional<std::string> failed;
  for (auto& [channel, done] : lists) {
    if (failed) {
      done(absl::UnavailableError(*failed));
      continue;
    }
    std::int64_t head = 0;
    api::PresenceList out;
    out.set_channel(channel);
    try {
      for (const auto& r : db.members(channel, &head)) {
        api::PresenceMember& m = *out.add_members() = member_of(r);
        const std::int64_t at = m.applied_version() > 0 ? m.applied_version() : m.delivered_version();
        m.set_lag(std::max<std::int64_t>(0, head - at));
      }
    } catch (const std::exception& e) {
      failed = e.what();
      done(absl::UnavailableError(*failed));
      continue;
    }
    out.set_head_version(head);
    done(std::move(out));
  }
  if (failed) throw std::runtime_error(*failed);
  std::size_t known = 0;
  for (const auto& [channel, view] : views_) known += view.rows.size();
  known_.store(known, std::memory_order_relaxed);
}

}  // namespace syncd::engine
