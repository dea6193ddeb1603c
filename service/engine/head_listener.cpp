#include "engine/head_listener.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <pqxx/pqxx>

#include "store/pg_change_log.h"
#include "store/pg_compaction.h"
#include "store/pq.h"

namespace syncd::engine {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& instance, Hub& hub)
      : pqxx::notification_receiver(conn, store::kHeadNotifyChannel), instance_(instance), hub_(hub) {}

  void operator()(const std::string& payload, int /*backend_pid*/) override {
    for (const HeadNotice& n : parse_heads(payload, instance_)) hub_.remote_head(n.channel, n.head);
  }

 private:
  const std::string& instance_;
  Hub& hub_;
};

// A channel was deleted (on any instance): its streams end.
class DeletionReceiver final : public pqxx::notification_receiver {
 public:
  DeletionReceiver(pqxx::connection_base& conn, Hub& hub)
      : pqxx::notification_receiver(conn, store::kDeletedNotifyChannel), hub_(hub) {}
  void operator()(const std::string& channel, int /*backend_pid*/) override { hub_.deleted(channel); }

 private:
  Hub& hub_;
};

using Heads = std::map<std::string, std::int64_t>;

// The heads of the channels this instance has subscribers on.
Heads read_heads(pqxx::connection& conn, const Hub& hub) {
  Heads heads;
  const std::vector<std::string> channels = hub.channels();
  if (channels.empty()) return heads;
  store::pq::TextArray names;
  for (const std::string& c : channels) names.add(c);
  pqxx::nontransaction tx(conn);
  for (const pqxx::row& r : tx.exec_params("SELECT name, head FROM channels WHERE name = ANY ($1::text[])",
                                           names.str())) {
    heads.emplace(r[0].c_str(), r[1].as<std::int64_t>());
  }
  return heads;
}

void announce(const Heads& heads, Hub& hub) {
  for (const auto& [channel, head] : heads) hub.remote_head(channel, head);
}

}  // namespace

std::vector<HeadNotice> parse_heads(const std::string& payload, const std::string& skip_instance) {
  std::vector<HeadNotice> out;
  std::size_t pos = payload.find('\n');
  if (pos == std::string::npos || payload.compare(0, pos, skip_instance) == 0) return out;
  while (pos < payload.size()) {
    const std::size_t start = pos + 1;
    std::size_t end = payload.find('\n', start);
    if (end == std::string::npos) end = payload.size();
    const std::string_view line(payload.data() + start, end - start);
    const std::size_t space = line.rfind(' ');
    HeadNotice n;
    if (space != std::string_view::npos && space > 0) {
      const auto [ptr, ec] = std::from_chars(line.data() + space + 1, line.data() + line.size(), n.head);
      if (ec == std::errc() && ptr == line.data() + line.size()) {
        n.channel = std::string(line.substr(0, space));
        out.push_back(std::move(n));
      }
    }
    pos = end;
  }
  return out;
}

HeadListener::HeadListener(std::string database_url, std::string instance, Hub& hub)
    : url_(std::move(database_url)), instance_(std::move(instance)), hub_(hub), thread_([this] { run(); }) {}

HeadListener::~HeadListener() { stop(); }

void HeadListener::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void HeadListener::run() {
  int failures = 0;
  while (!stopping_) {
    try {
      reconnect_ = false;
      pqxx::connection conn(url_);
      // The poll below must not hang the thread that stop() and
      // reconnect() wait on (a lock on the channels table, a stalled server).
      pqxx::nontransaction(conn).exec("SET statement_timeout = '10s'; SET lock_timeout = '2s'");
      Receiver receiver(conn, instance_, hub_);
      DeletionReceiver deletions(conn, hub_);
      // After (re)connecting: notifications sent while we were away are lost.
      announce(read_heads(conn, hub_), hub_);
      if (failures > 0) spdlog::info("listening for other instances' commits again");
      failures = 0;
      // A poll announces the heads the previous one read, not those it
      // reads: a head just committed here may still be on its way to the
      // subscribers in memory, and announcing it would send each of them to
      // the log for it. A version committed a poll ago has arrived, unless
      // its announcement was lost. Never past the head read now: the
      // channel may have been deleted and written again meanwhile.
      Heads previous;
      auto polled = std::chrono::steady_clock::now();
      while (!stopping_ && !reconnect_) {
        conn.await_notification(0, 200'000);
        if (std::chrono::steady_clock::now() - polled >= kHeadPoll) {
          Heads current = read_heads(conn, hub_);
          Heads settled;
          for (const auto& [channel, head] : current) {
            if (auto it = previous.find(channel); it != previous.end()) settled[channel] = std::min(it->second, head);
          }
          announce(settled, hub_);
          previous = std::move(current);
          polled = std::chrono::steady_clock::now();
        }
      }
    } catch (const std::exception& e) {
      if (failures++ == 0) spdlog::warn("lost the LISTEN connection ({}); reconnecting", e.what());
      for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace syncd::engine
