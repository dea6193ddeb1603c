// The read half of a presence round: what changed in a watched channel
// since this instance last read it, told to the channel's watchers.

#include <algorithm>
#include <tuple>

#include "engine/presence.h"
#include "engine/presence_rows.h"
#include "observe/metrics.h"
#include "store/pg_presence.h"

namespace syncd::engine {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

void Presence::read_channel(store::PgPresence& db, const std::string& channel) {
  const bool seen = views_.count(channel) != 0;
  View& view = views_[channel];
  const auto read = db.changes(channel, view.since, [&view](const std::vector<store::PresenceRow>& rows) {
    std::size_t n = view.rows.size();
    for (const auto& r : rows) n += view.rows.count(r.connection_id) == 0 ? 1 : 0;
    return n;
  });
  view.since = read.since;
  view.head = read.head;
  const auto at = Clock::now();
  std::vector<PresenceChange> changes;
  if (read.ids) {
    const std::set<std::string> now(read.ids->begin(), read.ids->end());
    for (auto it = view.rows.begin(); it != view.rows.end();) {
      if (now.count(it->first) != 0) {
        ++it;
        continue;
      }
      changes.push_back({PresenceChange::Kind::kLeave, member_of(it->second)});
      view.held.erase(it->first);
      view.told.erase(it->first);
      it = view.rows.erase(it);
    }
  }
  // In a large channel a member's update goes at once if its last one went
  // a second ago or more, else it is held and its latest goes a second
  // after the last: at most one a second per member, spread over the
  // rounds rather than all at once.
  const bool large = std::max(view.rows.size(), read.count) > options_.large_channel;
  const auto due = [&](const std::string& id) { return !large || at - view.told[id] >= std::chrono::seconds(1); };
  for (const auto& r : read.rows) {
    auto old = view.rows.find(r.connection_id);
    if (old == view.rows.end()) {
      changes.push_back({PresenceChange::Kind::kJoin, member_of(r)});
      view.rows.emplace(r.connection_id, r);
      view.told[r.connection_id] = at;
      continue;
    }
    const bool same = same_for_watchers(old->second, r);
    old->second = r;  // a new position, if nothing else
    if (!same) view.held.insert(r.connection_id);
  }
  view.next_due = Clock::time_point::max();
  for (auto it = view.held.begin(); it != view.held.end();) {
    if (!due(*it)) {
      view.next_due = std::min(view.next_due, view.told[*it] + std::chrono::seconds(1));
      ++it;
      continue;
    }
    changes.push_back({PresenceChange::Kind::kUpdate, member_of(view.rows.at(*it))});
    view.told[*it] = at;
    it = view.held.erase(it);
  }
  // The whole list when it is the smaller message, or the view is new.
  const bool whole = !seen || changes.size() > std::max(options_.max_events, view.rows.size() / 2);
  if (whole) {
    view.held.clear();
    for (const auto& [id, row] : view.rows) view.told[id] = at;
  }
  std::vector<std::pair<std::shared_ptr<PresenceWatcher>, bool>> targets;
  {
    std::lock_guard lock(mu_);
    auto it = watchers_.find(channel);
    if (it == watchers_.end()) return;
    for (Watch& w : it->second) {
      targets.emplace_back(w.watcher, w.needs_full || whole);
      w.needs_full = false;
    }
  }
  std::shared_ptr<const api::PresenceList> full;
  const auto whole_list = [&] {
    if (full) return full;
    std::vector<const store::PresenceRow*> ordered;
    for (const auto& [id, r] : view.rows) ordered.push_back(&r);
    std::sort(ordered.begin(), ordered.end(), [](const store::PresenceRow* a, const store::PresenceRow* b) {
      return std::tie(a->connected_at_ms, a->connection_id) < std::tie(b->connected_at_ms, b->connection_id);
    });
    auto list = std::make_shared<api::PresenceList>();
    list->set_channel(channel);
    list->set_head_version(view.head);
    for (const auto* r : ordered) *list->add_members() = member_of(*r);
    full = std::move(list);
    return full;
  };
  static const std::vector<PresenceChange> kNone;
  auto& events = observe::Metrics::get().presence_events;
  for (const auto& [watcher, needs_full] : targets) {
    if (needs_full) {
      watcher->on_presence(channel, whole_list(), kNone);
    } else if (!changes.empty()) {
      events.Increment(static_cast<double>(changes.size()));
      watcher->on_presence(channel, nullptr, changes);
    }
  }
}

}  // namespace syncd::engine
