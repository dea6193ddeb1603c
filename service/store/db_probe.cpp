#include "store/db_probe.h"

#include "store/pq.h"

namespace syncd::store {

DatabaseProbe::DatabaseProbe(std::string database_url, std::chrono::milliseconds interval, Changed changed)
    : url_(std::move(database_url)), interval_(interval), changed_(std::move(changed)), thread_([this] { run(); }) {}

DatabaseProbe::~DatabaseProbe() { stop(); }

void DatabaseProbe::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DatabaseProbe::run() {
  pq::Conn conn;
  for (;;) {
    std::string reason;
    // A connection that worked before may have been dropped since (a
    // terminated backend, a restart): that says nothing about the database
    // now, so a new connection gets a second try before it counts.
    for (int attempt = 1; attempt <= 2; ++attempt) {
      const bool fresh = !conn;
      try {
        if (!conn) conn = pq::connect(url_);
        pq::exec(conn.get(), "SELECT 1");
        reason.clear();
        break;
      } catch (const pq::Error& e) {
        conn.reset();
        reason = e.what();
        if (reason.empty()) reason = "the database does not answer";
        if (fresh || e.timed_out()) break;  // a silent database: no second wait
      } catch (const std::exception& e) {
        conn.reset();
        reason = std::string("the probe failed: ") + e.what();
        break;
      }
    }
    for (char& c : reason) {  // libpq's messages run over several lines
      if (c == '\n' || c == '\t') c = ' ';
    }
    const bool now = reason.empty();
    if (ready_.exchange(now) != now && changed_) changed_(now, reason);
    // While it is away, ask four times as often: serving resumes soon
    // after it is back.
    std::unique_lock lock(mu_);
    if (wake_.wait_for(lock, now ? interval_ : interval_ / 4, [this] { return stopping_; })) return;
  }
}

}  // namespace syncd::store
